#ifndef BERTKIT_VECTOR_MATH_H
#define BERTKIT_VECTOR_MATH_H

// The scalar formulas that loops over many elements share, written once: the C loops of this target use them, and
// the Swift kernels call them through `FastMath`, `BFloat16` and `Dropout` (Clang inlines them into Swift code).
// Plain arithmetic and bit operations only, so a loop over them vectorises, and the same operations in the same
// order on every CPU: a result does not depend on which instruction set ran it.
//
// min and max are written as Swift's `min` and `max` are (`y < x ? y : x`, `y >= x ? y : x`), which the vectoriser
// turns into min/max instructions.

#include <stdint.h>

// No fused multiply-adds here or in any file that includes this one (Clang fuses within an expression by default).
#pragma clang fp contract(off)

static inline float bertkit_bits_to_float(uint32_t bits) {
    float value;
    __builtin_memcpy(&value, &bits, sizeof value);
    return value;
}

static inline uint32_t bertkit_float_to_bits(float value) {
    uint32_t bits;
    __builtin_memcpy(&bits, &value, sizeof bits);
    return bits;
}

static inline float bertkit_min(float x, float y) { return y < x ? y : x; }
static inline float bertkit_max(float x, float y) { return y >= x ? y : x; }

/// e^x with relative error below 2e-7 for x in [-87, 88]; inputs are clamped to that range.
static inline float bertkit_exp(float x) {
    x = bertkit_min(bertkit_max(x, -87.3f), 88.3f);
    // x = n·ln2 + r with n an integer and |r| <= ln2/2. Adding 1.5·2^23 rounds x·log2(e) to an integer and
    // leaves that integer in the low mantissa bits of `shifted`.
    const float magic = 12582912.0f;
    float shifted = x * 1.44269504f + magic;
    float n = shifted - magic;
    float r = (x - n * 0.693145751953125f) - n * 1.4286068203094172e-6f;
    // e^r by its Taylor series to degree 7: the remainder is below 5e-9 on |r| <= 0.347.
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1;
    p = p * r + 1;
    // 2^n, built directly from the exponent bits.
    uint32_t exponent = bertkit_float_to_bits(shifted) - bertkit_float_to_bits(magic) + 127;
    return p * bertkit_bits_to_float(exponent << 23);
}

/// erf(x) from e^(−x²), for a caller that needs that value too (GELU's derivative: the Gaussian density is
/// e^(−x²/2), the exponential of erf at x/√2). Absolute error below 3e-7 (Abramowitz & Stegun 7.1.26).
static inline float bertkit_erf_given_exp(float x, float exp_of_minus_square) {
    float a = __builtin_fabsf(x);
    float t = 1 / (1 + 0.3275911f * a);
    float poly = 1.061405429f;
    poly = poly * t - 1.453152027f;
    poly = poly * t + 1.421413741f;
    poly = poly * t - 0.284496736f;
    poly = poly * t + 0.254829592f;
    float y = 1 - poly * t * exp_of_minus_square;
    return __builtin_copysignf(y, x);
}

/// The error function, with absolute error below 3e-7.
static inline float bertkit_erf(float x) { return bertkit_erf_given_exp(x, bertkit_exp(-x * x)); }

/// Hyperbolic tangent from `bertkit_exp`, accurate to about 3e-7 absolute.
static inline float bertkit_tanh(float x) {
    // tanh(|x|) = (1 − e^{−2|x|}) / (1 + e^{−2|x|}): no overflow, and no cancellation beyond 1e-7 absolute near zero.
    float e = bertkit_exp(-2 * __builtin_fabsf(x));
    return __builtin_copysignf((1 - e) / (1 + e), x);
}

static const float bertkit_inverse_sqrt2 = 0.7071067811865476f;
static const float bertkit_inverse_sqrt2pi = 0.3989422804014327f;

/// GELU with the exact Gaussian CDF, x·Φ(x), as BERT's `hidden_act: "gelu"` specifies.
static inline float bertkit_gelu(float x) { return 0.5f * x * (1 + bertkit_erf(x * bertkit_inverse_sqrt2)); }

/// gelu'(x) = Φ(x) + x·φ(x), with one exponential for both terms: erf(x/√2) is built on e^(−x²/2), the density's own.
static inline float bertkit_gelu_derivative(float x) {
    float gaussian = bertkit_exp(-0.5f * x * x);
    float cdf = 0.5f * (1 + bertkit_erf_given_exp(x * bertkit_inverse_sqrt2, gaussian));
    float pdf = bertkit_inverse_sqrt2pi * gaussian;
    return cdf + x * pdf;
}

/// A float rounded to bfloat16's bits, to nearest even (as PyTorch's conversion); a NaN stays a (quiet) NaN.
static inline uint16_t bertkit_bf16_bits(float x) {
    uint32_t bits = bertkit_float_to_bits(x);
    uint32_t rounded = bits + 0x7FFF + ((bits >> 16) & 1);
    int is_nan = (bits & 0x7FFFFFFF) > 0x7F800000;
    return is_nan ? (uint16_t)((bits >> 16) | 0x40) : (uint16_t)(rounded >> 16);
}

/// A 32-bit integer hash with full avalanche (lowbias32's constants).
static inline uint32_t bertkit_mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}

/// Dropout's random bits for element `index` of the stream `seed`: a counter-based generator, so any element's
/// draw is known without the ones before it (attention's backward pass rebuilds its mask this way).
static inline uint32_t bertkit_dropout_bits(uint64_t seed, uint64_t index) {
    uint32_t x = (uint32_t)index ^ (uint32_t)seed;
    return bertkit_mix32(bertkit_mix32(x) ^ (uint32_t)(seed >> 32));
}

#endif

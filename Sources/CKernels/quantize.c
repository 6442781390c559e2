// The int8 product's conversions of activations (see Kernels/Int8Gemm.swift): each row to u8 with its own scale
// and zero point, and the integer sums back to floats. With the scalar conversions of Swift these took more time
// than the integer products themselves.
#include "ckernels.h"
#include "cpu_levels.h"
#include "vector_math.h"

BERTKIT_FOR_EACH_CPU_LEVEL
void bertkit_quantize_row(const float *restrict source, long count, uint8_t *restrict quantized, float *scale_out,
                          int32_t *zero_out) {
    // Sixteen lanes of running minima and maxima, which vectorise (a single running minimum does not: the
    // vectoriser may not reorder a floating-point reduction). The order does not change a minimum.
    enum { lanes = 16 };
    float low[lanes] = {0}, high[lanes] = {0};
    long whole = count / lanes * lanes;
    for (long c = 0; c < whole; c += lanes) {
        for (int l = 0; l < lanes; l++) {
            low[l] = bertkit_min(low[l], source[c + l]);
            high[l] = bertkit_max(high[l], source[c + l]);
        }
    }
    float lowest = 0, highest = 0;
    for (int l = 0; l < lanes; l++) {
        lowest = bertkit_min(lowest, low[l]);
        highest = bertkit_max(highest, high[l]);
    }
    for (long c = whole; c < count; c++) {
        lowest = bertkit_min(lowest, source[c]);
        highest = bertkit_max(highest, source[c]);
    }
    float scale = highest > lowest ? (highest - lowest) / 255 : 1;
    float zero = bertkit_max(0, bertkit_min(255, __builtin_roundevenf(-lowest / scale)));
    // Adding 1.5·2^23 leaves a float's integer part, rounded to nearest even, in its low mantissa bits: a rounding
    // and a conversion that vectorise.
    const float magic = 12582912.0f;
    for (long c = 0; c < count; c++) {
        float rounded = (source[c] / scale + magic) - magic;
        float clamped = bertkit_max(0, bertkit_min(255, rounded + zero));
        quantized[c] = (uint8_t)bertkit_float_to_bits(clamped + magic);
    }
    *scale_out = scale;
    *zero_out = (int32_t)zero;
}

BERTKIT_FOR_EACH_CPU_LEVEL
void bertkit_dequantize_row(const int32_t *restrict sums, long count, float row_scale, int32_t row_zero,
                            const float *restrict column_scales, const int32_t *restrict column_sums,
                            float *restrict output) {
    for (long j = 0; j < count; j++)
        // In wrapping arithmetic, as Swift's &- and &* (the values stay far inside 32 bits).
        output[j] = row_scale * column_scales[j] * (float)(int32_t)((uint32_t)sums[j] - (uint32_t)row_zero * (uint32_t)column_sums[j]);
}

#ifndef BERTKIT_CKERNELS_H
#define BERTKIT_CKERNELS_H

// The element-wise loops that need the CPU's full vector width, in C so that each is compiled for several CPU levels
// and chosen when the program starts (cpu_levels.h). The Swift kernels in Kernels/ document what each computes and
// split the work among threads; these run one thread's share.

#include <stdint.h>
#include "vector_math.h"

/// One AdamW update of `count` parameters (see Kernels/AdamW.swift, which documents the formula): g =
/// gradients[i]·gradient_scale, m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², θ ← θ·shrink − step_size·m / (√v /
/// correction2 + ε); with `clearing`, gradients[i] ← 0.
void bertkit_adamw_update(float *restrict parameters, float *restrict gradients, float *restrict m, float *restrict v,
                          long count, float gradient_scale, float beta1, float beta2, float epsilon, float shrink,
                          float step_size, float correction2, int clearing);

/// output[i] = gelu(input[i]).
void bertkit_gelu_forward(const float *restrict input, float *restrict output, long count);

/// The same, each result rounded to bf16's bits.
void bertkit_gelu_forward_bf16(const float *restrict input, uint16_t *restrict output, long count);

/// d_input[i] = d_output[i] · gelu'(input[i]); `d_input` may be `d_output`.
void bertkit_gelu_backward(const float *input, const float *d_output, float *d_input, long count);

/// output[i] = input[i] · (bits(seed, first + i) >= threshold ? scale : 0); `output` may be `input`.
void bertkit_dropout(const float *input, float *output, long count, uint64_t seed, uint64_t first, uint32_t threshold,
                     float scale);

/// Each of `rows` rows of `width` values (`stride` apart) in place: exp(x − max) / Σ exp(x − max).
void bertkit_softmax_rows(float *x, long rows, long width, long stride);

/// One row of activations to u8: scale = (max − min) / 255 over the row and 0, zero point = round(−min / scale),
/// q = clamp(round(x / scale) + zero, 0, 255).
void bertkit_quantize_row(const float *restrict source, long count, uint8_t *restrict quantized, float *scale_out,
                          int32_t *zero_out);

/// output[j] = row_scale · column_scales[j] · (sums[j] − row_zero · column_sums[j]).
void bertkit_dequantize_row(const int32_t *restrict sums, long count, float row_scale, int32_t row_zero,
                            const float *restrict column_scales, const int32_t *restrict column_sums,
                            float *restrict output);

#endif

// GELU's loops (see Kernels/GELU.swift): most of an encoder layer's element-wise time in training and inference.
#include "ckernels.h"
#include "cpu_levels.h"
#include "vector_math.h"

BERTKIT_FOR_EACH_CPU_LEVEL
void bertkit_gelu_forward(const float *restrict input, float *restrict output, long count) {
    for (long i = 0; i < count; i++) output[i] = bertkit_gelu(input[i]);
}

BERTKIT_FOR_EACH_CPU_LEVEL
void bertkit_gelu_forward_bf16(const float *restrict input, uint16_t *restrict output, long count) {
    for (long i = 0; i < count; i++) output[i] = bertkit_bf16_bits(bertkit_gelu(input[i]));
}

BERTKIT_FOR_EACH_CPU_LEVEL
void bertkit_gelu_backward(const float *input, const float *d_output, float *d_input, long count) {
    // In place through one pointer when the gradient overwrites its own input: with two equal pointers the
    // vectoriser's overlap check would send the loop to its scalar version.
    if (d_input == d_output) {
        for (long i = 0; i < count; i++) d_input[i] *= bertkit_gelu_derivative(input[i]);
    } else {
        for (long i = 0; i < count; i++) d_input[i] = d_output[i] * bertkit_gelu_derivative(input[i]);
    }
}

// Dropout's mask-and-scale loop (see Kernels/Dropout.swift for the streams and their indices).
#include "ckernels.h"
#include "cpu_levels.h"
#include "vector_math.h"

BERTKIT_FOR_EACH_CPU_LEVEL
void bertkit_dropout(const float *input, float *output, long count, uint64_t seed, uint64_t first, uint32_t threshold,
                     float scale) {
    // In place through one pointer, which vectorises (see gelu.c).
    if (input == output) {
        for (long i = 0; i < count; i++) output[i] *= bertkit_dropout_bits(seed, first + i) >= threshold ? scale : 0;
    } else {
        for (long i = 0; i < count; i++)
            output[i] = input[i] * (bertkit_dropout_bits(seed, first + i) >= threshold ? scale : 0);
    }
}

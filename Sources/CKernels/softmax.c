// Softmax along rows (see Kernels/Softmax.swift): attention's probabilities, the largest element-wise cost of the
// attention core.
#include "ckernels.h"
#include "cpu_levels.h"
#include "vector_math.h"

// Sums in sixteen lanes (element i in lane i mod 16), then the lanes in order, then the tail: the order of the Swift
// kernels' `sum` (Kernels/Reductions.swift), so that both give the same bits.
enum { lanes = 16 };

static inline float lane_sum(const float *p, long count) {
    float acc[lanes] = {0};
    long i = 0;
    for (; i + lanes <= count; i += lanes)
        for (int l = 0; l < lanes; l++) acc[l] += p[i + l];
    float total = acc[0];
    for (int l = 1; l < lanes; l++) total += acc[l];
    for (; i < count; i++) total += p[i];
    return total;
}

static inline float lane_maximum(const float *p, long count) {
    float acc[lanes];
    for (int l = 0; l < lanes; l++) acc[l] = -__builtin_inff();
    long i = 0;
    for (; i + lanes <= count; i += lanes)
        for (int l = 0; l < lanes; l++) acc[l] = p[i + l] > acc[l] ? p[i + l] : acc[l];
    float result = acc[0];
    for (int l = 1; l < lanes; l++) result = bertkit_max(result, acc[l]);
    for (; i < count; i++) result = bertkit_max(result, p[i]);
    return result;
}

BERTKIT_FOR_EACH_CPU_LEVEL
void bertkit_softmax_rows(float *x, long rows, long width, long stride) {
    for (long r = 0; r < rows; r++) {
        float *row = x + r * stride;
        float maximum = lane_maximum(row, width);
        for (long c = 0; c < width; c++) row[c] = bertkit_exp(row[c] - maximum);
        float inverse = 1 / lane_sum(row, width);
        for (long c = 0; c < width; c++) row[c] *= inverse;
    }
}

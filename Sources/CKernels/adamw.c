// AdamW's update in C, for two reasons: `restrict` tells the compiler that the four buffers do not overlap, and the
// square root is an instruction (`__builtin_elementwise_sqrt` never sets errno), so the loop vectorises (Swift left
// it scalar, with a square root and a division per parameter).
#include "ckernels.h"
#include "cpu_levels.h"

// One parameter's update; inlined into both loops below.
static inline void update(float *restrict parameters, const float *restrict gradients, float *restrict m,
                          float *restrict v, long i, float gradient_scale, float beta1, float beta2, float epsilon,
                          float shrink, float step_size, float correction2) {
    float g = gradients[i] * gradient_scale;
    float mi = beta1 * m[i] + (1 - beta1) * g;
    float vi = beta2 * v[i] + (1 - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    parameters[i] = parameters[i] * shrink - step_size * mi / (__builtin_elementwise_sqrt(vi) / correction2 + epsilon);
}

BERTKIT_FOR_EACH_CPU_LEVEL
void bertkit_adamw_update(float *restrict parameters, float *restrict gradients, float *restrict m, float *restrict v,
                          long count, float gradient_scale, float beta1, float beta2, float epsilon, float shrink,
                          float step_size, float correction2, int clearing) {
    // Reading and clearing each gradient in the same loop: a second pass over them would cost a third more.
    if (clearing) {
        for (long i = 0; i < count; i++) {
            update(parameters, gradients, m, v, i, gradient_scale, beta1, beta2, epsilon, shrink, step_size, correction2);
            gradients[i] = 0;
        }
    } else {
        for (long i = 0; i < count; i++) {
            update(parameters, gradients, m, v, i, gradient_scale, beta1, beta2, epsilon, shrink, step_size, correction2);
        }
    }
}

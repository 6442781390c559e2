#ifndef BERTKIT_ADAMW_H
#define BERTKIT_ADAMW_H

/// One AdamW update of `count` parameters (see Kernels/AdamW.swift, which documents the formula and calls this
/// for each thread's range): g = gradients[i]·gradient_scale, m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g²,
/// θ ← θ·shrink − step_size·m / (√v / correction2 + ε); with `clearing`, gradients[i] ← 0.
void bertkit_adamw_update(float *restrict parameters, float *restrict gradients, float *restrict m, float *restrict v,
                          long count, float gradient_scale, float beta1, float beta2, float epsilon, float shrink,
                          float step_size, float correction2, int clearing);

#endif

#ifndef BERTKIT_CPU_LEVELS_H
#define BERTKIT_CPU_LEVELS_H

// Every loop of this target is compiled three times, for x86-64-v4 (AVX-512), x86-64-v3 (AVX2 and FMA) and the
// baseline, and the dynamic loader picks the one this CPU runs (an ifunc resolved by CPUID) when the program starts.
// That keeps the package free of machine-specific build flags, so that it can be a dependency of other packages and
// its binaries run on any x86-64 CPU, without giving up the vector width of the machine it runs on.
//
// Fused multiply-adds are off (vector_math.h, which every file includes): every operation rounds on its own, as in PyTorch's and
// Swift's scalar code, and all three versions give the same bits.
#if defined(__x86_64__)
#define BERTKIT_FOR_EACH_CPU_LEVEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BERTKIT_FOR_EACH_CPU_LEVEL
#endif

#endif

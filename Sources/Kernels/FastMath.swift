import CKernels

/// Vectorisable approximations of `exp`, `erf` and `tanh`.
///
/// A libm call per element costs about 20 ns and stops the loop from vectorising; these are plain arithmetic, so
/// loops over them compile to vector code. Accuracy is within a few float ulps, far below the differences that GEMM
/// summation order already causes. The formulas are written once, in C (CKernels/include/vector_math.h), where the
/// loops compiled for each CPU level use them too; the compiler inlines them here.
public enum FastMath {
    /// e^x with relative error below 2e-7 for x in [-87, 88]; inputs are clamped to that range.
    @inline(__always)
    public static func exp(_ x: Float) -> Float { bertkit_exp(x) }

    /// The error function, with absolute error below 3e-7 (Abramowitz & Stegun 7.1.26).
    @inline(__always)
    public static func erf(_ x: Float) -> Float { bertkit_erf(x) }

    /// Hyperbolic tangent from `exp`, accurate to about 3e-7 absolute.
    @inline(__always)
    public static func tanh(_ x: Float) -> Float { bertkit_tanh(x) }
}

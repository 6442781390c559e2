/// Vectorisable approximations of `exp` and `erf`.
///
/// A libm call per element costs about 20 ns and stops the loop from vectorising; these are plain
/// arithmetic, so loops over them compile to AVX-512 code. Accuracy is within a few float ulps,
/// far below the differences that GEMM summation order already causes.
public enum FastMath {
    /// e^x with relative error below 2e-7 for x in [-87, 88]; inputs are clamped to that range.
    @inline(__always)
    public static func exp(_ x: Float) -> Float {
        let x = min(max(x, -87.3), 88.3)
        // x = n·ln2 + r with n an integer and |r| <= ln2/2. Adding 1.5·2^23 rounds x·log2(e) to an
        // integer and leaves that integer in the low mantissa bits of `shifted`.
        let magic: Float = 12_582_912
        let shifted = x * 1.442_695_04 + magic
        let n = shifted - magic
        let r = (x - n * 0.693_145_751_953_125) - n * 1.428_606_820_309_417_2e-6
        // e^r by its Taylor series to degree 7: the remainder is below 5e-9 on |r| <= 0.347.
        var p: Float = 1.0 / 5040
        p = p * r + 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        // 2^n, built directly from the exponent bits.
        let exponent = Int32(bitPattern: shifted.bitPattern) &- Int32(bitPattern: magic.bitPattern) &+ 127
        let twoToN = Float(bitPattern: UInt32(bitPattern: exponent &<< 23))
        return p * twoToN
    }

    /// The error function, with absolute error below 3e-7 (Abramowitz & Stegun 7.1.26).
    @inline(__always)
    public static func erf(_ x: Float) -> Float {
        erf(x, expOfMinusSquare: exp(-x * x))
    }

    /// The same from e^(−x²), for a caller that needs that value too (GELU's derivative: the Gaussian
    /// density is e^(−x²/2), the exponential of erf at x/√2).
    @inline(__always)
    public static func erf(_ x: Float, expOfMinusSquare e: Float) -> Float {
        let a = abs(x)
        let t = 1 / (1 + 0.327_591_1 * a)
        var poly: Float = 1.061_405_429
        poly = poly * t - 1.453_152_027
        poly = poly * t + 1.421_413_741
        poly = poly * t - 0.284_496_736
        poly = poly * t + 0.254_829_592
        let y = 1 - poly * t * e
        return Float(signOf: x, magnitudeOf: y)
    }

    /// Hyperbolic tangent from `exp`, accurate to about 3e-7 absolute.
    @inline(__always)
    public static func tanh(_ x: Float) -> Float {
        // tanh(|x|) = (1 - e^{-2|x|}) / (1 + e^{-2|x|}): no overflow, and no cancellation beyond
        // 1e-7 absolute near zero.
        let e = exp(-2 * abs(x))
        return Float(signOf: x, magnitudeOf: (1 - e) / (1 + e))
    }
}

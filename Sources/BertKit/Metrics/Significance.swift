import Foundation

/// Whether one configuration or run is better than another, and by how much: Welch's t-test over seeds and a
/// paired bootstrap over evaluation examples. Neither says the better one will stay better on other data or
/// other seeds; both say how surprising the observed difference would be if the two were equally good.
public enum Significance {
    /// A difference (first minus second) with its 95 % interval and two-sided p-value.
    public struct Comparison: Sendable {
        public let difference: Double
        public let lower: Double
        public let upper: Double
        public let pValue: Double
        /// Welch: the t statistic and the Welch–Satterthwaite degrees of freedom (nil for the bootstrap).
        public var t: Double?
        public var degreesOfFreedom: Double?
    }

    /// Welch's t-test of two independent samples, such as one configuration's scores over seeds against
    /// another's; as `scipy.stats.ttest_ind(a, b, equal_var=False)` with its `confidence_interval(0.95)`.
    /// Nil when a sample has fewer than two values or neither varies.
    public static func welch(_ a: [Double], _ b: [Double]) -> Comparison? {
        guard a.count >= 2, b.count >= 2 else { return nil }
        let (va, vb) = (variance(a) / Double(a.count), variance(b) / Double(b.count))
        let standardError = (va + vb).squareRoot()
        guard standardError > 0 else { return nil }
        let difference = mean(a) - mean(b), t = difference / standardError
        let df = (va + vb) * (va + vb) / (va * va / Double(a.count - 1) + vb * vb / Double(b.count - 1))
        let p = 2 * (1 - studentT(abs(t), degreesOfFreedom: df))
        let margin = studentTQuantile(0.975, degreesOfFreedom: df) * standardError
        return Comparison(difference: difference, lower: difference - margin, upper: difference + margin, pValue: min(1, p),
                          t: t, degreesOfFreedom: df)
    }

    /// The paired bootstrap over `count` evaluation examples: `resamples` times, draw `count` examples with
    /// replacement (a seeded stream, so the answer repeats) and compute `difference` of the two systems' metric on
    /// them. The interval is the 2.5th to 97.5th percentile of those differences; the p-value is twice the share of
    /// resamples on the other side of zero from the observed difference (at most 1).
    public static func pairedBootstrap(count: Int, resamples: Int = 10_000, seed: UInt64 = 0,
                                       difference: ([Int]) -> Double) -> Comparison {
        var random = SeededRandom(seed: seed)
        let observed = difference(Array(0..<count))
        var differences: [Double] = []
        differences.reserveCapacity(resamples)
        var sample = [Int](repeating: 0, count: count)
        for _ in 0..<resamples {
            for i in 0..<count { sample[i] = Int(random.nextBits() % UInt64(count)) }
            differences.append(difference(sample))
        }
        differences.sort()
        let below = Double(differences.filter { $0 <= 0 }.count), above = Double(differences.filter { $0 >= 0 }.count)
        let p = min(1, 2 * min(below, above) / Double(resamples))
        return Comparison(difference: observed, lower: percentile(differences, 2.5), upper: percentile(differences, 97.5), pValue: p)
    }

    public static func mean(_ x: [Double]) -> Double { x.reduce(0, +) / Double(x.count) }

    /// The sample variance (n − 1 in the denominator).
    public static func variance(_ x: [Double]) -> Double {
        let m = mean(x)
        return x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)
    }

    /// The `q`-th percentile of sorted values, interpolating linearly between neighbours (NumPy's default).
    static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        let position = q / 100 * Double(sorted.count - 1)
        let low = Int(position.rounded(.down)), high = min(low + 1, sorted.count - 1)
        return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
    }

    /// P(T ≤ t) for Student's t distribution, through the regularised incomplete beta function.
    static func studentT(_ t: Double, degreesOfFreedom df: Double) -> Double {
        let tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5)
        return t > 0 ? 1 - tail : tail
    }

    /// The t with P(T ≤ t) = p, by bisection (the distribution function is monotone).
    static func studentTQuantile(_ p: Double, degreesOfFreedom df: Double) -> Double {
        var (low, high) = (-1e3, 1e3)
        for _ in 0..<200 {
            let middle = (low + high) / 2
            if studentT(middle, degreesOfFreedom: df) < p { low = middle } else { high = middle }
        }
        return (low + high) / 2
    }

    /// I_x(a, b), the regularised incomplete beta function, from its continued fraction (evaluated by Lentz's
    /// method) on the side of x where it converges fast.
    static func incompleteBeta(_ x: Double, _ a: Double, _ b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logBeta: Double = lgamma(a) + lgamma(b) - lgamma(a + b)
        let logPowers: Double = a * Foundation.log(x) + b * Foundation.log(1 - x)
        let front = Foundation.exp(logPowers - logBeta)
        if x < (a + 1) / (a + b + 2) { return front * betaFraction(x, a, b) / a }
        return 1 - front * betaFraction(1 - x, b, a) / b
    }

    private static func betaFraction(_ x: Double, _ a: Double, _ b: Double) -> Double {
        let tiny = 1e-300
        func guarded(_ v: Double) -> Double { abs(v) < tiny ? tiny : v }
        var c = 1.0, d = 1 / guarded(1 - (a + b) * x / (a + 1)), h = d
        for m in 1...500 {
            let m = Double(m), twoM: Double = 2 * m
            let evenDenominator: Double = (a + twoM - 1) * (a + twoM)
            let even: Double = m * (b - m) * x / evenDenominator
            d = 1 / guarded(1 + even * d)
            c = guarded(1 + even / c)
            h *= d * c
            let oddDenominator: Double = (a + twoM) * (a + twoM + 1)
            let odd: Double = -(a + m) * (a + b + m) * x / oddDenominator
            d = 1 / guarded(1 + odd * d)
            c = guarded(1 + odd / c)
            h *= d * c
            if abs(d * c - 1) < 1e-15 { break }
        }
        return h
    }
}

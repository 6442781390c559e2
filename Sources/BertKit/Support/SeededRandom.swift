import Foundation

/// The toolkit's random numbers: a seeded SplitMix64 stream, so that data order, masking and parameter
/// initialisation depend on the seed alone (never on the platform's generator).
public struct SeededRandom {
    private var state: UInt64
    private var spare: Float?

    public init(seed: UInt64) { state = seed }

    /// An independent stream `stream` of `seed` (say, one per training example and epoch).
    public init(seed: UInt64, stream: UInt64) {
        state = Self.mix(seed ^ Self.mix(stream &+ 0x6A09_E667_F3BC_C909))
    }

    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 33)) &* 0xFF51_AFD7_ED55_8CCD
        z = (z ^ (z >> 33)) &* 0xC4CE_B9FE_1A85_EC53
        return z ^ (z >> 33)
    }

    public mutating func nextBits() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform sample in (0, 1].
    public mutating func nextUniform() -> Double {
        (Double(nextBits() >> 11) + 1) * 0x1p-53
    }

    /// A uniform integer in `range`.
    public mutating func nextInt(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(nextBits() % UInt64(range.count))
    }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { nextUniform() <= p }

    /// A standard normal sample (Box-Muller).
    public mutating func next() -> Float {
        if let s = spare { spare = nil; return s }
        let u1 = nextUniform(), u2 = nextUniform()
        let radius = (-2 * Foundation.log(u1)).squareRoot()
        spare = Float(radius * Foundation.sin(2 * .pi * u2))
        return Float(radius * Foundation.cos(2 * .pi * u2))
    }
}

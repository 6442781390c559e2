/// Sums and dot products that vectorise: Swift keeps floating-point addition in source order, so a plain
/// loop is a serial chain. Sixteen independent accumulators let the compiler use full vector registers.
typealias Lanes = SIMD16<Float>

@inline(__always)
func loadLanes(_ p: UnsafePointer<Float>) -> Lanes {
    UnsafeRawPointer(p).loadUnaligned(as: Lanes.self)
}

/// Σ p[i] for i in 0..<count.
@inline(__always)
public func sum(_ p: UnsafePointer<Float>, count: Int) -> Float {
    var acc = Lanes.zero
    var i = 0
    while i + Lanes.scalarCount <= count {
        acc += loadLanes(p + i)
        i += Lanes.scalarCount
    }
    var total = acc.sum()
    while i < count { total += p[i]; i += 1 }
    return total
}

/// max p[i] for i in 0..<count (−∞ when empty). A plain loop over `max` stays scalar: Swift's `max`
/// orders NaN, which the vectoriser will not reorder.
@inline(__always)
public func maximum(_ p: UnsafePointer<Float>, count: Int) -> Float {
    var acc = Lanes(repeating: -.infinity)
    var i = 0
    while i + Lanes.scalarCount <= count {
        let x = loadLanes(p + i)
        acc.replace(with: x, where: x .> acc)
        i += Lanes.scalarCount
    }
    var result = acc.max()
    while i < count { result = max(result, p[i]); i += 1 }
    return result
}

/// Σ a[i]·b[i] for i in 0..<count.
@inline(__always)
public func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var acc = Lanes.zero
    var i = 0
    while i + Lanes.scalarCount <= count {
        acc += loadLanes(a + i) * loadLanes(b + i)
        i += Lanes.scalarCount
    }
    var total = acc.sum()
    while i < count { total += a[i] * b[i]; i += 1 }
    return total
}

/// Σ (p[i] - shift)² for i in 0..<count.
@inline(__always)
public func sumOfSquaredDeviations(_ p: UnsafePointer<Float>, count: Int, from shift: Float) -> Float {
    var acc = Lanes.zero
    let center = Lanes(repeating: shift)
    var i = 0
    while i + Lanes.scalarCount <= count {
        let d = loadLanes(p + i) - center
        acc += d * d
        i += Lanes.scalarCount
    }
    var total = acc.sum()
    while i < count { let d = p[i] - shift; total += d * d; i += 1 }
    return total
}

/// The index of the largest of `count` values (the first, on a tie), as `torch.argmax` picks it.
public func argmax(_ p: UnsafePointer<Float>, count: Int) -> Int {
    var best = 0
    for i in 1..<max(count, 1) where p[i] > p[best] { best = i }
    return best
}

/// Whether any of `count` values is not +0 (a sparse gradient's untouched rows are all +0).
@inline(__always)
public func isNonzero(_ p: UnsafePointer<Float>, count: Int) -> Bool {
    let bits = UnsafeRawPointer(p).assumingMemoryBound(to: UInt32.self)
    var any: UInt32 = 0
    for i in 0..<count { any |= bits[i] }
    return any != 0
}

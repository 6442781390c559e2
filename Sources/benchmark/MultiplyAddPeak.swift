import Foundation
import Kernels

/// The machine's fp32 multiply-add rate with nothing but multiply-adds to do: the ceiling that every matrix
/// product's rate is a fraction of, measured rather than taken from a data sheet, since the clock of a virtual
/// machine's cores is not what the CPU's name says.
enum MultiplyAddPeak {
    /// GFLOP/s (a multiply-add counts two) of every pool thread running independent 16-lane multiply-add
    /// chains at once, for about `seconds` (each thread's share is long enough that the pool's sleeping workers
    /// have woken and taken theirs well before the calling thread could take a second one).
    static func measure(seconds: Double) -> Double {
        let rounds = calibratedRounds(seconds: seconds)
        var results = [Float](repeating: 0, count: Parallel.workers)
        let started = DispatchTime.now().uptimeNanoseconds
        results.withUnsafeMutableBufferPointer {
            Parallel.forEach(Parallel.workers, Chains(rounds: rounds, results: $0.baseAddress!))
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        // The chains' sums are read, so that the compiler keeps the loop; they stay finite by construction.
        precondition(results.allSatisfy(\.isFinite), "multiply-add chains overflowed")
        return Double(Parallel.workers * rounds * flopsPerRound) / elapsed / 1e9
    }

    /// Twelve chains: enough to cover the latency of a multiply-add on two vector units (4 cycles × 2).
    private static let chains = 12
    private static let flopsPerRound = chains * SIMD16<Float>.scalarCount * 2

    /// Rounds that take one thread about `seconds`, from a short trial on the calling thread.
    private static func calibratedRounds(seconds: Double) -> Int {
        let trial = 1 << 20
        let started = DispatchTime.now().uptimeNanoseconds
        var result = Float(0)
        withUnsafeMutablePointer(to: &result) { Chains(rounds: trial, results: $0)(0) }
        let elapsed = max(1e-6, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
        return max(trial, Int(Double(trial) * seconds / elapsed))
    }

    private struct Chains: Parallel.IndexBody {
        let rounds: Int
        /// Each thread's sum of its chains, at its index.
        let results: UnsafeMutablePointer<Float>

        func callAsFunction(_ index: Int) {
            results[index] = Self.run(rounds, start: 1 + Float(index) / 64)
        }

        /// Twelve chains `a = a · factor + term`, in registers; distinct starting values, so that the compiler
        /// cannot merge them, and a factor just below 1 keeps every value finite and normal.
        @inline(never)
        private static func run(_ rounds: Int, start s: Float) -> Float {
            var (a0, a1, a2, a3) = (SIMD16<Float>(repeating: s), SIMD16<Float>(repeating: s + 1), SIMD16<Float>(repeating: s + 2), SIMD16<Float>(repeating: s + 3))
            var (a4, a5, a6, a7) = (SIMD16<Float>(repeating: s + 4), SIMD16<Float>(repeating: s + 5), SIMD16<Float>(repeating: s + 6), SIMD16<Float>(repeating: s + 7))
            var (a8, a9, a10, a11) = (SIMD16<Float>(repeating: s + 8), SIMD16<Float>(repeating: s + 9), SIMD16<Float>(repeating: s + 10), SIMD16<Float>(repeating: s + 11))
            let f = SIMD16<Float>(repeating: 0.999_999), t = SIMD16<Float>(repeating: 1e-7)
            for _ in 0..<rounds {
                a0 = t.addingProduct(a0, f); a1 = t.addingProduct(a1, f); a2 = t.addingProduct(a2, f)
                a3 = t.addingProduct(a3, f); a4 = t.addingProduct(a4, f); a5 = t.addingProduct(a5, f)
                a6 = t.addingProduct(a6, f); a7 = t.addingProduct(a7, f); a8 = t.addingProduct(a8, f)
                a9 = t.addingProduct(a9, f); a10 = t.addingProduct(a10, f); a11 = t.addingProduct(a11, f)
            }
            return (a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11).sum()
        }
    }
}

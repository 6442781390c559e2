import Dispatch
import Foundation

/// The one thread pool of the toolkit: Dispatch owns every core, and the BLAS library runs single-threaded
/// inside it (see `Gemm.swift`). Two pools would spin against each other after each GEMM and halve the speed
/// of the next elementwise kernel (measured in `../shared/reference/platform.md`).
public enum Parallel {
    /// Number of workers a parallel loop is split into.
    public static let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body(i)` for every `i` in `0..<count`, spread over the cores. Iterations must be independent.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 1 || workers == 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let task = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: count) { i in task.value(i) }
        }
    }

    /// Splits `0..<count` into one contiguous range per worker (fewer when a range would be shorter than
    /// `minimumChunk`) and calls `body` on each range in parallel.
    public static func forRanges(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        let chunks = max(1, min(workers, count / max(1, minimumChunk)))
        if chunks == 1 {
            if count > 0 { body(0..<count) }
            return
        }
        forEach(chunks) { c in
            body(count * c / chunks ..< count * (c + 1) / chunks)
        }
    }
}

/// Carries a value across the `@Sendable` boundary of a parallel loop whose iterations touch disjoint memory.
@usableFromInline
struct UncheckedSendable<Value>: @unchecked Sendable {
    @usableFromInline let value: Value
    @usableFromInline init(_ value: Value) { self.value = value }
}

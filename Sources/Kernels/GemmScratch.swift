import Foundation

/// A thread's working memory for the products it starts: bf16 copies of operands (and, on a CPU without a bf16
/// GEMM kernel, their fp32 widenings), and the partial results of a product whose sum is split across the
/// cores. Each thread owns its own scratch (a pthread key); each slot grows to the largest size asked of it and
/// is then reused, so a warm training step allocates nothing here.
final class GemmScratch {
    /// A rounded operand: contiguous rows of `ld` elements.
    struct Rounded {
        let pointer: UnsafePointer<BFloat16>
        let ld: Int
    }

    /// A bf16 operand widened to fp32: contiguous rows of `ld` elements.
    struct Widened {
        let pointer: UnsafePointer<Float>
        let ld: Int
    }

    /// A buffer that grows to the largest size asked of it and is then reused.
    private struct Growing<Element> {
        private(set) var pointer: UnsafeMutablePointer<Element>?
        private var capacity = 0

        mutating func reserve(_ count: Int) -> UnsafeMutablePointer<Element> {
            if capacity < count {
                pointer?.deallocate()
                pointer = .allocate(capacity: count)
                capacity = count
            }
            return pointer!
        }
    }

    /// Slots 0 and 1: the A and B of one product.
    private var roundedSlots = [Growing<BFloat16>(), Growing<BFloat16>()]
    private var widenedSlots = [Growing<Float>(), Growing<Float>()]
    private var partialSums = Growing<Float>()

    deinit {
        for slot in roundedSlots { slot.pointer?.deallocate() }
        for slot in widenedSlots { slot.pointer?.deallocate() }
        partialSums.pointer?.deallocate()
    }

    /// Room for `count` floats of partial products, which the pool's threads write and the owner then adds up.
    func partialSums(_ count: Int) -> UnsafeMutablePointer<Float> {
        partialSums.reserve(count)
    }

    /// The stored matrix of a bf16 `operand` as exact fp32 values, in slot 0 or 1 (the A and B of one
    /// single-threaded product), dropping any padding between rows. Only products on a CPU without a bf16
    /// kernel read these.
    func widened(_ stored: UnsafePointer<BFloat16>, _ operand: Operand, slot: Int) -> Widened {
        let (rows, columns) = (operand.storedRows, operand.storedColumns)
        let target = widenedSlots[slot].reserve(rows * columns)
        for r in 0..<rows {
            let (x, y) = (stored + r * operand.ld, target + r * columns)
            for c in 0..<columns { y[c] = x[c].float }
        }
        return Widened(pointer: UnsafePointer(target), ld: columns)
    }

    /// The stored matrix of `operand` in bf16: as given when already rounded, otherwise rounded into slot 0
    /// or 1 (the A and B of one product), dropping any padding between rows.
    func rounded(_ stored: GemmOperand, _ operand: Operand, slot: Int, parallel: Bool) -> Rounded {
        let source: UnsafePointer<Float>
        switch stored {
        case .bfloat16(let rounded): return Rounded(pointer: rounded, ld: operand.ld)
        case .float32(let values): source = values
        }
        let target = roundedSlots[slot].reserve(operand.storedRows * operand.storedColumns)
        let body = RoundRows(source: source, ld: operand.ld, target: target, columns: operand.storedColumns)
        if parallel {
            Parallel.forRanges(operand.storedRows, minimumChunk: 64, body)
        } else {
            body(0..<operand.storedRows)
        }
        return Rounded(pointer: UnsafePointer(target), ld: operand.storedColumns)
    }

    private struct RoundRows: Parallel.RangeBody {
        let source: UnsafePointer<Float>
        let ld: Int
        let target: UnsafeMutablePointer<BFloat16>
        let columns: Int

        func callAsFunction(_ rows: Range<Int>) {
            BFloat16.roundSerial(rows: rows.count, columns: columns, source + rows.lowerBound * ld, ld: ld,
                                 into: target + rows.lowerBound * columns)
        }
    }

    /// The calling thread's scratch, made on its first use and released when the thread ends.
    static var forThisThread: GemmScratch { perThread.value }
    private static let perThread = PerThread { GemmScratch() }
}

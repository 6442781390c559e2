/// How a pass lays out a batch's tokens as matrix rows: sequence `b`'s first `rowCount(b)` tokens are the rows
/// `start(b) ..< start(b) + rowCount(b)`, one sequence after another.
///
/// Padded, every sequence holds `T` rows, padding included, as the reference computes them (every output
/// position then matches it). Packed, each holds its real tokens alone, which skips padding's work where
/// nothing reads the padded rows: attention never looks at padded keys, so the real rows are the same either
/// way. A row's padded position `b · T + t` numbers its dropout draws, so both layouts drop the same elements.
public struct TokenLayout: @unchecked Sendable {
    /// Each sequence's real tokens (the rest of its `T` are padding).
    public let lengths: [Int]
    /// The padded length `T`.
    public let length: Int
    /// Packed: `sequences + 1` entries, sequence `b`'s rows `starts[b] ..< starts[b + 1]`; nil when padded.
    private let starts: UnsafePointer<Int32>?
    /// Rows in all.
    public let rows: Int

    /// Every sequence at `T` rows.
    public static func padded(lengths: [Int], length T: Int) -> TokenLayout {
        TokenLayout(lengths: lengths, length: T, starts: nil, rows: lengths.count * T)
    }

    public var sequences: Int { lengths.count }

    public var isPadded: Bool { starts == nil }

    /// The first row of sequence `b`.
    @inline(__always)
    public func start(_ b: Int) -> Int { starts.map { Int($0[b]) } ?? b * length }

    /// The rows of sequence `b`.
    @inline(__always)
    public func rowCount(_ b: Int) -> Int { starts.map { Int($0[b + 1] - $0[b]) } ?? length }

    /// Room for packed layouts of batches of up to `maxBatch` sequences.
    public struct Storage {
        private let starts: UnsafeMutablePointer<Int32>
        private let maxBatch: Int

        public init(maxBatch: Int, pool: BufferPool) {
            starts = pool.int32s(maxBatch + 1)
            self.maxBatch = maxBatch
        }

        /// Each sequence's `lengths[b]` real tokens, padded to `T`, one after another. Valid until the next call.
        public func packed(lengths: [Int], length T: Int) -> TokenLayout {
            precondition(lengths.count <= maxBatch, "\(lengths.count) sequences exceed \(maxBatch)")
            var row = 0
            for (b, n) in lengths.enumerated() {
                precondition(n <= T, "a sequence of \(n) tokens padded to \(T)")
                starts[b] = Int32(row)
                row += n
            }
            starts[lengths.count] = Int32(row)
            return TokenLayout(lengths: lengths, length: T, starts: starts, rows: row)
        }
    }
}

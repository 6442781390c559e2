/// Some rows of a batch's token matrix (laid out as a `TokenLayout`): the only ones a pass computes when a
/// head reads nothing else of the last layer (each sequence's `[CLS]` row for a sequence classifier, the scored
/// tokens for a tagger). Passes over a selection read and write compact matrices, row `i` standing for the
/// token at padded position `positions[i]`; that row is the one a pass over every token computes, dropout
/// masks included.
///
/// Positions ascend, so each sequence's rows are consecutive. The storage belongs to a `SelectedRows.Storage`
/// and holds until its next selection.
public struct SelectedRows: @unchecked Sendable {
    /// The padded position, `b · T + t`, of each selected row's token.
    public let positions: UnsafePointer<Int32>
    /// The row of each selected token in the layout it was selected from.
    let sources: UnsafePointer<Int32>
    /// `batch + 1` entries: sequence `b`'s rows are `sequenceStarts[b] ..< sequenceStarts[b + 1]`.
    let sequenceStarts: UnsafePointer<Int32>
    public let count: Int

    /// The compact rows of sequence `b`.
    public func rows(ofSequence b: Int) -> Range<Int> { Int(sequenceStarts[b])..<Int(sequenceStarts[b + 1]) }

    /// Copies the selected rows of `matrix` (in the selection's layout) into the first `count` rows of `compact`.
    public func gather(_ matrix: UnsafePointer<Float>, width: Int, into compact: UnsafeMutablePointer<Float>) {
        for i in 0..<count { (compact + i * width).update(from: matrix + Int(sources[i]) * width, count: width) }
    }

    /// Copies the first `count` rows of `compact` into the selected rows of `matrix`, leaving the others.
    public func scatter(_ compact: UnsafePointer<Float>, width: Int, into matrix: UnsafeMutablePointer<Float>) {
        for i in 0..<count { (matrix + Int(sources[i]) * width).update(from: compact + i * width, count: width) }
    }

    /// Room for the selections of batches of up to `maxBatch` sequences of `maxLength` tokens.
    public struct Storage {
        private let positions: UnsafeMutablePointer<Int32>
        private let sources: UnsafeMutablePointer<Int32>
        private let sequenceStarts: UnsafeMutablePointer<Int32>
        private let maxBatch: Int, maxLength: Int

        public init(maxBatch: Int, maxLength: Int, pool: BufferPool) {
            positions = pool.int32s(maxBatch * maxLength)
            sources = pool.int32s(maxBatch * maxLength)
            sequenceStarts = pool.int32s(maxBatch + 1)
            (self.maxBatch, self.maxLength) = (maxBatch, maxLength)
        }

        /// The tokens of `layout`'s rows at whose padded position `b · T + t` `include` holds.
        public func select(_ layout: TokenLayout, where include: (Int) -> Bool) -> SelectedRows {
            let T = layout.length
            precondition(layout.sequences <= maxBatch && T <= maxLength,
                         "a selection of \(layout.sequences)×\(T) tokens exceeds \(maxBatch)×\(maxLength)")
            var count = 0
            for b in 0..<layout.sequences {
                sequenceStarts[b] = Int32(count)
                for t in 0..<layout.rowCount(b) where include(b * T + t) {
                    positions[count] = Int32(b * T + t)
                    sources[count] = Int32(layout.start(b) + t)
                    count += 1
                }
            }
            sequenceStarts[layout.sequences] = Int32(count)
            return SelectedRows(positions: positions, sources: sources, sequenceStarts: sequenceStarts, count: count)
        }

        /// Each sequence's first token: its `[CLS]` row, all that a pooler reads.
        public func firstTokens(_ layout: TokenLayout) -> SelectedRows {
            select(layout) { $0 % layout.length == 0 }
        }
    }
}

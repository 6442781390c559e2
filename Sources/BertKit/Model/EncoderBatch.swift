/// A batch of token sequences for the encoder, padded on the right to a common length.
///
/// Padding is described by each sequence's length rather than by a 0/1 mask: attention then simply never
/// looks at keys past a sequence's end, which is exactly what BERT's additive mask of a large negative number
/// achieves (its softmax weights underflow to 0), without computing them.
public struct EncoderBatch: Sendable {
    public let batchSize: Int
    /// The padded length `T` of every sequence.
    public let sequenceLength: Int
    /// `[batchSize · sequenceLength]` WordPiece ids, row-major.
    public var tokenIds: [Int32]
    /// `[batchSize · sequenceLength]` segment ids: 0 for `[CLS] A [SEP]`, 1 for `B [SEP]`.
    public var tokenTypeIds: [Int32]
    /// Number of real (non-padding) tokens in each sequence.
    public var lengths: [Int]

    public var tokenCount: Int { batchSize * sequenceLength }

    public init(batchSize: Int, sequenceLength: Int, tokenIds: [Int32], tokenTypeIds: [Int32], lengths: [Int]) {
        precondition(tokenIds.count == batchSize * sequenceLength && tokenTypeIds.count == tokenIds.count)
        precondition(lengths.count == batchSize && lengths.allSatisfy { $0 >= 1 && $0 <= sequenceLength },
                     "every sequence needs between 1 and \(sequenceLength) tokens")
        self.batchSize = batchSize
        self.sequenceLength = sequenceLength
        self.tokenIds = tokenIds
        self.tokenTypeIds = tokenTypeIds
        self.lengths = lengths
    }

    /// Pads token sequences (and their segment ids, 0 when absent) on the right to the longest of them, or to
    /// `length` (the longest of a batch of which they are a share, `BatchShare`).
    public init(padding sequences: [[Int32]], typeIds: [[Int32]]? = nil, padId: Int32, length: Int? = nil) {
        let longest = sequences.map(\.count).max() ?? 1
        precondition(length.map { $0 >= longest } ?? true, "sequences of \(longest) tokens padded to \(length!)")
        let length = length ?? longest
        var ids = [Int32](repeating: padId, count: sequences.count * length)
        var types = [Int32](repeating: 0, count: ids.count)
        for (row, sequence) in sequences.enumerated() {
            for (t, id) in sequence.enumerated() { ids[row * length + t] = id }
            for (t, type) in (typeIds?[row] ?? []).enumerated() { types[row * length + t] = type }
        }
        self.init(batchSize: sequences.count, sequenceLength: length, tokenIds: ids, tokenTypeIds: types,
                  lengths: sequences.map(\.count))
    }

    /// Builds a batch from a Hugging Face style 0/1 attention mask, which must be right-padded.
    public init(batchSize: Int, sequenceLength: Int, tokenIds: [Int32], tokenTypeIds: [Int32], attentionMask: [Int]) {
        var lengths: [Int] = []
        for b in 0..<batchSize {
            let row = attentionMask[(b * sequenceLength)..<((b + 1) * sequenceLength)]
            let n = row.reduce(0, +)
            precondition(row.prefix(n).allSatisfy { $0 == 1 }, "attention mask of sequence \(b) is not right-padded")
            lengths.append(n)
        }
        self.init(batchSize: batchSize, sequenceLength: sequenceLength, tokenIds: tokenIds,
                  tokenTypeIds: tokenTypeIds, lengths: lengths)
    }
}

/// Whether dropout is active, the seed of this step's random streams, and where the batch stands in the batch
/// that a group of processes shares.
public struct DropoutMode: Sendable {
    public let training: Bool
    public let seed: UInt64
    /// The position of this batch's first sequence in the whole batch when processes share it (`BatchShare`),
    /// else 0. Every dropout site numbers its draws as if it ran over the whole batch, padded to the same
    /// length, so that a sequence gets the same masks whichever process computes it and however many there are.
    public let firstSequence: Int

    public static let evaluation = DropoutMode(training: false, seed: 0, firstSequence: 0)

    public static func training(seed: UInt64, firstSequence: Int = 0) -> DropoutMode {
        DropoutMode(training: true, seed: seed, firstSequence: firstSequence)
    }

    /// Probability to use at a site: the configured one while training, 0 in evaluation.
    func probability(_ configured: Float) -> Float { training ? configured : 0 }

    func seed(site: Int) -> UInt64 { Dropout.streamSeed(seed, site: UInt64(site)) }

    /// The draw of this batch's first element at a site whose tensor has `elements` per sequence.
    func first(perSequence elements: Int) -> Int { firstSequence * elements }
}

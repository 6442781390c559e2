/// A tokenised text or text pair, ready for the encoder.
public struct Encoding: Sendable, Equatable {
    public var ids: [Int32] = []
    /// Segment of each token: 0 for `[CLS] A [SEP]`, 1 for `B [SEP]`.
    public var typeIds: [Int32] = []
    /// Each token's characters in the text it came from, as Unicode-scalar (code point) offsets; special
    /// tokens added around the texts have the empty range `0..<0`.
    public var offsets: [Range<Int>] = []
    /// Index of the word (within its own text) each token belongs to; `nil` for added special tokens.
    public var wordIds: [Int?] = []
    /// Which text each token came from (0 for A, 1 for B); `nil` for added special tokens.
    public var sequenceIds: [Int?] = []

    public var count: Int { ids.count }

    mutating func append(_ id: Int32, type: Int32, offsets: Range<Int>, word: Int?, sequence: Int?) {
        ids.append(id)
        typeIds.append(type)
        self.offsets.append(offsets)
        wordIds.append(word)
        sequenceIds.append(sequence)
    }
}

/// One token of a text, before special tokens are added.
public struct Token: Sendable, Equatable {
    public let id: Int32
    /// Unicode-scalar offsets in the original text.
    public let offsets: Range<Int>
    /// Index of the word the token belongs to.
    public let word: Int
}

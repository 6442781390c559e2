/// Two segments of text as BERT's pre-training sees them, `[CLS] A [SEP] B [SEP]`, before masking.
public struct SegmentPair: Sendable, Equatable {
    public let ids: [Int32]
    public let typeIds: [Int32]
    /// NotNext: B was taken from another document rather than continuing A.
    public let isRandomNext: Bool
}

/// Packs tokenised documents into segment pairs as the original recipe (`create_pretraining_data.py`) does.
///
/// Sentences of a document are gathered until they reach the target length (the maximum, or with
/// `shortSequenceProbability` a random shorter one, so that fine-tuning on short inputs is not a surprise).
/// The gathered chunk is cut at a random sentence into A and B; half of the time B is replaced by sentences
/// from a random other document (its unused sentences go back to be used by the next pair). The longer
/// segment is then trimmed, from a random end, until the pair fits.
///
/// One change keeps the labels balanced: the original makes every one-sentence chunk NotNext, since it cannot
/// be cut, which on a corpus of short documents tilts the labels (64 % NotNext on the bundled corpus). Here the
/// coin is tossed first; a one-sentence chunk that drew IsNext takes in the next sentence, or, at the end of
/// its document, becomes B after its predecessor (used a second time); a one-sentence document is only used as
/// another's random B.
public struct SegmentPairBuilder: Sendable {
    public var maxLength: Int
    public var shortSequenceProbability = 0.1
    /// Without next-sentence prediction, B is always the true continuation (and a lone sentence stands alone).
    public var nextSentencePrediction = true
    /// The special tokens around a pair or a lone sentence (`[CLS] A [SEP] B [SEP]` for BERT).
    public let template: PostProcessor

    public init(maxLength: Int, template: PostProcessor) {
        self.maxLength = maxLength
        self.template = template
    }

    /// Pairs from every document; `documents[d][s]` holds the token ids of sentence `s` of document `d`.
    public func pairs(from documents: [[[Int32]]], seed: UInt64) -> [SegmentPair] {
        var random = SeededRandom(seed: seed)
        var pairs: [SegmentPair] = []
        for d in documents.indices {
            pairs += documentPairs(d, of: documents, random: &random)
        }
        return pairs
    }

    private func documentPairs(_ d: Int, of documents: [[[Int32]]], random: inout SeededRandom) -> [SegmentPair] {
        let document = documents[d]
        let budget = maxLength - template.addedTokenCount(pair: true)
        let target = random.chance(shortSequenceProbability) ? random.nextInt(in: 2...max(2, budget)) : budget
        // A one-sentence document cannot make an IsNext pair; with NSP it only serves as another's random B.
        if nextSentencePrediction && document.count < 2 { return [] }
        var pairs: [SegmentPair] = []
        var chunk: [[Int32]] = []
        var chunkLength = 0
        // The toss of a one-sentence chunk that is gathering its next sentence: kept, not tossed again.
        var tossed: Bool? = nil
        var i = 0
        while i < document.count {
            chunk.append(document[i])
            chunkLength += document[i].count
            if i == document.count - 1 || chunkLength >= target {
                let wantsRandomNext = tossed ?? (nextSentencePrediction && documents.count > 1 && random.chance(0.5))
                tossed = nil
                if chunk.count == 1 && nextSentencePrediction && !wantsRandomNext {
                    if i < document.count - 1 {  // gather the next sentence too
                        tossed = wantsRandomNext
                        i += 1
                        continue
                    }
                    chunk.insert(document[i - 1], at: 0)  // the last sentence continues its predecessor, used again
                }
                let aEnd = chunk.count >= 2 ? random.nextInt(in: 1...(chunk.count - 1)) : 1
                var a = Array(chunk[..<aEnd].joined())
                var b: [Int32] = []
                if wantsRandomNext {
                    var other = d
                    for _ in 0..<10 where other == d { other = random.nextInt(in: 0...(documents.count - 1)) }
                    let source = documents[other]
                    var s = random.nextInt(in: 0...(source.count - 1))
                    repeat {
                        b += source[s]
                        s += 1
                    } while s < source.count && b.count < target - a.count
                    i -= chunk.count - aEnd  // the unused sentences start the next chunk
                } else {
                    b = Array(chunk[aEnd...].joined())
                }
                truncate(&a, &b, to: budget, random: &random)
                if !a.isEmpty && !b.isEmpty {
                    let (ids, typeIds) = template.apply(ids: a, b)
                    pairs.append(SegmentPair(ids: ids, typeIds: typeIds, isRandomNext: wantsRandomNext))
                } else if !a.isEmpty && !nextSentencePrediction {
                    // Masked LM alone: a lone sentence is a sequence of its own.
                    let (ids, typeIds) = template.apply(ids: a, nil)
                    pairs.append(SegmentPair(ids: ids, typeIds: typeIds, isRandomNext: false))
                }
                chunk = []
                chunkLength = 0
            }
            i += 1
        }
        return pairs
    }

    /// Trims the longer segment, from its front or its back at random, until both fit in `budget` tokens.
    private func truncate(_ a: inout [Int32], _ b: inout [Int32], to budget: Int, random: inout SeededRandom) {
        while a.count + b.count > budget {
            if a.count > b.count {
                if random.chance(0.5) { a.removeFirst() } else { a.removeLast() }
            } else {
                if random.chance(0.5) { b.removeFirst() } else { b.removeLast() }
            }
        }
    }
}

/// A sequence with some positions masked for prediction, and the tokens that were there.
public struct MaskedSequence: Sendable, Equatable {
    public let ids: [Int32]
    /// Masked positions, ascending.
    public let positions: [Int]
    /// The original token at each masked position.
    public let labels: [Int32]
}

/// BERT's masked-LM corruption: of the positions that are not special tokens, a share (`probability`, 15 %,
/// at most `maxPredictions`) is chosen; of those, 80 % become `[MASK]`, 10 % a random token and 10 % stay as
/// they are. With whole-word masking, a word's `##` pieces are chosen together with its first piece.
public struct Masker: Sendable {
    public var probability = 0.15
    public var maxPredictions = 20
    public var wholeWord = false
    public let maskId: Int32
    /// Ids never chosen: those the tokenizer's template adds (`[CLS]`, `[SEP]`) and padding.
    public let special: Set<Int32>
    /// For every vocabulary id, whether it continues a word (a `##` piece).
    public let continuesWord: [Bool]

    /// Throws when the tokenizer has no mask token.
    public init(tokenizer: Tokenizer) throws {
        maskId = try tokenizer.requiredMaskId()
        special = tokenizer.postProcessor.specialIds.union([tokenizer.padId])
        continuesWord = tokenizer.vocabulary.tokens.map { $0.hasPrefix("##") }
    }

    public func mask(_ ids: [Int32], random: inout SeededRandom) -> MaskedSequence {
        // Candidates: single positions, or whole words (a first piece and the `##` pieces that follow it).
        var candidates: [[Int]] = []
        for (i, id) in ids.enumerated() where !special.contains(id) {
            if wholeWord, continuesWord[Int(id)], let last = candidates.last?.last, last == i - 1 {
                candidates[candidates.count - 1].append(i)
            } else {
                candidates.append([i])
            }
        }
        Batches.shuffle(&candidates, &random)
        let positionCount = candidates.reduce(0) { $0 + $1.count }
        let wanted = min(maxPredictions, max(1, Int((Double(positionCount) * probability).rounded())))
        var chosen: [Int] = []
        for group in candidates where chosen.count < wanted && chosen.count + group.count <= wanted {
            chosen += group
        }
        chosen.sort()
        var corrupted = ids
        for p in chosen {
            if random.chance(0.8) {
                corrupted[p] = maskId
            } else if random.chance(0.5) {
                corrupted[p] = Int32(random.nextInt(in: 0...(continuesWord.count - 1)))
            }
        }
        return MaskedSequence(ids: corrupted, positions: chosen, labels: chosen.map { ids[$0] })
    }
}

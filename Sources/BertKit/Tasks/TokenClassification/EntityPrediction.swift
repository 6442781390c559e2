import Foundation

/// How sub-token scores become labelled words, as transformers' token-classification pipeline names the ways.
public enum EntityAggregation: String, CaseIterable, Sendable {
    /// Every sub-token is labelled on its own; neighbours of one type are then grouped.
    case simple
    /// A word takes the label (and score) of its first sub-token.
    case first
    /// A word takes the label with the highest mean probability over its sub-tokens.
    case average
    /// A word takes the label of its most confident sub-token.
    case max
}

extension TokenClassificationTask {
    /// Entities in raw text (text lines, or JSONL `text`): JSONL, one `{"entities": [...]}` per text, each entity
    /// with `entity_group` (its type), `score`, `start` and `end` (characters, counted as Python counts them),
    /// `text` (the input's characters there) and `word` (the pipeline's rendering of its tokens). CoNLL input
    /// (pre-split words, `--format conll`) gets `word predicted` lines instead, each word labelled by its first
    /// sub-token, as in training.
    public static func predict(_ request: PredictionRequest) throws -> PredictionReport {
        try EntityPredictor(request.setup).run(request)
    }
}

/// A `BertForTokenClassification` model over raw text, with transformers' token-classification pipeline's
/// post-processing: softmax per token, sub-tokens gathered into words (a token whose vocabulary form is as long
/// as the text it covers starts a word; `[UNK]` always does), words labelled by the aggregation, neighbouring
/// words of one type grouped into entities (a `B-` starts a new one), `O` dropped. A text longer than a window is
/// read in windows that share `overlap` tokens; each window's entities are found on their own, and where two
/// overlap, the longer (then the more confident) is kept.
struct EntityPredictor: Predictor {
    let tokenizer: Tokenizer
    let model: TokenClassifier
    var parameters: ParameterStore { model.parameters }
    let labels: [String]
    let aggregation: EntityAggregation
    let batchSize, maxLength, overlap: Int

    enum Example {
        /// Raw text: its scalars, its tokens, and the token ranges of its windows.
        case text(scalars: [Unicode.Scalar], tokens: [Token], windows: [Range<Int>])
        /// Pre-split words, windows holding whole words.
        case words([String], windows: [TokenWindow])
    }

    /// Entities in a text, or the tags of pre-split words.
    enum Output {
        case entities([Entity])
        case tags(words: [String], tags: [String])
    }

    init(_ setup: PredictionSetup) throws {
        tokenizer = try Tokenizer(directory: setup.model)
        labels = try setup.labels(of: "token classification")
        aggregation = setup.options[TokenClassificationTask.PredictionOption.aggregation]
        batchSize = setup.batchSize
        maxLength = setup.sequenceLength()
        overlap = try setup.overlap(length: maxLength, budget: maxLength - 2)
        model = TokenClassifier(config: setup.checkpoint.config, labels: labels.count, context: try setup.buildContext(maxLength: maxLength))
        _ = try setup.checkpoint.loadWeights(into: model.parameters)
    }

    func prepare(_ record: InputRecord, index: Int) throws -> Example {
        if let words = record.words {
            let windower = Windower(tokenizer: tokenizer, labels: labels, maxLength: maxLength, labelAllSubtokens: false)
            return .words(words, windows: windower.windows([TaggedSentence(words: words, tags: [], line: record.line)]))
        }
        let text = try record.string("text")
        let tokens = tokenizer.withEncodedOffsets(tokenizer.tokenize(text))
        // Windows as the tokenizer's overflow makes them: `budget` tokens, each starting `overlap` before the
        // previous one ended.
        let budget = maxLength - tokenizer.postProcessor.addedTokenCount(pair: false)
        var windows: [Range<Int>] = [], start = 0
        repeat {
            let end = Swift.min(start + budget, tokens.count)
            windows.append(start..<end)
            if end == tokens.count { break }
            start = end - overlap
        } while true
        return .text(scalars: Array(text.unicodeScalars), tokens: tokens, windows: windows)
    }

    func sequences(of example: Example) -> [ModelInput] {
        switch example {
        case let .text(_, tokens, windows):
            return windows.map { ModelInput(ids: tokenizer.encode(Array(tokens[$0]), nil).ids) }
        case let .words(_, windows):
            return windows.map { ModelInput(ids: $0.ids) }
        }
    }

    /// The logits of each sequence's tokens between the special tokens (`[CLS]` and `[SEP]` for BERT), all that
    /// the results read (so the model scores those alone): row `i` for the text's token `i`.
    func forward(_ batch: [ModelInput]) -> [[Float]] {
        let encoded = EncoderBatch(padding: batch.map(\.ids), padId: tokenizer.padId)
        let T = encoded.sequenceLength
        let (before, after) = tokenizer.postProcessor.specialsAroundSingle
        model.forward(encoded, scoring: { t in t % T >= before && t % T < batch[t / T].ids.count - after })
        var row = 0
        return batch.map { input in
            let inner = input.ids.count - before - after
            defer { row += inner }
            return Array(UnsafeBufferPointer(start: model.logits + row * labels.count, count: inner * labels.count))
        }
    }

    func result(of example: Example, outputs: [[Float]]) -> Output {
        switch example {
        case let .words(words, windows):
            var tags = Array(repeating: "O", count: words.count)
            for (window, logits) in zip(windows, outputs) {
                for (word, token) in window.wordTokens {
                    let inner = token - tokenizer.postProcessor.specialsAroundSingle.before
                    let scores = logits[(inner * labels.count)..<((inner + 1) * labels.count)]
                    tags[word] = labels[scores.indices.max { scores[$0] < scores[$1] }! - scores.startIndex]
                }
            }
            return .tags(words: words, tags: tags)
        case let .text(scalars, tokens, windows):
            var spans: [LabelledSpan] = []
            for (window, logits) in zip(windows, outputs) {
                let scored = window.enumerated().map { position, t -> ScoredToken in
                    let token = tokens[t], form = tokenizer.vocabulary.token(token.id)
                    let covered = String(String.UnicodeScalarView(scalars[token.offsets]))
                    let first = position * labels.count
                    let scores = softmax(logits[first..<(first + labels.count)])
                    // A word-aware tokenizer (one with a continuation prefix) marks a later piece of a word by its
                    // form being longer than the text it covers; without one, the pipeline's fallback: a piece whose
                    // text neither follows nor starts with a space.
                    let start = token.offsets.lowerBound
                    let continues = tokenizer.marksContinuations ? form.unicodeScalars.count != token.offsets.count
                        : start > 0 && scalars[start - 1] != " " && (start >= scalars.count || scalars[start] != " ")
                    return token.id == tokenizer.unknownId
                        ? ScoredToken(form: covered, scores: scores, offsets: token.offsets, continuesWord: false)
                        : ScoredToken(form: form, scores: scores, offsets: token.offsets, continuesWord: continues)
                }
                spans += group(words(scored)).filter { $0.type != "O" }
            }
            if windows.count > 1 { spans = Self.resolveOverlaps(spans) }
            return .entities(spans.map {
                Entity(group: $0.type, score: $0.score, word: $0.word, text: String(String.UnicodeScalarView(scalars[$0.offsets])),
                       start: $0.offsets.lowerBound, end: $0.offsets.upperBound)
            })
        }
    }

    func line(_ output: Output, of example: Example) -> String {
        switch output {
        case let .tags(words, tags): return zip(words, tags).map { "\($0) \($1)\n" }.joined()
        case let .entities(entities): return JSONOutput.line(["entities": entities.map(\.json)])
        }
    }

    /// A token with its label probabilities.
    struct ScoredToken {
        let form: String
        let scores: [Double]
        let offsets: Range<Int>
        let continuesWord: Bool
    }

    /// A labelled word, or (grouped) an entity.
    struct LabelledSpan {
        var label: String
        var score: Double
        var word: String
        var offsets: Range<Int>
        /// The type without its `B-`/`I-` prefix.
        var type: String { label.hasPrefix("B-") || label.hasPrefix("I-") ? String(label.dropFirst(2)) : label }
    }

    /// Words from tokens, each labelled by the aggregation (every token a word of its own under `simple`).
    func words(_ tokens: [ScoredToken]) -> [LabelledSpan] {
        var groups: [[ScoredToken]] = []
        for token in tokens {
            if aggregation != .simple, token.continuesWord, !groups.isEmpty { groups[groups.count - 1].append(token) } else { groups.append([token]) }
        }
        return groups.map { group in
            let scores: [Double]
            switch aggregation {
            case .simple, .first: scores = group[0].scores
            case .max: scores = group.max { $0.scores.max()! < $1.scores.max()! }!.scores
            case .average: scores = group[0].scores.indices.map { i in group.map { $0.scores[i] }.reduce(0, +) / Double(group.count) }
            }
            let best = scores.indices.max { scores[$0] < scores[$1] }!
            // Under `simple` a word is one token, kept in its vocabulary form (as the pipeline keeps it): decoded alone,
            // a byte-level piece of a character would be lost; the entity's tokens are decoded together.
            let word = aggregation == .simple ? group[0].form : tokenizer.string(fromTokens: group.map(\.form))
            return LabelledSpan(label: labels[best], score: scores[best], word: word,
                          offsets: group[0].offsets.lowerBound..<group.last!.offsets.upperBound)
        }
    }

    /// Neighbouring words of one type, the later ones not `B-`, as one entity scored by their mean.
    func group(_ words: [LabelledSpan]) -> [LabelledSpan] {
        var runs: [[LabelledSpan]] = []
        for word in words {
            if let last = runs.last?.last, word.type == last.type, !word.label.hasPrefix("B-") {
                runs[runs.count - 1].append(word)
            } else {
                runs.append([word])
            }
        }
        return runs.map { run in
            LabelledSpan(label: run[0].type, score: run.map(\.score).reduce(0, +) / Double(run.count),
                   word: tokenizer.string(fromTokens: run.map(\.word)),
                   offsets: run[0].offsets.lowerBound..<run.last!.offsets.upperBound)
        }
    }

    /// Entities of overlapping windows: ordered by start; of two that overlap, the longer stays, or at equal
    /// length the more confident.
    static func resolveOverlaps(_ entities: [LabelledSpan]) -> [LabelledSpan] {
        let sorted = entities.enumerated().sorted { ($0.element.offsets.lowerBound, $0.offset) < ($1.element.offsets.lowerBound, $1.offset) }.map(\.element)
        guard var previous = sorted.first else { return [] }
        var kept: [LabelledSpan] = []
        for entity in sorted {
            if previous.offsets.lowerBound <= entity.offsets.lowerBound && entity.offsets.lowerBound < previous.offsets.upperBound {
                let length = entity.offsets.count, previousLength = previous.offsets.count
                if length > previousLength || length == previousLength && entity.score > previous.score { previous = entity }
            } else {
                kept.append(previous)
                previous = entity
            }
        }
        kept.append(previous)
        return kept
    }
}

extension EntityAggregation: HyperparameterValue {}

extension TokenClassificationTask {
    public static var predictionOptions: [HyperparameterDeclaration] {
        [PredictionOptions.windowOverlap.declaration, PredictionOption.aggregation.declaration]
    }

    /// What its models' predictions let a user set (`PredictionOptions`), with the token-classification
    /// pipeline's defaults.
    public enum PredictionOption {
        public static let aggregation = Hyperparameter<EntityAggregation>(
            "aggregation", default: .first, help: "Token classification: how sub-tokens make words: simple, first, average or max.")
    }
}

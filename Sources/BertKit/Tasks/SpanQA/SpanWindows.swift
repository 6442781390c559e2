/// One window of a question and (part of) its context: `[CLS] question [SEP] context-part [SEP]`.
public struct SpanWindow: Sendable {
    public let example: Int
    public let ids: [Int32]
    public let typeIds: [Int32]
    /// Character range (Unicode scalars, in the context) of each token; nil outside the context part.
    public let offsets: [Range<Int>?]
    /// The context word (by index, words as the pre-tokenizer splits them) of each token; nil outside the context.
    public let words: [Int?]
    /// Whether this window is the one that gives the context token at this position the most context on
    /// both sides (only such tokens may start an answer here, so each token is judged once).
    public let isMaxContext: [Bool]
    /// Training target: token positions of the answer, or 0 and 0 (`[CLS]`) when the window does not hold it.
    public let start: Int
    public let end: Int
}

/// Cuts question-context pairs into windows. `windowOverlap` is the number of context tokens two consecutive
/// windows share (transformers' `stride`; Google's BERT `doc_stride` is instead the step between window starts,
/// which here is the context budget minus the overlap).
public struct SpanWindower: Sendable {
    public let tokenizer: Tokenizer
    public var maxLength = 384
    public var windowOverlap = 128
    public var maxQuestionTokens = 64

    public init(tokenizer: Tokenizer, maxLength: Int = 384, windowOverlap: Int = 128, maxQuestionTokens: Int = 64) {
        self.tokenizer = tokenizer
        self.maxLength = maxLength
        self.windowOverlap = windowOverlap
        self.maxQuestionTokens = maxQuestionTokens
    }

    public func windows(_ examples: [SQuADExample]) -> [SpanWindow] {
        examples.enumerated().flatMap { windows(of: $1, index: $0) }
    }

    public func windows(of example: SQuADExample, index: Int) -> [SpanWindow] {
        let question = Array(tokenizer.tokenize(example.question).prefix(maxQuestionTokens))
        let context = tokenizer.tokenize(example.context)
        let budget = max(1, maxLength - question.count - tokenizer.postProcessor.addedTokenCount(pair: true))
        let step = max(1, budget - windowOverlap)
        var spans: [Range<Int>] = []
        var start = 0
        repeat {
            let end = min(start + budget, context.count)
            spans.append(start..<end)
            if end >= context.count { break }
            start += step
        } while true

        // The gold answer as context-token positions: the token holding its first character and the one
        // holding its last.
        var answerTokens: ClosedRange<Int>? = nil
        if let answer = example.answers.first {
            let first = answer.start, last = answer.start + answer.text.unicodeScalars.count - 1
            if let s = context.lastIndex(where: { $0.offsets.lowerBound <= first }),
               let e = context.firstIndex(where: { $0.offsets.upperBound > last }), s <= e {
                answerTokens = s...e
            }
        }

        return spans.enumerated().map { w, span in
            // The tokenizer's pair template around question and window ([CLS] Q [SEP] C [SEP] for BERT).
            let e = tokenizer.encode(question, Array(context[span]))
            let contextStart = e.sequenceIds.firstIndex(of: 1) ?? e.count
            var offsets: [Range<Int>?] = [], maxContext: [Bool] = []
            for (k, sequence) in e.sequenceIds.enumerated() {
                let isContext = sequence == 1
                offsets.append(isContext ? e.offsets[k] : nil)
                maxContext.append(isContext && Self.bestWindow(for: span.lowerBound + k - contextStart, spans) == w)
            }
            let words = e.sequenceIds.indices.map { e.sequenceIds[$0] == 1 ? e.wordIds[$0] : nil }
            var target = (0, 0)
            if let a = answerTokens, span.contains(a.lowerBound), span.contains(a.upperBound) {
                target = (contextStart + a.lowerBound - span.lowerBound, contextStart + a.upperBound - span.lowerBound)
            }
            return SpanWindow(example: index, ids: e.ids, typeIds: e.typeIds, offsets: offsets, words: words, isMaxContext: maxContext,
                              start: target.0, end: target.1)
        }
    }

    /// The window in which context token `p` has the most context: the largest min(left, right) distance to
    /// the window's edges, ties going to the longer window (Google BERT's `_check_is_max_context`).
    static func bestWindow(for p: Int, _ spans: [Range<Int>]) -> Int {
        var best = 0
        var bestScore = -Double.infinity
        for (w, span) in spans.enumerated() where span.contains(p) {
            let score = Double(min(p - span.lowerBound, span.upperBound - 1 - p)) + 0.01 * Double(span.count)
            if score > bestScore { bestScore = score; best = w }
        }
        return best
    }
}

/// Picks answers from start and end logits over all windows of each question.
public struct AnswerExtractor: Sendable {
    public var bestSize = 20
    public var maxAnswerTokens = 30
    /// SQuAD 2.0: answer "" when the null score beats the best span by more than this.
    public var nullScoreThreshold: Double? = nil

    public init(bestSize: Int = 20, maxAnswerTokens: Int = 30, nullScoreThreshold: Double? = nil) {
        self.bestSize = bestSize
        self.maxAnswerTokens = maxAnswerTokens
        self.nullScoreThreshold = nullScoreThreshold
    }

    public struct Candidate: Sendable, Equatable {
        public let text: String
        public let score: Double
        public let startLogit: Double
        public let endLogit: Double
    }

    /// The n best answers of one question, best first. `logits(w)` gives window `w`'s start and end logits.
    public func candidates(context: String, windows: [SpanWindow], logits: (Int) -> (start: [Float], end: [Float])) -> (best: [Candidate], nullScore: Double) {
        let scalars = Array(context.unicodeScalars)
        var found: [Candidate] = []
        var seen = Set<String>()
        var nullScore = Double.infinity
        var spans: [(score: Double, start: Double, end: Double, range: Range<Int>)] = []
        for (w, window) in windows.enumerated() {
            let (starts, ends) = logits(w)
            nullScore = min(nullScore, Double(starts[0] + ends[0]))
            let topStarts = top(starts, bestSize), topEnds = top(ends, bestSize)
            for s in topStarts {
                guard let first = window.offsets[s], window.isMaxContext[s] else { continue }
                for e in topEnds where e >= s && e - s + 1 <= maxAnswerTokens {
                    guard let last = window.offsets[e] else { continue }
                    spans.append((Double(starts[s] + ends[e]), Double(starts[s]), Double(ends[e]), first.lowerBound..<last.upperBound))
                }
            }
        }
        for span in spans.sorted(by: { $0.score > $1.score }) {
            let text = String(String.UnicodeScalarView(scalars[span.range]))
            guard seen.insert(text).inserted else { continue }
            found.append(Candidate(text: text, score: span.score, startLogit: span.start, endLogit: span.end))
            if found.count == bestSize { break }
        }
        return (found, nullScore)
    }

    /// The answer: the best span, or "" when there is none or (SQuAD 2.0) the null score wins.
    public func answer(_ best: [Candidate], nullScore: Double) -> String {
        guard let top = best.first else { return "" }
        if let threshold = nullScoreThreshold, nullScore - top.score > threshold { return "" }
        return top.text
    }

    /// Indices of the `n` largest values, largest first.
    func top(_ values: [Float], _ n: Int) -> [Int] {
        Array(values.indices.sorted { values[$0] > values[$1] }.prefix(n))
    }
}

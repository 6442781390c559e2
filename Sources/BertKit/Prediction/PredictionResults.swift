import Foundation

// What each head predicts, as values: `FineTunedModel` returns them, and `finetune predict` writes each as one JSON
// line (`json`), so a program and the command line get the same numbers. Names and fields are those of
// transformers' pipelines.

/// A label and its probability.
public struct LabelScore: Sendable, Hashable {
    public let label: String
    public let score: Double
}

/// A text's (or pair's) class under a single-label model, as the text-classification pipeline gives it with every
/// label's score.
public struct TextClassification: Sendable, Hashable {
    /// The most likely label and its probability.
    public let label: String
    public let score: Double
    /// Every label's probability (the softmax of the logits), in the model's label order.
    public let scores: [LabelScore]

    init(logits: [Float], labels: [String]) {
        let p = softmax(logits), best = p.indices.max { p[$0] < p[$1] }!
        label = labels[best]
        score = p[best]
        scores = zip(labels, p).map { LabelScore(label: $0, score: $1) }
    }

    var json: [String: Any] {
        ["label": label, "score": score, "scores": Dictionary(uniqueKeysWithValues: scores.map { ($0.label, $0.score) })]
    }
}

/// A text's labels under a multi-label model: those whose probability (the sigmoid of its logit) reaches the
/// threshold, and every label's probability.
public struct MultiLabelClassification: Sendable, Hashable {
    /// The labels predicted, in the model's label order.
    public let labels: [String]
    /// Every label's probability, in the model's label order.
    public let scores: [LabelScore]

    init(logits: [Float], labels: [String], threshold: Double) {
        let p = logits.map(MultiLabelClassificationTask.sigmoid)
        self.labels = p.indices.filter { p[$0] >= threshold }.map { labels[$0] }
        scores = zip(labels, p).map { LabelScore(label: $0, score: $1) }
    }

    var json: [String: Any] {
        ["labels": labels, "scores": Dictionary(uniqueKeysWithValues: scores.map { ($0.label, $0.score) })]
    }
}

/// A named entity found in a text (token classification), as the token-classification pipeline groups it.
public struct Entity: Sendable, Hashable {
    /// Its type: the label without `B-`/`I-` (`PER`, `LOC`, ...).
    public let group: String
    /// The mean probability of its words' labels.
    public let score: Double
    /// The pipeline's rendering of its tokens (`##` pieces joined).
    public let word: String
    /// The input's characters it covers.
    public let text: String
    /// Where it is, in characters (Unicode scalars, as Python counts them): `start..<end`.
    public let start: Int
    public let end: Int

    var json: [String: Any] {
        ["entity_group": group, "score": score, "word": word, "start": start, "end": end, "text": text]
    }
}

/// An answer to a question in a context (span question answering).
public struct Answer: Sendable, Hashable {
    /// The context's characters from `start` to `end` (Unicode scalars, as Python counts them); empty for "no
    /// answer" (models that may abstain).
    public let text: String
    /// P(start)·P(end), summed over the windows and spans that give the same text.
    public let score: Double
    public let start: Int
    public let end: Int

    var json: [String: Any] { ["answer": text, "score": score, "start": start, "end": end] }
}

/// A filler for a `[MASK]` (fill-mask).
public struct MaskFill: Sendable, Hashable {
    /// The vocabulary id and its token.
    public let tokenId: Int
    public let token: String
    /// The probability of this token at the mask.
    public let score: Double

    var json: [String: Any] { ["token": tokenId, "token_str": token, "score": score] }
}

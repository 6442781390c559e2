/// The encoder families the toolkit reads, by `config.json`'s `model_type`, and what sets each apart from BERT.
/// The layers are BERT's in all of them; the toolkit's parameter names are the checkpoint's with the family's
/// prefix (`bert.`, `roberta.`) taken off.
public enum EncoderFamily: String, Sendable, CaseIterable {
    case bert
    /// RoBERTa: positions numbered from past the padding id, one token type, and a classification head of its own
    /// (`classifier.dense` and `classifier.out_proj` on `<s>`, with dropout before each) instead of the pooler.
    case roberta
    /// XLM-RoBERTa: RoBERTa's architecture under its own name (a SentencePiece tokenizer and a larger vocabulary).
    case xlmRoberta = "xlm-roberta"

    /// The prefix of the encoder's tensors in a task model's checkpoint.
    public var weightPrefix: String {
        switch self {
        case .bert: "bert."
        case .roberta, .xlmRoberta: "roberta."
        }
    }

    /// The start of transformers' class names for the family (`BertForSequenceClassification`).
    public var classPrefix: String {
        switch self {
        case .bert: "Bert"
        case .roberta: "Roberta"
        case .xlmRoberta: "XLMRoberta"
        }
    }

    /// The family's name for a BERT architecture: `BertForTokenClassification` becomes `RobertaForTokenClassification`.
    public func architecture(_ bertArchitecture: String) -> String {
        guard bertArchitecture.hasPrefix("Bert") else { return bertArchitecture }
        return classPrefix + bertArchitecture.dropFirst("Bert".count)
    }

    /// Every family's name for a BERT architecture.
    public static func architectures(_ bertArchitecture: String) -> Set<String> {
        Set(allCases.map { $0.architecture(bertArchitecture) })
    }

    /// The position id of a sequence's first token: 0 in BERT; in RoBERTa one past the padding id, whose row the
    /// padding tokens take (transformers' `create_position_ids_from_input_ids`).
    public func firstPosition(_ config: BertConfig) -> Int {
        switch self {
        case .bert: 0
        case .roberta, .xlmRoberta: config.padTokenId + 1
        }
    }

    /// Whether padding tokens take the padding id's position row, which then learns nothing (RoBERTa), rather than
    /// their place's (BERT).
    var numbersPaddingApart: Bool { self != .bert }

    /// Whether sequence classification reads the pooler (BERT), or a head of its own over the first token's
    /// hidden state with dropout before its dense layer too (RoBERTa's `RobertaClassificationHead`).
    var hasClassificationHead: Bool { self != .bert }

    /// Whether the family was pre-trained with next-sentence prediction, so that its checkpoints have a pooler and
    /// a next-sentence head (RoBERTa's have neither: masked LM alone).
    public var hasNextSentencePrediction: Bool { self == .bert }

    /// The masked-LM head's transform (dense, LayerNorm) and output bias: BERT's `cls.predictions.*`, RoBERTa's
    /// `lm_head.*`; the decoder is the word embeddings in both.
    var maskedLMNames: (dense: String, layerNorm: String, bias: String) {
        self == .bert ? ("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias")
            : ("lm_head.dense", "lm_head.layer_norm", "lm_head.bias")
    }

    /// The dense layer under tanh that sequence classification reads, and the output layer after it.
    var classificationNames: (dense: String, output: String) {
        hasClassificationHead ? ("classifier.dense", "classifier.out_proj") : ("pooler.dense", "classifier")
    }
}

import Foundation

/// The hyper-parameters of a BERT-architecture encoder (BERT, RoBERTa, XLM-RoBERTa: `model_type`), read from a
/// Hugging Face `config.json`. Absent fields take the defaults of `transformers.BertConfig`.
public struct BertConfig: Codable, Sendable, Equatable {
    public var vocabSize = 30522
    public var hiddenSize = 768
    public var numHiddenLayers = 12
    public var numAttentionHeads = 12
    public var intermediateSize = 3072
    public var hiddenAct = "gelu"
    public var hiddenDropoutProb: Float = 0.1
    public var attentionProbsDropoutProb: Float = 0.1
    public var maxPositionEmbeddings = 512
    public var typeVocabSize = 2
    public var initializerRange: Float = 0.02
    public var layerNormEps: Float = 1e-12
    public var padTokenId = 0
    public var positionEmbeddingType = "absolute"
    /// `model_type`: which encoder family (`EncoderFamily`) the checkpoint is.
    public var modelType = "bert"
    /// The fields `config.json` did not set, which took `transformers.BertConfig`'s defaults: named when the
    /// weights disagree with the sizes, since a missing `hidden_size` then looks like a wrong tensor.
    public var defaulted: [String] = []

    public var headSize: Int { hiddenSize / numAttentionHeads }

    /// The encoder family `model_type` names (validated when the file is read).
    public var family: EncoderFamily { EncoderFamily(rawValue: modelType) ?? .bert }

    /// The longest sequence the position embeddings cover (RoBERTa's first rows stand for padding).
    public var maxSequenceLength: Int { maxPositionEmbeddings - family.firstPosition(self) }

    public init() {}

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", intermediateSize = "intermediate_size"
        case hiddenAct = "hidden_act", hiddenDropoutProb = "hidden_dropout_prob"
        case attentionProbsDropoutProb = "attention_probs_dropout_prob"
        case maxPositionEmbeddings = "max_position_embeddings", typeVocabSize = "type_vocab_size"
        case initializerRange = "initializer_range", layerNormEps = "layer_norm_eps", padTokenId = "pad_token_id"
        case positionEmbeddingType = "position_embedding_type", modelType = "model_type"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var defaulted: [String] = []
        func field<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            if let value = try c.decodeIfPresent(T.self, forKey: key) { return value }
            defaulted.append("\(key.stringValue) \(fallback)")
            return fallback
        }
        let d = BertConfig()
        vocabSize = try field(.vocabSize, d.vocabSize)
        hiddenSize = try field(.hiddenSize, d.hiddenSize)
        numHiddenLayers = try field(.numHiddenLayers, d.numHiddenLayers)
        numAttentionHeads = try field(.numAttentionHeads, d.numAttentionHeads)
        intermediateSize = try field(.intermediateSize, d.intermediateSize)
        hiddenAct = try field(.hiddenAct, d.hiddenAct)
        hiddenDropoutProb = try field(.hiddenDropoutProb, d.hiddenDropoutProb)
        attentionProbsDropoutProb = try field(.attentionProbsDropoutProb, d.attentionProbsDropoutProb)
        maxPositionEmbeddings = try field(.maxPositionEmbeddings, d.maxPositionEmbeddings)
        typeVocabSize = try field(.typeVocabSize, d.typeVocabSize)
        initializerRange = try field(.initializerRange, d.initializerRange)
        layerNormEps = try field(.layerNormEps, d.layerNormEps)
        padTokenId = try field(.padTokenId, d.padTokenId)
        positionEmbeddingType = try field(.positionEmbeddingType, d.positionEmbeddingType)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? d.modelType
        self.defaulted = defaulted
    }

    /// Reads and validates `config.json`.
    public static func load(path: String) throws -> BertConfig {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CheckpointError(file: path, "cannot be read (\(error.localizedDescription))")
        }
        return try decode(data, path: path)
    }

    /// Parses and validates the bytes of a `config.json`; `path` names it in errors.
    public static func decode(_ data: Data, path: String) throws -> BertConfig {
        let config: BertConfig
        do { config = try JSONDecoder().decode(BertConfig.self, from: data) } catch {
            throw CheckpointError(file: path, "is not a valid BERT config.json: \(error)")
        }
        try config.validate(file: path)
        return config
    }

    func validate(file: String) throws {
        guard EncoderFamily(rawValue: modelType) != nil else {
            throw CheckpointError(file: file, "model_type '\(modelType)' is not supported; expected one of "
                + EncoderFamily.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))
        }
        guard hiddenSize > 0, numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0 else {
            throw CheckpointError(file: file, "hidden_size \(hiddenSize) must be a positive multiple of num_attention_heads \(numAttentionHeads)")
        }
        guard hiddenAct == "gelu" else {
            throw CheckpointError(file: file, "hidden_act '\(hiddenAct)' is not supported; expected \"gelu\" (exact erf GELU)")
        }
        guard positionEmbeddingType == "absolute" else {
            throw CheckpointError(file: file, "position_embedding_type '\(positionEmbeddingType)' is not supported; expected \"absolute\"")
        }
        let sizes = [("num_hidden_layers", numHiddenLayers), ("intermediate_size", intermediateSize), ("vocab_size", vocabSize),
                     ("max_position_embeddings", maxPositionEmbeddings), ("type_vocab_size", typeVocabSize)]
        if let (name, value) = sizes.first(where: { $0.1 <= 0 }) {
            throw CheckpointError(file: file, "\(name) is \(value); layer counts and sizes must be positive")
        }
        guard (0..<vocabSize).contains(padTokenId) else {
            throw CheckpointError(file: file, "pad_token_id \(padTokenId) is not an id of the vocab_size \(vocabSize) vocabulary")
        }
        guard maxSequenceLength > 0 else {
            throw CheckpointError(file: file, "max_position_embeddings \(maxPositionEmbeddings) leaves no position past pad_token_id \(padTokenId), "
                + "where \(modelType) numbers its positions from")
        }
        guard (0...1).contains(hiddenDropoutProb), (0...1).contains(attentionProbsDropoutProb), layerNormEps > 0 else {
            throw CheckpointError(file: file, "dropout probabilities must be in [0, 1] and layer_norm_eps positive")
        }
    }
}

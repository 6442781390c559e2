import Foundation

/// Sentence embeddings from an encoder folder, as sentence-transformers' `encode` makes them: the token vectors of
/// the last layer pooled as the folder's `modules.json` and its pooling module's `config.json` say (the `[CLS]`
/// vector, the mean, the maximum, or the mean scaled by √length; several are concatenated in that order), then
/// L2-normalised when `modules.json` lists a `Normalize` module. Texts are cut at `sentence_bert_config.json`'s
/// `max_seq_length`. A folder without `modules.json` (a plain Hugging Face encoder) is mean-pooled and not
/// normalised, as sentence-transformers treats it.
///
/// ```swift
/// let encoder = try SentenceEncoder(folder: "models/all-MiniLM-L6-v2")
/// let vectors = try encoder.embed(["A man is eating food.", "A man is eating pasta."])
/// let cosine = zip(vectors[0], vectors[1]).map(*).reduce(0, +)   // normalised: the dot product
/// ```
///
/// `finetune predict --model FOLDER` over such a folder writes the same vectors, one `{"embedding": [...]}` line
/// per text. Loading and calls from several threads are as `FineTunedModel`'s.
public final class SentenceEncoder: Sendable {
    /// How token vectors become one vector (sentence-transformers' pooling modes).
    public enum Pooling: String, Sendable, CaseIterable {
        case cls, max, mean, meanSqrtLength = "mean_sqrt_len"
    }

    public let folder: String
    /// The pooling modes, in the order their vectors are concatenated.
    public let pooling: [Pooling]
    /// Whether each embedding is scaled to unit length.
    public let normalize: Bool
    /// Tokens per text, `[CLS]` and `[SEP]` included; longer texts are cut.
    public let maxLength: Int
    /// The length of each embedding.
    public let dimension: Int

    /// The tokenizer of the model's folder.
    public let tokenizer: Tokenizer

    private let queue: PredictionQueue<EmbeddingPredictor>

    /// Loads the encoder in `folder` to run in `precision`; `normalize` overrides the folder's choice; `batching`
    /// as `FineTunedModel`'s.
    public init(folder: String, precision: Precision = .float32, normalize: Bool? = nil,
                options: Hyperparameters = Hyperparameters(), batching: Batching = Batching()) throws {
        var setup = try PredictionSetup(model: folder, options: options)
        setup.options[PredictionOptions.precision] = precision
        let configuration = try SentenceTransformersConfiguration(folder: folder)
        self.folder = folder
        pooling = configuration.pooling
        self.normalize = normalize ?? configuration.normalize
        dimension = setup.checkpoint.config.hiddenSize * pooling.count
        let predictor = try EmbeddingPredictor(setup, configuration: configuration, normalize: self.normalize)
        maxLength = predictor.maxLength
        predictor.parameters.fixWeightsForGood()
        tokenizer = predictor.tokenizer
        queue = try PredictionQueue(predictor, batching: batching)
    }

    /// The embedding of each text, in order.
    public func embed(_ texts: [String]) throws -> [[Float]] {
        try queue.predict(Self.records(texts)).map(\.output)
    }

    /// The embedding of one text.
    public func embed(_ text: String) throws -> [Float] { try embed([text])[0] }

    /// The line `finetune predict` writes for each text, `{"embedding": [...]}`.
    public func predictionLines(_ texts: [String]) throws -> [String] { try queue.lines(Self.records(texts)) }

    /// The same, awaited, as `FineTunedModel.predictionLines(_:deadline:)`.
    public func predictionLines(_ texts: [String], deadline: ContinuousClock.Instant?) async throws -> [String] {
        try await queue.lines(Self.records(texts), deadline: deadline)
    }

    private static func records(_ texts: [String]) -> [InputRecord] {
        texts.enumerated().map { InputRecord(file: "<input>", line: $0 + 1, fields: ["text": $1]) }
    }

    /// What `finetune predict` over a bare encoder reads: the common options and `normalize`.
    public static var predictionOptions: [HyperparameterDeclaration] { PredictionOptions.common + [PredictionOption.normalize.declaration] }

    public enum PredictionOption {
        public static let normalize = Hyperparameter<Bool?>(
            "normalize", default: nil,
            help: "Embeddings: scale each to unit length (default: as the folder's modules.json says, a Normalize module or not).")
    }

    /// Whether `finetune predict` embeds with this folder: a bare encoder (`BertModel`), no head to predict with.
    public static func embeds(_ config: [String: Any]) -> Bool {
        (config["architectures"] as? [String] ?? ["BertModel"]) == ["BertModel"]
    }

    /// `finetune predict` over a bare encoder: one `{"embedding": [...]}` line per text (text lines or JSONL `text`).
    public static func predict(_ request: PredictionRequest) throws -> PredictionReport {
        let configuration = try SentenceTransformersConfiguration(folder: request.setup.model)
        let normalize = request.setup.options[PredictionOption.normalize] ?? configuration.normalize
        return try EmbeddingPredictor(request.setup, configuration: configuration, normalize: normalize).run(request)
    }
}

/// What sentence-transformers' files in a model folder say about its embeddings.
struct SentenceTransformersConfiguration {
    var pooling: [SentenceEncoder.Pooling] = [.mean]
    var normalize = false
    var maxLength: Int?

    init(folder: String) throws {
        let modulesFile = folder + "/modules.json"
        guard FileManager.default.fileExists(atPath: modulesFile) else { return }
        guard let modules = try Self.read(modulesFile) as? [[String: Any]] else {
            throw DataError(file: modulesFile, "expected a list of modules, each with \"type\" and \"path\"")
        }
        for module in modules {
            let type = module["type"] as? String ?? ""
            if type.hasSuffix(".Pooling") {
                let file = folder + "/" + (module["path"] as? String ?? "") + "/config.json"
                guard let config = try Self.read(file) as? [String: Any] else {
                    throw DataError(file: file, "expected a JSON object of pooling_mode_* flags")
                }
                let modes: [(String, SentenceEncoder.Pooling)] = [
                    ("pooling_mode_cls_token", .cls), ("pooling_mode_max_tokens", .max),
                    ("pooling_mode_mean_tokens", .mean), ("pooling_mode_mean_sqrt_len_tokens", .meanSqrtLength),
                ]
                for unsupported in ["pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"] where config[unsupported] as? Bool == true {
                    throw DataError(file: file, "\(unsupported) is not supported (cls, max, mean and mean_sqrt_len are)")
                }
                pooling = modes.filter { config[$0.0] as? Bool == true }.map(\.1)
                guard !pooling.isEmpty else { throw DataError(file: file, "sets no pooling_mode_* to true") }
            } else if type.hasSuffix(".Normalize") {
                normalize = true
            }
        }
        let bertConfig = folder + "/sentence_bert_config.json"
        if FileManager.default.fileExists(atPath: bertConfig) {
            guard let config = try Self.read(bertConfig) as? [String: Any] else {
                throw DataError(file: bertConfig, "expected a JSON object")
            }
            maxLength = config["max_seq_length"] as? Int
        }
    }
}

extension SentenceTransformersConfiguration {
    static func read(_ file: String) throws -> Any {
        guard let data = FileManager.default.contents(atPath: file) else { throw DataError(file: file, "file not found") }
        guard let object = try? JSONSerialization.jsonObject(with: data) else { throw DataError(file: file, "is not valid JSON") }
        return object
    }
}

/// The encoder alone over texts: each text's last-layer token vectors pooled into one.
struct EmbeddingPredictor: Predictor {
    let tokenizer: Tokenizer
    let encoder: BertEncoder
    let parameters: ParameterStore
    let pooling: [SentenceEncoder.Pooling]
    let normalize: Bool
    let batchSize, maxLength: Int

    /// Texts are cut at the `max_length` option, else the folder's `max_seq_length`, else the model's limit.
    init(_ setup: PredictionSetup, configuration: SentenceTransformersConfiguration, normalize: Bool) throws {
        tokenizer = try Tokenizer(directory: setup.model)
        batchSize = setup.batchSize
        maxLength = setup.sequenceLength(standard: configuration.maxLength)
        parameters = ParameterStore(BertEncoder.parameters(setup.checkpoint.config, pooler: false))
        encoder = BertEncoder(config: setup.checkpoint.config, store: parameters, pooler: false,
                              context: try setup.buildContext(maxLength: maxLength))
        _ = try setup.checkpoint.loadWeights(into: parameters)
        pooling = configuration.pooling
        self.normalize = normalize
    }

    func prepare(_ record: InputRecord, index: Int) throws -> Encoding {
        tokenizer.encode(try record.string("text", "sentence"), maxLength: maxLength)
    }

    func sequences(of example: Encoding) -> [ModelInput] { [ModelInput(ids: example.ids, typeIds: example.typeIds)] }

    func forward(_ batch: [ModelInput]) -> [[Float]] {
        encoder.forward(EncoderBatch(padding: batch.map(\.ids), typeIds: batch.map(\.typeIds), padId: tokenizer.padId))
        let hidden = encoder.config.hiddenSize
        return batch.indices.map { b in
            let tokens = batch[b].ids.count
            let rows = UnsafeBufferPointer(start: encoder.sequenceOutput + encoder.layout.start(b) * hidden, count: tokens * hidden)
            var vector: [Float] = []
            for mode in pooling {
                switch mode {
                case .cls:
                    vector += rows[0..<hidden]
                case .max:
                    vector += (0..<hidden).map { c in (0..<tokens).map { rows[$0 * hidden + c] }.max()! }
                case .mean, .meanSqrtLength:
                    var sum = [Float](repeating: 0, count: hidden)
                    for t in 0..<tokens { for c in 0..<hidden { sum[c] += rows[t * hidden + c] } }
                    let divisor = mode == .mean ? Float(tokens) : Float(tokens).squareRoot()
                    vector += sum.map { $0 / divisor }
                }
            }
            return vector
        }
    }

    /// The pooled vector, normalised if asked (as torch's `normalize`: divided by the norm, at least 1e-12).
    func result(of example: Encoding, outputs: [[Float]]) -> [Float] {
        guard normalize else { return outputs[0] }
        let norm = max(outputs[0].reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        return outputs[0].map { $0 / norm }
    }

    func line(_ embedding: [Float], of example: Encoding) -> String {
        JSONOutput.line(["embedding": embedding.map(Double.init)])
    }
}

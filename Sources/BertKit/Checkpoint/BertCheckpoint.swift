import Foundation

/// A Hugging Face style model folder: `config.json`, `model.safetensors`, the tokenizer's `tokenizer.json` or
/// `vocab.txt`, and, optionally, `tokenizer_config.json`.
public struct BertCheckpoint: Sendable {
    public let directory: String
    public let config: BertConfig

    public var weightsPath: String { directory + "/model.safetensors" }
    public var vocabularyPath: String { directory + "/vocab.txt" }
    public var tokenizerConfigPath: String { directory + "/tokenizer_config.json" }

    public init(directory: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CheckpointError(file: directory, "model folder not found")
        }
        self.directory = directory
        config = try BertConfig.load(path: directory + "/config.json")
        guard FileManager.default.fileExists(atPath: directory + "/model.safetensors") else {
            throw CheckpointError(file: directory + "/model.safetensors", "file not found: a model folder needs its weights as safetensors")
        }
        try checkAgreement()
    }

    /// Checks, before any model is allocated, that the weights hold the encoder `config.json` describes (a
    /// config that asks for 10,000 layers would otherwise allocate tens of GB first), and that `vocab.txt`
    /// fits the embedding table.
    func checkAgreement() throws {
        let file = try SafeTensorsFile(path: weightsPath)
        var shapes: [String: [Int]] = [:]
        for (name, entry) in file.entries { shapes[CheckpointLoader.canonicalName(name, family: config.family)] = entry.shape }
        let defaults = config.defaulted.isEmpty ? ""
            : " (config.json does not set \(config.defaulted.joined(separator: ", ")): those are BERT's defaults, used instead)"
        let layersInFile = Set(shapes.keys.compactMap { $0.hasPrefix("encoder.layer.") ? $0.split(separator: ".")[2] : nil }).count
        if layersInFile != config.numHiddenLayers {
            throw CheckpointError(file: weightsPath, "holds \(layersInFile) encoder layers but config.json says num_hidden_layers \(config.numHiddenLayers)\(defaults)")
        }
        for declaration in BertEncoder.parameters(config, pooler: false) {
            guard let shape = shapes[declaration.name] else {
                throw CheckpointError(file: weightsPath, "missing tensor '\(declaration.name)' with shape \(declaration.shape)\(defaults)")
            }
            guard shape == declaration.shape else {
                throw CheckpointError(file: weightsPath, "tensor '\(declaration.name)' has shape \(shape) but config.json implies \(declaration.shape)\(defaults)")
            }
        }
        if let vocabulary = FileManager.default.contents(atPath: vocabularyPath) {
            let lines = vocabulary.split(separator: UInt8(ascii: "\n")).count
            guard lines <= config.vocabSize else {
                throw CheckpointError(file: vocabularyPath, "has \(lines) tokens but config.json's vocab_size is \(config.vocabSize): ids past it have no embedding")
            }
        }
    }

    /// The longest input its tokenizer is meant for (`model_max_length` in tokenizer_config.json, which
    /// transformers' pipelines read), never more than the position embeddings cover; those alone without the file.
    public var modelMaxLength: Int {
        let positions = config.maxSequenceLength
        guard let data = FileManager.default.contents(atPath: tokenizerConfigPath),
              let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let limit = (json["model_max_length"] as? NSNumber)?.doubleValue, limit >= 1
        else { return positions }
        return limit < Double(positions) ? Int(limit) : positions  // transformers writes 1e30 for "no limit"
    }

    /// `config.json` as a JSON object, with every field kept (exports extend it).
    public func rawConfig() throws -> [String: Any] {
        let path = directory + "/config.json"
        guard let data = FileManager.default.contents(atPath: path),
              let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        else { throw CheckpointError(file: path, "is not a JSON object") }
        return json
    }

    /// Label names of a fine-tuned classification model (`id2label`), in id order, if it has them.
    public func labelNames() throws -> [String]? {
        guard let id2label = try rawConfig()["id2label"] as? [String: String] else { return nil }
        return try (0..<id2label.count).map { i in
            guard let name = id2label[String(i)] else {
                throw CheckpointError(file: directory + "/config.json", "id2label has no entry for id \(i)")
            }
            return name
        }
    }

    /// `problem_type` of a fine-tuned model, if set.
    public func problemType() throws -> String? { try rawConfig()["problem_type"] as? String }

    /// Loads the encoder's weights (and any head parameters present in the file) into `store`.
    public func loadWeights(into store: ParameterStore, mayBeNew: (String) -> Bool = { _ in false }, seed: UInt64 = 0) throws -> LoadReport {
        try CheckpointLoader.load(try SafeTensorsFile(path: weightsPath), into: store, mayBeNew: mayBeNew,
                                  initializerRange: config.initializerRange, seed: seed, family: config.family)
    }
}

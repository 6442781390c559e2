import Foundation

/// A Hugging Face style model folder: `config.json`, `model.safetensors`, `vocab.txt` and, optionally,
/// `tokenizer_config.json`.
public struct BertCheckpoint: Sendable {
    public let directory: String
    public let config: BertConfig

    public var weightsPath: String { directory + "/model.safetensors" }
    public var vocabularyPath: String { directory + "/vocab.txt" }
    public var tokenizerConfigPath: String { directory + "/tokenizer_config.json" }

    public init(directory: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CheckpointError(file: directory, "model folder not found (run scripts/setup for the default encoder)")
        }
        self.directory = directory
        config = try BertConfig.load(path: directory + "/config.json")
        guard FileManager.default.fileExists(atPath: directory + "/model.safetensors") else {
            throw CheckpointError(file: directory + "/model.safetensors", "file not found: a model folder needs its weights as safetensors")
        }
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
                                  initializerRange: config.initializerRange, seed: seed)
    }
}

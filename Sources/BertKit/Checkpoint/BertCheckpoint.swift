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

    /// Loads the encoder's weights (and any head parameters present in the file) into `store`.
    public func loadWeights(into store: ParameterStore, mayBeNew: (String) -> Bool = { _ in false }, seed: UInt64 = 0) throws -> LoadReport {
        try CheckpointLoader.load(try SafeTensorsFile(path: weightsPath), into: store, mayBeNew: mayBeNew,
                                  initializerRange: config.initializerRange, seed: seed)
    }
}

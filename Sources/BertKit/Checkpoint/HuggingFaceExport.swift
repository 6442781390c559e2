import Foundation

/// Writes a model as a Hugging Face folder that `transformers` loads: `config.json` (the base model's,
/// with the task's `architectures` in the encoder's family, labels and problem type), `model.safetensors` (encoder
/// tensors under the family's prefix, `bert.` or `roberta.`, the head's under their own names), and the tokenizer's files: the base model's `tokenizer.json`,
/// `tokenizer_config.json` and `special_tokens_map.json` as they are, or BERT's `vocab.txt` and a
/// `tokenizer_config.json` with its casing.
///
/// The folder is assembled under a temporary name beside the destination and renamed into place, so the
/// destination never holds half an export.
public enum HuggingFaceExport {
    public struct Head {
        public let architecture: String
        /// Extra `config.json` entries (`id2label`, `label2id`, `problem_type`, ...).
        public let config: [String: Any]
        /// Whether a parameter belongs to the head (kept unprefixed) rather than the encoder (`bert.`).
        public let isHeadParameter: (String) -> Bool

        public init(architecture: String, config: [String: Any], isHeadParameter: @escaping (String) -> Bool) {
            self.architecture = architecture
            self.config = config
            self.isHeadParameter = isHeadParameter
        }
    }

    public static func write(
        to directory: String, baseModel: BertCheckpoint, tokenizer: Tokenizer, parameters: ParameterStore, head: Head
    ) throws {
        try ModelFolder.write(to: directory) { staging in
            var config = try baseModel.rawConfig()
            let family = baseModel.config.family
            config["architectures"] = [family.architecture(head.architecture)]
            config["model_type"] = family.rawValue
            for (key, value) in head.config { config[key] = value }
            try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
                .write(to: staging.appendingPathComponent("config.json"))

            let tensors = parameters.parameters.map { p in
                SafeTensorsWriter.Tensor(name: head.isHeadParameter(p.name) ? p.name : family.weightPrefix + p.name, shape: p.shape,
                                         values: UnsafeBufferPointer(p.values))
            }
            try SafeTensorsWriter.write(tensors, to: staging.appendingPathComponent("model.safetensors").path)

            try writeTokenizer(tokenizer, to: staging, modelMaxLength: baseModel.config.maxSequenceLength)
        }
    }

    /// The tokenizer's files in `folder`.
    static func writeTokenizer(_ tokenizer: Tokenizer, to folder: URL, modelMaxLength: Int) throws {
        switch tokenizer.source {
        case .tokenizerFile(let path):
            let source = URL(fileURLWithPath: path).deletingLastPathComponent()
            for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] {
                let file = source.appendingPathComponent(name)
                guard name == "tokenizer.json" || FileManager.default.fileExists(atPath: file.path) else { continue }
                try FileManager.default.copyItem(at: file, to: folder.appendingPathComponent(name))
            }
        case .wordPieceVocabulary(let normalizer):
            let vocabulary = tokenizer.vocabulary.tokens.joined(separator: "\n") + "\n"
            try Data(vocabulary.utf8).write(to: folder.appendingPathComponent("vocab.txt"))
            var config: [String: Any] = [
                "tokenizer_class": "BertTokenizer", "do_lower_case": normalizer.lowercase,
                "tokenize_chinese_chars": normalizer.handleChineseCharacters,
                "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                "mask_token": "[MASK]", "model_max_length": modelMaxLength,
            ]
            if let strip = normalizer.stripAccents { config["strip_accents"] = strip }
            try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
                .write(to: folder.appendingPathComponent("tokenizer_config.json"))
        }
    }
}

import Foundation

/// Writes a model as a Hugging Face folder that `transformers` loads: `config.json` (the base model's,
/// with the task's `architectures`, labels and problem type), `model.safetensors` (encoder tensors under
/// `bert.`, the head's under their own names), and the tokenizer's `vocab.txt` and `tokenizer_config.json`.
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
        to directory: String, baseModel: BertCheckpoint, tokenizer: BertTokenizer, parameters: ParameterStore, head: Head
    ) throws {
        try ModelFolder.write(to: directory) { staging in
            var config = try baseModel.rawConfig()
            config["architectures"] = [head.architecture]
            config["model_type"] = "bert"
            for (key, value) in head.config { config[key] = value }
            try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
                .write(to: staging.appendingPathComponent("config.json"))

            let tensors = parameters.parameters.map { p in
                SafeTensorsWriter.Tensor(name: head.isHeadParameter(p.name) ? p.name : "bert." + p.name, shape: p.shape,
                                         values: UnsafeBufferPointer(p.values))
            }
            try SafeTensorsWriter.write(tensors, to: staging.appendingPathComponent("model.safetensors").path)

            let vocabulary = tokenizer.vocabulary.tokens.joined(separator: "\n") + "\n"
            try Data(vocabulary.utf8).write(to: staging.appendingPathComponent("vocab.txt"))
            var tokenizerConfig: [String: Any] = [
                "tokenizer_class": "BertTokenizer", "do_lower_case": tokenizer.normalizer.lowercase,
                "tokenize_chinese_chars": tokenizer.normalizer.handleChineseCharacters,
                "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                "mask_token": "[MASK]", "model_max_length": baseModel.config.maxPositionEmbeddings,
            ]
            if let strip = tokenizer.normalizer.stripAccents { tokenizerConfig["strip_accents"] = strip }
            try JSONSerialization.data(withJSONObject: tokenizerConfig, options: [.prettyPrinted, .sortedKeys])
                .write(to: staging.appendingPathComponent("tokenizer_config.json"))
        }
    }
}

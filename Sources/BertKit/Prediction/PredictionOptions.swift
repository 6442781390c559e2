/// What a user may set when a fine-tuned model predicts, declared as hyper-parameters are (`Hyperparameter`:
/// name, default, help, range) and read the same way: `setup.options[PredictionOptions.batchSize]`. Each
/// declaration makes an option of `finetune predict` (`--batch-size`) and, in a JSON request, a field
/// (`batch_size`).
///
/// The options every head reads are declared here; one that only some heads read is declared by the plugin
/// that reads it and listed in its `predictionOptions`. Defaults are those of transformers' pipeline for the
/// head.
public enum PredictionOptions {
    public static let batchSize = Hyperparameter<Int>("batch_size", default: 32, help: "Sequences per forward pass.", problem: positive)
    public static let maxLength = Hyperparameter<Int?>(
        "max_length", default: nil,
        help: "Tokens per window, special tokens included (default: the head's own, else the model's model_max_length; at most its position embeddings).",
        problem: { $0.map { $0 >= 3 ? nil : "must be at least 3" } ?? nil })
    public static let precision = Hyperparameter<Precision>(
        "precision", default: .float32,
        help: "Number format of matrix products: fp32, bf16 (bf16 inputs, fp32 accumulation), or int8 (products with weights in int8, dynamic quantisation).")
    /// For heads that cut a long text into windows (token classification, span QA).
    public static let windowOverlap = Hyperparameter<Int?>(
        "window_overlap", default: nil,
        help: "Tokens that consecutive windows of a long text share (default: half a window, at most 128, as the pipelines' stride).",
        problem: { $0.map { $0 >= 0 ? nil : "must not be negative" } ?? nil })

    /// The options every head reads.
    public static let common = [batchSize.declaration, maxLength.declaration, precision.declaration]

    /// The options a model of `plugin` reads: the common ones, then the plugin's own.
    public static func declarations(for plugin: any TaskPlugin.Type) -> [HyperparameterDeclaration] {
        common + plugin.predictionOptions
    }

    /// `arguments` (`--top-k 3`) read as the options of `plugin`'s models. An option that only other heads
    /// read is an error that says which heads do.
    public static func parse(_ arguments: [String], for plugin: any TaskPlugin.Type, otherOptions: [String] = [],
                             plugins: [any TaskPlugin.Type] = TaskPlugins.all) throws -> Hyperparameters {
        let own = declarations(for: plugin)
        let given = arguments.filter { $0.hasPrefix("--") }.map { String($0.split(separator: "=", maxSplits: 1)[0]) }
        for flag in given where !own.contains(where: { $0.flag == flag }) {
            var readers: [String] = []
            for other in plugins where other.predictionOptions.contains(where: { $0.flag == flag }) { readers.append(other.name) }
            if !readers.isEmpty {
                throw UsageError("\(flag) is an option of \(readers.joined(separator: " and ")) models, not of this \(plugin.name) model")
            }
        }
        return try Hyperparameters().applying(arguments: arguments, declarations: own, otherOptions: otherOptions)
    }
}

import Foundation
import Testing
import BertKit

/// Files under Tests/BertKitTests/Fixtures, made by scripts/fixtures/make_fixtures.py.
enum Fixture {
    static let directory: String = Bundle.module.path(forResource: "Fixtures", ofType: nil)!

    static func path(_ name: String) -> String { directory + "/" + name }

    /// The repository's root folder.
    static let repositoryRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// The default encoder, installed by scripts/setup (its 90 MB of weights are not in the repository).
    static var miniLMDirectory: String {
        ProcessInfo.processInfo.environment["BERTKIT_MODEL"] ?? repositoryRoot + "/models/all-MiniLM-L6-v2"
    }

    /// A task on the tiny checkpoint, built by its plugin from a fixture task file (a path under Fixtures) with
    /// its hyper-parameters, then `configure`'s.
    static func task<Plugin: TaskPlugin>(_ plugin: Plugin.Type, _ taskFile: String, data: DataSources = DataSources(),
                                         _ configure: (inout Hyperparameters) -> Void = { _ in }) throws -> Plugin {
        let spec = try TaskSpec.load(path(taskFile))
        var h = try Hyperparameters().applying(spec.hyperparameters, from: spec.path)
        configure(&h)
        return try Plugin(TaskSetup(spec: spec, checkpoint: BertCheckpoint(directory: path("tiny-bert")), hyperparameters: h, data: data))
    }
}

extension TaskSpec {
    /// The examples of a split of a TSV task, from its file or from `file`.
    func examples(_ split: String, file: String? = nil) throws -> [TextExample] {
        try layout(of: split, as: TSVLayout.self).examples(path: file ?? self.file(of: split), labels: labels)
    }

    /// The questions of a split of a SQuAD task.
    func questions(_ split: String) throws -> [SQuADExample] {
        try SQuADFile.read(path: file(of: split), articles: layout(of: split, as: SQuADLayout.self).articles)
    }
}

/// ‖actual − expected‖∞ / ‖expected‖∞: the largest error relative to the tensor's scale.
func relativeError(_ actual: UnsafeBufferPointer<Float>, _ expected: [Float]) -> Float {
    precondition(actual.count == expected.count, "sizes differ: \(actual.count) vs \(expected.count)")
    var worst: Float = 0, scale: Float = 0
    for i in 0..<expected.count {
        worst = max(worst, abs(actual[i] - expected[i]))
        scale = max(scale, abs(expected[i]))
    }
    return scale == 0 ? worst : worst / scale
}

func relativeError(_ actual: [Float], _ expected: [Float]) -> Float {
    actual.withUnsafeBufferPointer { relativeError($0, expected) }
}

extension EncoderBatch {
    /// The padded inputs stored in a fixture file.
    init(fixture file: SafeTensorsFile, prefix: String = "") throws {
        let shape = try file.entry(prefix + "input_ids").shape
        self.init(batchSize: shape[0], sequenceLength: shape[1],
                  tokenIds: try file.integers(prefix + "input_ids").map(Int32.init),
                  tokenTypeIds: try file.integers(prefix + "token_type_ids").map(Int32.init),
                  attentionMask: try file.integers(prefix + "attention_mask"))
    }
}

/// Relative error of a parameter's gradient against a fixture's. Some gradients are exactly 0 in theory because
/// softmax ignores a shift shared by a whole row: a key bias adds the same q·b to every score of a row, and (for
/// span QA) the output bias and the last LayerNorm's bias shift every position's logit alike. PyTorch's float64
/// gives about 1e-17 for them, so for these (`exactlyZero`) the float32 rounding left in ours is measured against
/// the scale of the matching weight's gradient, which flows through the same operations.
func gradientError(_ p: Parameter, _ golden: SafeTensorsFile, _ name: String, exactlyZero: Bool = false) throws -> Float {
    guard exactlyZero else { return relativeError(UnsafeBufferPointer(p.gradients), try golden.floats(name)) }
    let weightScale = try golden.floats(name.replacingOccurrences(of: ".bias", with: ".weight")).map(abs).max()!
    return p.gradients.map(abs).max()! / weightScale
}

/// One pass's logits, loss and every parameter's gradient, to compare two ways of computing them.
struct PassResults {
    let logits: [Float]
    let loss: Double
    let gradients: [[Float]]

    /// A pass's results from its logits and loss: `backward` runs on cleared gradients, which are then read.
    init(logits: [Float], loss: Double, parameters: ParameterStore, backward: () -> Void) {
        self.logits = logits
        self.loss = loss
        parameters.zeroGradients()
        backward()
        gradients = parameters.parameters.map { Array($0.gradients) }
    }
}

/// Expects two passes over the same model and batch to agree to within fp32 rounding. The key biases'
/// gradients are left out: they are zero up to rounding (softmax's gradient rows sum to zero), with no relative
/// error to speak of.
func expectSameResults(_ actual: PassResults, _ expected: PassResults, _ parameters: ParameterStore, _ context: String) {
    #expect(relativeError(actual.logits, expected.logits) < 1e-6, "\(context): logits")
    #expect(abs(actual.loss - expected.loss) < 1e-6 * abs(expected.loss), "\(context): loss")
    for (p, (a, b)) in zip(parameters.parameters, zip(actual.gradients, expected.gradients))
    where !p.name.hasSuffix("attention.self.key.bias") {
        #expect(relativeError(a, b) < 1e-5, "\(context): gradient of \(p.name)")
    }
}

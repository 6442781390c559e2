import Foundation

/// The knobs of a fine-tuning run. Defaults follow BERT's fine-tuning recipe (batch 32, length 128, 3 epochs,
/// 10 % linear warm-up then linear decay, AdamW with weight decay 0.01, gradient clipping at 1.0), with a
/// learning rate suited to the small default encoder.
public struct Hyperparameters: Codable, Sendable, Equatable {
    public var learningRate = 1e-4
    public var batchSize = 32
    public var maxLength = 128
    public var epochs = 3.0
    /// A budget of optimizer steps that, when set, replaces `epochs`.
    public var maxSteps: Int? = nil
    public var warmupRatio = 0.1
    public var weightDecay = 0.01
    public var maxGradNorm = 1.0
    public var gradientAccumulation = 1
    public var adamBeta1 = 0.9
    public var adamBeta2 = 0.999
    public var adamEpsilon = 1e-8
    public var seed: UInt64 = 42
    /// Number format of the matrix products' inputs: fp32, or bf16 with fp32 accumulation (fp32 master
    /// weights, optimizer state and all other arithmetic either way).
    public var precision = Precision.float32
    /// Evaluate every this many optimizer steps; when absent, at the end of every epoch.
    public var evalSteps: Int? = nil
    /// Sequences per evaluation batch. Activation buffers are sized for the larger of the two batch sizes, so a
    /// larger evaluation batch costs memory for the whole run.
    public var evalBatchSize = 32
    /// Form batches of similar-length sequences (dynamic padding wastes less on short ones).
    public var groupByLength = true
    /// Span QA: context tokens shared by consecutive windows of a long context.
    public var windowOverlap = 128
    /// Pre-training: share of the (non-special) tokens chosen for masked-LM prediction.
    public var mlmProbability = 0.15
    /// Pre-training: at most this many predictions per sequence.
    public var maxPredictions = 20
    /// Pre-training: probability that a pair is packed to a random shorter length than `max_length`.
    public var shortSequenceProbability = 0.1
    /// Pre-training: train next-sentence prediction beside masked LM (false: masked LM alone).
    public var nextSentencePrediction = true
    /// Pre-training: mask whole words (a word's `##` pieces together).
    public var wholeWordMasking = false
    /// Pre-training: draw new masks every epoch (false: each sequence keeps one mask throughout).
    public var dynamicMasking = true

    /// Keys that only one plugin reads; other plugins' runs do not log them.
    static let pluginKeys: [String: String] = [
        "window_overlap": "span-qa", "mlm_probability": "pretraining", "max_predictions": "pretraining",
        "short_sequence_probability": "pretraining", "next_sentence_prediction": "pretraining",
        "whole_word_masking": "pretraining", "dynamic_masking": "pretraining",
    ]

    public init() {}

    enum CodingKeys: String, CodingKey {
        case learningRate = "learning_rate", batchSize = "batch_size", maxLength = "max_length", epochs
        case maxSteps = "max_steps", warmupRatio = "warmup_ratio", weightDecay = "weight_decay"
        case maxGradNorm = "max_grad_norm", gradientAccumulation = "gradient_accumulation"
        case adamBeta1 = "adam_beta1", adamBeta2 = "adam_beta2", adamEpsilon = "adam_epsilon", seed, precision
        case evalSteps = "eval_steps", evalBatchSize = "eval_batch_size", groupByLength = "group_by_length"
        case windowOverlap = "window_overlap", mlmProbability = "mlm_probability", maxPredictions = "max_predictions"
        case shortSequenceProbability = "short_sequence_probability", nextSentencePrediction = "next_sentence_prediction"
        case wholeWordMasking = "whole_word_masking", dynamicMasking = "dynamic_masking"
    }

    /// Decodes a partial set: absent keys keep their defaults, unknown keys are an error.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let any = try decoder.container(keyedBy: AnyKey.self)
        for key in any.allKeys where CodingKeys(stringValue: key.stringValue) == nil {
            throw DecodingError.dataCorruptedError(forKey: key, in: any, debugDescription:
                "unknown hyper-parameter '\(key.stringValue)'; known: \(CodingKeys.allNames.joined(separator: ", "))")
        }
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T { try c.decodeIfPresent(T.self, forKey: key) ?? fallback }
        let d = Hyperparameters()
        learningRate = try value(.learningRate, d.learningRate)
        batchSize = try value(.batchSize, d.batchSize)
        maxLength = try value(.maxLength, d.maxLength)
        epochs = try value(.epochs, d.epochs)
        maxSteps = try c.decodeIfPresent(Int.self, forKey: .maxSteps)
        warmupRatio = try value(.warmupRatio, d.warmupRatio)
        weightDecay = try value(.weightDecay, d.weightDecay)
        maxGradNorm = try value(.maxGradNorm, d.maxGradNorm)
        gradientAccumulation = try value(.gradientAccumulation, d.gradientAccumulation)
        adamBeta1 = try value(.adamBeta1, d.adamBeta1)
        adamBeta2 = try value(.adamBeta2, d.adamBeta2)
        adamEpsilon = try value(.adamEpsilon, d.adamEpsilon)
        seed = try value(.seed, d.seed)
        if let name = try c.decodeIfPresent(String.self, forKey: .precision) {
            guard let precision = Precision(rawValue: name) else {
                throw DecodingError.dataCorruptedError(forKey: .precision, in: c, debugDescription:
                    "unknown precision '\(name)'; known: \(Precision.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self.precision = precision
        }
        evalSteps = try c.decodeIfPresent(Int.self, forKey: .evalSteps)
        evalBatchSize = try value(.evalBatchSize, d.evalBatchSize)
        groupByLength = try value(.groupByLength, d.groupByLength)
        windowOverlap = try value(.windowOverlap, d.windowOverlap)
        mlmProbability = try value(.mlmProbability, d.mlmProbability)
        maxPredictions = try value(.maxPredictions, d.maxPredictions)
        shortSequenceProbability = try value(.shortSequenceProbability, d.shortSequenceProbability)
        nextSentencePrediction = try value(.nextSentencePrediction, d.nextSentencePrediction)
        wholeWordMasking = try value(.wholeWordMasking, d.wholeWordMasking)
        dynamicMasking = try value(.dynamicMasking, d.dynamicMasking)
    }

    /// Every hyper-parameter a run of `plugin` reads, as text, one entry each, for results.db.
    public func parameters(for plugin: String) -> [(String, String)] {
        let values = try! JSONDecoder().decode([String: HyperparameterValue].self, from: JSONEncoder().encode(self))
        return CodingKeys.allNames.filter { Self.pluginKeys[$0].map { $0 == plugin } ?? true }
            .map { key in (key, values[key]?.text ?? "") }
    }

    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw DataError(file: "hyper-parameters", message) } }
        try check(learningRate > 0, "learning_rate must be positive")
        try check(batchSize > 0 && evalBatchSize > 0, "batch sizes must be positive")
        try check(epochs > 0 || (maxSteps ?? 0) > 0, "epochs or max_steps must be positive")
        try check(gradientAccumulation >= 1, "gradient_accumulation must be at least 1")
        try check((0..<1).contains(warmupRatio), "warmup_ratio must be in [0, 1)")
        try check(maxGradNorm > 0, "max_grad_norm must be positive")
        try check(evalSteps.map { $0 > 0 } ?? true, "eval_steps must be positive")
        try check(mlmProbability > 0 && mlmProbability < 1, "mlm_probability must be in (0, 1)")
        try check(maxPredictions >= 1, "max_predictions must be at least 1")
        try check((0...1).contains(shortSequenceProbability), "short_sequence_probability must be in [0, 1]")
    }
}

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Hyperparameters.CodingKeys: CaseIterable {
    static var allNames: [String] { allCases.map(\.stringValue) }
}

/// A value in a partial set of hyper-parameters, as JSON holds it.
public enum HyperparameterValue: Codable, Sendable, Equatable {
    case number(Double)
    case bool(Bool)
    case text(String)
    case null

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else { self = .text(try c.decode(String.self)) }
    }

    /// As results.db stores it: whole numbers without a fraction, booleans as true/false.
    public var text: String {
        switch self {
        case .number(let d): d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)"
        case .bool(let b): "\(b)"
        case .text(let t): t
        case .null: ""
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .number(let d):
            if d == d.rounded() && abs(d) < 1e15 { try c.encode(Int64(d)) } else { try c.encode(d) }
        case .bool(let b): try c.encode(b)
        case .text(let t): try c.encode(t)
        case .null: try c.encodeNil()
        }
    }
}

/// Some hyper-parameters, by their JSON names: what a task file or an experiment sets.
public typealias HyperparameterOverrides = [String: HyperparameterValue]

extension Hyperparameters {
    /// These hyper-parameters with `overrides` applied; an unknown name or a value of the wrong type is an error.
    public func applying(_ overrides: HyperparameterOverrides) throws -> Hyperparameters {
        guard !overrides.isEmpty else { return self }
        var merged = try JSONDecoder().decode(HyperparameterOverrides.self, from: JSONEncoder().encode(self))
        for (key, value) in overrides { merged[key] = value }
        return try JSONDecoder().decode(Hyperparameters.self, from: JSONEncoder().encode(merged))
    }
}

/// A named, versioned set of hyper-parameters: `Experiments/NAME.json`.
public struct Experiment: Decodable, Sendable {
    public let name: String
    public let version: Int
    public var description: String? = nil
    /// Only the hyper-parameters the experiment sets; the rest keep their defaults (or the task's).
    public let hyperparameters: HyperparameterOverrides

    public static func load(_ nameOrPath: String, directory: String = "Experiments") throws -> Experiment {
        let path = nameOrPath.hasSuffix(".json") ? nameOrPath : directory + "/" + nameOrPath + ".json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(file: path, "experiment file not found")
        }
        do {
            let experiment = try JSONDecoder().decode(Experiment.self, from: data)
            _ = try Hyperparameters().applying(experiment.hyperparameters)
            return experiment
        } catch {
            throw DataError(file: path, "is not a valid experiment file: \(error)")
        }
    }
}

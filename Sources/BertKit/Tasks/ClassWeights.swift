import Foundation

/// Weights of the classes in the cross-entropy of a single-label head (sequence and token classification), for
/// data where some classes are rare: `none`, `balanced` (scikit-learn's `compute_class_weight("balanced")`: the
/// targets' count over the number of classes times the class's count) or one weight per label, comma-separated in
/// the labels' order.
public enum ClassWeights: HyperparameterValue {
    case none
    case balanced
    case explicit([Double])

    public init?(text: String) {
        switch text.trimmingCharacters(in: .whitespaces) {
        case "none", "": self = .none
        case "balanced": self = .balanced
        case let list:
            let weights = list.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard !weights.isEmpty, weights.allSatisfy({ $0 != nil && $0!.isFinite && $0! >= 0 }) else { return nil }
            self = .explicit(weights.map { $0! })
        }
    }

    /// A task or experiment file gives the name, or a list of numbers.
    public init?(json: JSONValue) {
        switch json {
        case .text(let text): self.init(text: text)
        case .array(let values):
            let weights = values.compactMap { Double(json: $0) }
            guard weights.count == values.count else { return nil }
            self.init(text: weights.map(\.text).joined(separator: ","))
        default: return nil
        }
    }

    public var text: String {
        switch self {
        case .none: "none"
        case .balanced: "balanced"
        case .explicit(let weights): weights.map(\.text).joined(separator: ",")
        }
    }

    public static var placeholder: String { "none|balanced|w1,w2,..." }
    public static var sqlType: String { "TEXT" }

    /// The weight of each of `labels` for training targets (class indices) `targets`; nil for `none`. A list of the
    /// wrong length, or `balanced` with a class that no target has (its weight would be infinite), is an error.
    public func resolve(labels: [String], targets: [Int]) throws -> [Float]? {
        switch self {
        case .none:
            return nil
        case .explicit(let weights):
            guard weights.count == labels.count else {
                throw UsageError("--class-weights lists \(weights.count) weights for \(labels.count) labels (\(labels.joined(separator: ", ")))")
            }
            guard weights.contains(where: { $0 > 0 }) else { throw UsageError("--class-weights must give some class a positive weight") }
            return weights.map { Float($0) }
        case .balanced:
            var counts = [Int](repeating: 0, count: labels.count)
            for target in targets { counts[target] += 1 }
            if let missing = counts.firstIndex(of: 0) {
                throw UsageError("--class-weights balanced: no training example has the label '\(labels[missing])'")
            }
            return counts.map { Float(Double(targets.count) / Double(labels.count * $0)) }
        }
    }
}

extension Hyperparameter where Value == ClassWeights {
    /// Sequence and token classification: weights of the classes in the loss.
    public static var classWeights: Self {
        .init("class_weights", default: .none,
              help: "Sequence and token classification: weight of each class in the loss: none, balanced (total / (classes x count)), or one weight per label, comma-separated.")
    }
}

import Foundation

/// What loading a checkpoint did, reported to the user instead of a wall of warnings.
public struct LoadReport: Sendable, CustomStringConvertible {
    /// Parameters whose values came from the file.
    public var loaded: [String] = []
    /// Tensors in the file that the model does not use (pre-training heads, buffers such as `position_ids`).
    public var ignored: [String] = []
    /// Parameters absent from the file and initialised afresh (a new task head).
    public var initialised: [String] = []

    public init() {}

    public var description: String {
        var lines = ["loaded \(loaded.count) tensors"]
        if !ignored.isEmpty { lines.append("ignored \(ignored.count): \(ignored.joined(separator: ", "))") }
        if !initialised.isEmpty { lines.append("newly initialised \(initialised.count): \(initialised.joined(separator: ", "))") }
        return lines.joined(separator: "\n")
    }
}

/// Maps checkpoint tensors onto a `ParameterStore`, accepting the spellings found in the wild.
public enum CheckpointLoader {
    /// The toolkit's name for a tensor named `name` in a file of `family`: without the prefix that task models
    /// add (`bert.`, `roberta.`), and with TensorFlow-era `LayerNorm.gamma`/`beta` read as `LayerNorm.weight`/`bias`.
    public static func canonicalName(_ name: String, family: EncoderFamily = .bert) -> String {
        var name = name
        if name.hasPrefix(family.weightPrefix) { name.removeFirst(family.weightPrefix.count) }
        if name.hasSuffix("LayerNorm.gamma") { name = String(name.dropLast("gamma".count)) + "weight" }
        if name.hasSuffix("LayerNorm.beta") { name = String(name.dropLast("beta".count)) + "bias" }
        return name
    }

    /// Copies every tensor of `file` that names a parameter of `store` into it.
    ///
    /// - Parameters:
    ///   - file: the checkpoint's weights.
    ///   - store: the parameters to fill.
    ///   - mayBeNew: parameters that may be missing from the file; they are initialised as BERT initialises them
    ///     (normal(0, `initializerRange`) weights, zero biases, unit LayerNorm scales). Any other missing
    ///     parameter is an error, as is a tensor whose shape differs from the parameter's.
    ///   - initializerRange: the standard deviation of new weights.
    ///   - seed: the seed of new weights' random stream.
    ///   - family: the encoder family, whose prefix the file's encoder tensors carry.
    public static func load(
        _ file: SafeTensorsFile, into store: ParameterStore, mayBeNew: (String) -> Bool,
        initializerRange: Float = 0.02, seed: UInt64 = 0, family: EncoderFamily = .bert
    ) throws -> LoadReport {
        var report = LoadReport()
        var found: [String: String] = [:]  // canonical name -> name in file
        for name in file.names {
            let canonical = canonicalName(name, family: family)
            guard store.contains(canonical) else {
                report.ignored.append(name)
                continue
            }
            if let other = found[canonical] {
                throw CheckpointError(file: file.path, "tensors '\(other)' and '\(name)' both name parameter \(canonical)")
            }
            found[canonical] = name
        }
        var generator = SeededRandom(seed: seed)
        for parameter in store.parameters {
            guard let name = found[parameter.name] else {
                guard mayBeNew(parameter.name) else {
                    throw CheckpointError(file: file.path, "missing tensor '\(parameter.name)' with shape \(parameter.shape)")
                }
                initialise(parameter, range: initializerRange, generator: &generator)
                report.initialised.append(parameter.name)
                continue
            }
            let entry = try file.entry(name)
            guard entry.shape == parameter.shape else {
                throw CheckpointError(file: file.path, "tensor '\(name)' has shape \(entry.shape); expected \(parameter.shape)")
            }
            try file.readFloats(name, into: parameter.value)
            // A NaN or infinity in the weights would surface steps later as a diverging loss, or as scores of 0.
            if let bad = parameter.values.firstIndex(where: { !$0.isFinite }) {
                throw CheckpointError(file: file.path, "tensor '\(name)' holds \(parameter.values[bad]) at index \(bad): "
                    + "every weight must be a finite number")
            }
            report.loaded.append(parameter.name)
        }
        return report
    }

    static func initialise(_ p: Parameter, range: Float, generator: inout SeededRandom) {
        if p.name.contains("LayerNorm") && p.name.hasSuffix(".weight") {
            p.values.update(repeating: 1)
        } else if p.name.hasSuffix(".bias") || p.name.contains("LayerNorm") {
            p.values.update(repeating: 0)
        } else {
            for i in 0..<p.count { p.value[i] = range * generator.next() }
        }
    }
}

import Foundation

/// A training checkpoint: everything the next optimizer step depends on, so that a run resumed from it is
/// bit for bit the run that was never stopped. It is a folder `checkpoint-STEP` in the run's `checkpoints/`:
///
/// - `model.safetensors`: every parameter, by the store's names;
/// - `optimizer.safetensors`: AdamW's first and second moments (`exp_avg`, `exp_avg_sq`, flat);
/// - `trainer_state.json`: the step, the position in the epoch's batch order (the order itself follows from
///   the seed and the epoch, so nothing is replayed), the best and last metrics, the early-stopping count,
///   the task's own state (pre-training's masking rounds), the hyper-parameters and the code version.
///
/// - `checksums.json`: each of those files' `FileChecksum`, written last; `verify()` checks them before a resume.
///
/// Dropout masks and data order are functions of the seed and the step, so they need no saving. A checkpoint is
/// written under a temporary name, synced and renamed (`ModelFolder.write`): a crash at any moment leaves
/// either the previous checkpoint or the new one; a file damaged later is found by its checksum.
public struct TrainingCheckpoint {
    /// `trainer_state.json`.
    public struct State: Codable, Sendable, Equatable {
        /// Optimizer steps done.
        public var step: Int
        /// The epoch the next micro-batch belongs to, and how many of its micro-batches are done.
        public var epoch: Int
        public var batchesDoneInEpoch: Int
        public var bestMetrics: [String: Double]
        public var bestStep: Int
        public var lastMetrics: [String: Double]
        public var lastEvaluatedStep: Int
        /// Evaluations in a row without an improvement of the main metric (early stopping).
        public var evaluationsWithoutImprovement: Int
        /// The task's own state (`TrainableTask.trainingState`).
        public var taskState: Data?
        /// The run's hyper-parameters, as `Hyperparameters.values`.
        public var hyperparameters: [String: String]
        /// What else the run was made with (task file, model, data files): what `finetune resume` rebuilds it from.
        public var job: [String: String]
        /// The git commit of the code that wrote it.
        public var codeVersion: String?

        /// The state before the first step.
        public static func start(hyperparameters: Hyperparameters, job: [String: String], codeVersion: String?) -> State {
            State(step: 0, epoch: 0, batchesDoneInEpoch: 0, bestMetrics: [:], bestStep: 0, lastMetrics: [:], lastEvaluatedStep: -1,
                  evaluationsWithoutImprovement: 0, taskState: nil, hyperparameters: hyperparameters.values, job: job,
                  codeVersion: codeVersion)
        }
    }

    public static let prefix = "checkpoint-"
    public let directory: String
    public let state: State

    /// Writes a checkpoint of `parameters`, `optimizer` and `state` to `root/checkpoint-STEP`, atomically.
    public static func save(to root: String, parameters: ParameterStore, optimizer: Optimizer, state: State) throws -> TrainingCheckpoint {
        let directory = root + "/" + prefix + String(state.step)
        try ModelFolder.write(to: directory) { staging in
            try SafeTensorsWriter.write(parameters.parameters.map { .init(name: $0.name, shape: $0.shape, values: UnsafeBufferPointer($0.values)) },
                                        to: staging.appendingPathComponent("model.safetensors").path)
            let (first, second) = optimizer.moments
            try SafeTensorsWriter.write([.init(name: "exp_avg", shape: [first.count], values: UnsafeBufferPointer(first)),
                                         .init(name: "exp_avg_sq", shape: [second.count], values: UnsafeBufferPointer(second))],
                                        metadata: ["step": String(optimizer.step)],
                                        to: staging.appendingPathComponent("optimizer.safetensors").path)
            try AtomicFile.write(try encoder.encode(state), to: staging.appendingPathComponent("trainer_state.json").path)
            var sums: [String: String] = [:]
            for name in checkedFiles { sums[name] = try FileChecksum.of(staging.appendingPathComponent(name).path) }
            try AtomicFile.write(try encoder.encode(sums), to: staging.appendingPathComponent("checksums.json").path)
        }
        return TrainingCheckpoint(directory: directory, state: state)
    }

    /// The files whose checksums a checkpoint keeps.
    static let checkedFiles = ["model.safetensors", "optimizer.safetensors", "trainer_state.json"]

    /// Checks every file against the checksum saved with it: an error names the first file that is missing, has
    /// another length or other bytes. A checkpoint written before checksums were kept has nothing to check.
    public func verify() throws {
        let path = directory + "/checksums.json"
        guard let data = FileManager.default.contents(atPath: path) else { return }
        guard let sums = try? Self.decoder.decode([String: String].self, from: data) else {
            throw CheckpointError(file: path, "is not a valid list of checksums")
        }
        for name in Self.checkedFiles {
            let file = directory + "/" + name
            guard let saved = sums[name] else { throw CheckpointError(file: path, "has no checksum for \(name)") }
            guard FileManager.default.fileExists(atPath: file) else { throw CheckpointError(file: file, "is missing") }
            let now = try FileChecksum.of(file)
            guard now == saved else {
                let (was, is_) = (saved.split(separator: ":").first ?? "?", now.split(separator: ":").first ?? "?")
                throw CheckpointError(file: file, was == is_ ? "does not hold the bytes that were saved (its checksum differs)"
                                                             : "has \(is_) bytes, \(was) were saved (truncated or replaced)")
            }
        }
    }

    /// The checkpoint folders under `root`, by step, oldest first, whether or not they are intact. Folders left
    /// half-written by a process that died are removed.
    public static func folders(in root: String) -> [(step: Int, directory: String)] {
        ModelFolder.removeAbandonedStaging(in: root)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix(prefix), let step = Int(name.dropFirst(prefix.count)) else { return nil }
            return (step, root + "/" + name)
        }.sorted { $0.0 < $1.0 }
    }

    /// The newest checkpoint under `root` that is whole and verifies, and what was skipped on the way to it.
    public static func latestIntact(in root: String) -> (checkpoint: TrainingCheckpoint?, skipped: [String]) {
        var skipped: [String] = []
        for (_, directory) in folders(in: root).reversed() {
            do {
                let checkpoint = try TrainingCheckpoint(directory: directory)
                try checkpoint.verify()
                return (checkpoint, skipped)
            } catch {
                skipped.append("\(error)")
            }
        }
        return (nil, skipped)
    }

    /// Reads the state of the checkpoint in `directory`.
    public init(directory: String) throws {
        let path = directory + "/trainer_state.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CheckpointError(file: path, "not found: \(directory) is not a training checkpoint")
        }
        do { state = try Self.decoder.decode(State.self, from: data) } catch {
            throw CheckpointError(file: path, "is not a valid trainer state: \(JSONKeys.explain(error))")
        }
        self.directory = directory
    }

    private init(directory: String, state: State) {
        self.directory = directory
        self.state = state
    }

    /// Writes the saved parameters and AdamW state into `parameters` and `optimizer`, checking that they are the
    /// same model: every tensor by name and shape, and the moments' size.
    public func restore(parameters: ParameterStore, optimizer: Optimizer) throws {
        let model = try SafeTensorsFile(path: directory + "/model.safetensors")
        guard Set(model.names) == Set(parameters.parameters.map(\.name)) else {
            throw CheckpointError(file: model.path, "holds other tensors than this model's: it is a checkpoint of another model or task")
        }
        for p in parameters.parameters {
            let entry = try model.entry(p.name)
            guard entry.shape == p.shape else {
                throw CheckpointError(file: model.path, "tensor \(p.name) has shape \(entry.shape), the model's is \(p.shape)")
            }
            try model.readFloats(p.name, into: p.value)
        }
        let moments = try SafeTensorsFile(path: directory + "/optimizer.safetensors")
        let (first, second) = optimizer.moments
        for (name, buffer) in [("exp_avg", first), ("exp_avg_sq", second)] {
            guard try moments.entry(name).shape == [buffer.count] else {
                throw CheckpointError(file: moments.path, "\(name) does not have the model's \(buffer.count) values")
            }
            try moments.readFloats(name, into: buffer.baseAddress!)
        }
        guard let step = moments.metadata["step"].flatMap(Int.init) else {
            throw CheckpointError(file: moments.path, "has no step in its metadata")
        }
        optimizer.resume(atStep: step)
    }

    /// Deletes all but the newest `keep` checkpoints under `root`, never the one at `protectedStep` (the best).
    static func prune(_ root: String, keep: Int, protectedStep: Int) throws {
        for (step, directory) in folders(in: root).dropLast(keep) where step != protectedStep {
            try FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Metrics may be NaN (a correlation of constant predictions); JSON has no NaN, so they are written as text.
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }()
    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }()
}

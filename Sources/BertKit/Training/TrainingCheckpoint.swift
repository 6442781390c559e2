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
/// Dropout masks and data order are functions of the seed and the step, so they need no saving. A checkpoint is
/// written under a temporary name, synced and renamed (`ModelFolder.write`): a crash at any moment leaves
/// either the previous checkpoint or the new one.
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
        }
        return TrainingCheckpoint(directory: directory, state: state)
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

    /// The checkpoints under `root`, oldest first. Folders left half-written by a process that died are removed.
    public static func all(in root: String) throws -> [TrainingCheckpoint] {
        ModelFolder.removeAbandonedStaging(in: root)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return try names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix(prefix), let step = Int(name.dropFirst(prefix.count)) else { return nil }
            return (step, root + "/" + name)
        }.sorted { $0.0 < $1.0 }.map { try TrainingCheckpoint(directory: $0.1) }
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
        let all = try all(in: root)
        for checkpoint in all.dropLast(keep) where checkpoint.state.step != protectedStep {
            try FileManager.default.removeItem(atPath: checkpoint.directory)
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

import Foundation

/// A run's record in results.db, from start to end: its row in `runs` with its hyper-parameters, the metrics it
/// logs as it trains (it observes the trainer), the files it writes, and how it ended: `completed`,
/// `interrupted` (Ctrl-C, SIGTERM) or `failed` with the error. A run whose process dies without ending it is
/// marked `interrupted` by the next process that opens the database on that host.
public final class TrackedRun: TrainingObserver {
    public let id: Int64
    public let database: ResultsDatabase

    /// Records a new run as `running`.
    public init(database: ResultsDatabase, task: String, plugin: String, model: String, experiment: String?, mainMetric: String,
                seed: UInt64, gitCommit: String?, parameters: [(String, String)]) throws {
        self.database = database
        id = try database.startRun(task: task, plugin: plugin, model: model, experiment: experiment, mainMetric: mainMetric, seed: seed,
                                   gitCommit: gitCommit, outputDirectory: nil, parameters: parameters)
    }

    /// Takes up run `id` again in this process, from its checkpoint at `step` (`finetune resume`): it is
    /// `running` again, and what it had logged after that step is deleted, to be logged again.
    public init(resuming id: Int64, in database: ResultsDatabase, fromStep step: Int) throws {
        self.database = database
        self.id = id
        try database.resumeRun(id, fromStep: step)
    }

    public func setOutputDirectory(_ directory: String) throws { try database.setOutputDirectory(id, directory) }

    public func log(split: String, step: Int, epoch: Double?, _ metrics: [String: Double]) throws {
        try database.logMetrics(id, split: split, step: step, epoch: epoch, metrics)
    }

    /// Records a file, or a folder (its bytes are the sum of its files'), with its sha256.
    public func logArtifact(path: String, kind: String) throws { try database.logArtifact(id, path: path, kind: kind) }

    /// Deletes the run's training checkpoints (a completed run needs only its best model) and its record of
    /// the latest one.
    public func discardCheckpoints(in directory: String) throws {
        if FileManager.default.fileExists(atPath: directory) { try FileManager.default.removeItem(atPath: directory) }
        try database.setCheckpoint(id, nil)
    }

    /// Marks how the run ended: completed when `error` is nil, interrupted when it is an interruption, failed
    /// otherwise (with the error's text). Returns the status recorded.
    @discardableResult
    public func finish(error: Error? = nil, stopReason: String? = nil) throws -> ResultsDatabase.Status {
        let status: ResultsDatabase.Status = switch error {
        case nil: .completed
        case TrainingError.interrupted?, TrainingError.quit?: .interrupted
        case _?: .failed
        }
        try recording("end") {
            try database.finishRun(id, status: status, error: error.map { "\($0.localizedDescription)" }, stopReason: stopReason)
        }
        return status
    }

    /// Runs a write of the record; its failure becomes an error that says what was lost and what to do.
    private func recording(_ what: String, _ write: () throws -> Void) throws {
        do {
            try database.checkStillInPlace()
            try FaultInjection.point("write", database.path)
            try write()
        } catch {
            throw RecordError(database: database.path, run: id, what: what, underlying: "\(error)")
        }
    }

    /// Marks the run interrupted, if it is still running, over a connection of its own: for a process that quits
    /// at once, from another thread, while this one may be in the middle of a write.
    public static func markQuit(run: Int64, databasePath: String, reason: String = TrainingError.quit.description) {
        guard let database = try? ResultsDatabase(path: databasePath) else { return }
        try? database.finishRun(run, status: .interrupted, error: reason, onlyIfRunning: true)
    }

    // MARK: TrainingObserver: every step's figures go to `train`, every evaluation to `dev`.

    public func trainingStarted(totalSteps: Int, stepsPerEpoch: Int, examples: Int) throws {
        try recording("total steps") { try database.recordTotalSteps(id, totalSteps) }
    }

    /// A run on several processes also logs each step's time, its wait for the slowest process and its gradient
    /// sum's, under `timing`.
    public func stepFinished(_ s: TrainingStep) throws {
        try recording("step \(s.step)") {
            try log(split: "train", step: s.step, epoch: s.epoch,
                    ["loss": s.loss, "learning_rate": s.learningRate, "grad_norm": Double(s.gradientNorm)])
            if let wait = s.waitSeconds, let allreduce = s.allreduceSeconds {
                try log(split: "timing", step: s.step, epoch: s.epoch,
                        ["step_seconds": s.seconds, "wait_seconds": wait, "allreduce_seconds": allreduce])
            }
        }
    }

    public func evaluated(step: Int, epoch: Double, metrics: [String: Double], isBest: Bool) throws {
        try recording("evaluation at step \(step)") { try log(split: "dev", step: step, epoch: epoch, metrics) }
    }

    public func predicted(step: Int, _ predictions: [ExamplePrediction]) throws {
        try recording("predictions at step \(step)") { try database.logPredictions(id, split: "dev", step: step, predictions) }
    }

    public func checkpointSaved(_ checkpoint: TrainingCheckpoint) throws {
        try recording("checkpoint \(checkpoint.directory)") { try database.setCheckpoint(id, checkpoint.directory) }
    }
}

/// A write of a run's record that failed (a full disk, a database deleted or locked): the run stops at once, so
/// that what results.db holds is what happened up to a step it recorded.
public struct RecordError: Error, CustomStringConvertible, LocalizedError {
    public let database: String
    public let run: Int64
    public let what: String
    public let underlying: String

    public var description: String {
        "\(database): could not record run \(run)'s \(what) (\(underlying)); the run stopped. Its latest checkpoint, if it has one, "
            + "is kept: once \(database) can be written again, `finetune resume \(run)` goes on from it"
    }
    public var errorDescription: String? { description }
}

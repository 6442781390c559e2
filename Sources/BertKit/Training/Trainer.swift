import Foundation

/// Why a run could not go on.
public enum TrainingError: Error, CustomStringConvertible, LocalizedError {
    case nonFiniteLoss(step: Int, loss: Double)
    /// Stopped on request (Ctrl-C, SIGTERM) after `step`; `checkpoint` is where it can resume from.
    case interrupted(step: Int, checkpoint: String?)
    case noTrainingData
    /// Quit at once (a second Ctrl-C), in the middle of a step.
    case quit

    public var description: String {
        switch self {
        case .nonFiniteLoss(let step, let loss): "the training loss became \(loss) at step \(step); try a lower learning rate"
        case .interrupted(let step, let checkpoint): "interrupted at step \(step)" + (checkpoint.map { "; resumable from \($0)" } ?? "")
        case .noTrainingData: "the training split has no examples"
        case .quit: "quit at once by a second Ctrl-C; `finetune resume` goes on from the latest checkpoint"
        }
    }
    public var errorDescription: String? { description }
}

/// What the trainer reports as it goes; progress display and results.db are observers.
/// An observer that records the run throws when it cannot: the trainer then stops at once, so that no step
/// goes unrecorded.
public protocol TrainingObserver: AnyObject {
    func trainingStarted(totalSteps: Int, stepsPerEpoch: Int, examples: Int) throws
    func stepFinished(_ step: TrainingStep) throws
    func evaluated(step: Int, epoch: Double, metrics: [String: Double], isBest: Bool) throws
    func checkpointSaved(_ checkpoint: TrainingCheckpoint) throws
    /// Every evaluation's per-example predictions, for tasks that give them (`TrainableTask.evaluationPredictions`).
    func predicted(step: Int, _ predictions: [ExamplePrediction]) throws
}

extension TrainingObserver {
    public func checkpointSaved(_ checkpoint: TrainingCheckpoint) {}
    public func predicted(step: Int, _ predictions: [ExamplePrediction]) {}
}

/// One optimizer step's figures.
public struct TrainingStep: Sendable {
    public let step: Int
    public let epoch: Double
    public let loss: Double
    public let learningRate: Double
    public let gradientNorm: Float
    public let samples: Int
    public let seconds: Double
    /// Of `seconds`, the time spent waiting for the slowest process to finish its share (nil for one process).
    public let waitSeconds: Double?
    /// Of `seconds`, the time spent summing gradients across processes once all had finished (nil for one process).
    public let allreduceSeconds: Double?

    package init(step: Int, epoch: Double, loss: Double, learningRate: Double, gradientNorm: Float, samples: Int, seconds: Double,
                 waitSeconds: Double?, allreduceSeconds: Double?) {
        (self.step, self.epoch, self.loss, self.learningRate, self.gradientNorm) = (step, epoch, loss, learningRate, gradientNorm)
        (self.samples, self.seconds, self.waitSeconds, self.allreduceSeconds) = (samples, seconds, waitSeconds, allreduceSeconds)
    }
}

/// What a finished run achieved.
public struct TrainingResult: Sendable {
    public let steps: Int
    public let finalMetrics: [String: Double]
    public let bestMetrics: [String: Double]
    public let bestStep: Int
    public let seconds: Double
    /// Why training ended before its last step (early stopping), or nil.
    public let stopReason: String?
}

/// The fine-tuning loop: seeded, length-grouped batches; gradient accumulation; AdamW with linear warm-up and
/// decay; evaluation every epoch or every N steps, exporting the best model by the task's main metric; early
/// stopping; training checkpoints, and exact resumption from one.
///
/// With a group of processes (`ProcessGroup`), each computes its share of every batch (`BatchShare`) and the
/// group sums the gradients before the update, which every process then applies alike: the batches, the
/// update and the result are those of one process with the same hyper-parameters. Process 0 alone exports and
/// saves checkpoints; the observers a caller gives are its to give (process 0's).
public final class Trainer {
    public let task: TrainableTask
    public let hyperparameters: Hyperparameters
    public let bestModelDirectory: String?
    /// Where checkpoints go (`save_strategy` says when), or nil for none.
    public let checkpointDirectory: String?
    /// What a checkpoint records besides the training state, for `finetune resume` (`TrainingCheckpoint.State.job`).
    public var job: [String: String] = [:]
    /// Told of every step and evaluation: the progress display, the run's record in results.db.
    public let observers: [TrainingObserver]
    /// Checked between steps; set it (from a signal handler, say) to stop the run.
    public let stopRequested: StopFlag
    /// The processes that train together; this one alone by default.
    public let processes: ProcessGroup

    public init(task: TrainableTask, hyperparameters: Hyperparameters, bestModelDirectory: String?,
                checkpointDirectory: String? = nil, observers: [TrainingObserver] = [], stopRequested: StopFlag = StopFlag(),
                processes: ProcessGroup = .single) {
        self.processes = processes
        self.task = task
        self.hyperparameters = hyperparameters
        self.bestModelDirectory = bestModelDirectory
        self.checkpointDirectory = checkpointDirectory
        self.observers = observers
        self.stopRequested = stopRequested
    }

    /// Trains from the start, or from `checkpoint` exactly as if the run had never stopped.
    public func run(resumingFrom checkpoint: TrainingCheckpoint? = nil) throws -> TrainingResult {
        let h = hyperparameters
        let lengths = task.trainingLengths
        guard !lengths.isEmpty else { throw TrainingError.noTrainingData }
        let microBatchesPerEpoch = (lengths.count + h[.batchSize] - 1) / h[.batchSize]
        let stepsPerEpoch = max(1, (microBatchesPerEpoch + h[.gradientAccumulation] - 1) / h[.gradientAccumulation])
        let totalSteps = h[.maxSteps] ?? Int((h[.epochs] * Double(stepsPerEpoch)).rounded(.up))
        let schedule = LearningRateSchedule(peak: h[.learningRate], warmupSteps: Int(h[.warmupRatio] * Double(totalSteps)),
                                            totalSteps: totalSteps)
        let optimizer = Optimizer(parameters: task.parameters, weightDecay: Float(h[.weightDecay]),
                                  maxGradNorm: Float(h[.maxGradNorm]),
                                  settings: .init(beta1: Float(h[.adamBeta1]), beta2: Float(h[.adamBeta2]), epsilon: Float(h[.adamEpsilon])))
        var state = TrainingCheckpoint.State.start(hyperparameters: h, job: job, codeVersion: GitCommit.value)
        if let checkpoint {
            try checkpoint.restore(parameters: task.parameters, optimizer: optimizer)
            try checkpoint.state.taskState.map { try task.restoreTrainingState($0) }
            state = checkpoint.state
            state.hyperparameters = h.values
            state.job = job
        }
        for o in observers { try o.trainingStarted(totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch, examples: lengths.count) }

        let start = Date()
        var stopReason: String?
        let patience = h[.earlyStoppingPatience], threshold = h[.earlyStoppingThreshold]

        func evaluate(epoch: Double) throws {
            state.lastEvaluatedStep = state.step
            let metrics = try task.parameters.withFixedWeights(task.evaluate)
            state.lastMetrics = metrics
            let score = metrics[task.mainMetric] ?? -.infinity, bestScore = state.bestMetrics[task.mainMetric] ?? -.infinity
            let isBest = state.bestMetrics.isEmpty || score > bestScore
            if state.bestMetrics.isEmpty || score > bestScore + threshold {
                state.evaluationsWithoutImprovement = 0
            } else {
                state.evaluationsWithoutImprovement += 1
            }
            if isBest {
                state.bestMetrics = metrics
                state.bestStep = state.step
                if let bestModelDirectory, processes.isMain { try task.export(to: bestModelDirectory) }
            }
            for o in observers { try o.evaluated(step: state.step, epoch: epoch, metrics: metrics, isBest: isBest) }
            let predictions = task.evaluationPredictions
            if !predictions.isEmpty { for o in observers { try o.predicted(step: state.step, predictions) } }
            if let patience, state.evaluationsWithoutImprovement >= patience {
                stopReason = "early stopping: \(task.mainMetric) did not improve by more than \(threshold.text) in \(patience) evaluations "
                    + "(best \(String(format: "%.4f", state.bestMetrics[task.mainMetric] ?? .nan)) at step \(state.bestStep))"
            }
        }

        @discardableResult
        func saveCheckpoint() throws -> TrainingCheckpoint? {
            guard let checkpointDirectory, h[.saveStrategy] != .no, processes.isMain else { return nil }
            state.taskState = task.trainingState
            let checkpoint: TrainingCheckpoint
            do {
                checkpoint = try TrainingCheckpoint.save(to: checkpointDirectory, parameters: task.parameters, optimizer: optimizer, state: state)
            } catch {
                // Nothing of the new checkpoint stands; the previous one does, and the run can go on from it.
                let resume = job["run"].map { "`finetune resume \($0)` goes on from the latest checkpoint once it can be written" }
                throw CheckpointError(file: checkpointDirectory, "checkpoint of step \(state.step) not saved: \(error); the run stopped"
                    + (resume.map { ", and " + $0 } ?? ""))
            }
            if h[.saveTotalLimit] > 0 { try TrainingCheckpoint.prune(checkpointDirectory, keep: h[.saveTotalLimit], protectedStep: state.bestStep) }
            for o in observers { try o.checkpointSaved(checkpoint) }
            return checkpoint
        }

        let reduction = GradientReduction(task.parameters)
        // Each optimizer update leaves the gradients at zero; only the first step needs clearing here.
        task.parameters.zeroGradients()
        var batches = Batches.epoch(lengths: lengths, batchSize: h[.batchSize], seed: h[.seed], epoch: state.epoch,
                                    groupByLength: h[.groupByLength])
        while state.step < totalSteps {
            let next = state.batchesDoneInEpoch
            let group = batches[next..<min(next + h[.gradientAccumulation], batches.count)]
            state.batchesDoneInEpoch += group.count
            let stepStart = Date()
            var loss = 0.0
            for (m, examples) in group.enumerated() {
                let share = BatchShare(examples, rank: processes.rank, of: processes.size)
                guard !share.isEmpty else { continue }
                let seed = Dropout.streamSeed(h[.seed], site: UInt64(state.step) << 8 | UInt64(m))
                loss += task.trainStep(share, dropout: .training(seed: seed, firstSequence: share.positions.lowerBound),
                                       gradientScale: 1 / Float(group.count))
            }
            var waitSeconds: Double?, allreduceSeconds: Double?
            if processes.isDistributed {
                // A barrier first, so that the sum's time is its own and the wait for the slowest share is apart.
                var start = Date()
                try processes.barrier()
                waitSeconds = Date().timeIntervalSince(start)
                start = Date()
                try reduction.sum(over: processes)
                loss = try processes.sum([loss])[0]
                allreduceSeconds = Date().timeIntervalSince(start)
            }
            loss /= Double(group.count)
            guard loss.isFinite else { throw TrainingError.nonFiniteLoss(step: state.step + 1, loss: loss) }
            let rate = schedule.rate(at: state.step)
            let norm = optimizer.update(learningRate: Float(rate))
            state.step += 1
            let epochEnded = state.batchesDoneInEpoch >= batches.count
            let epochProgress = Double(state.epoch) + Double(state.batchesDoneInEpoch) / Double(batches.count)
            let figures = TrainingStep(step: state.step, epoch: epochProgress, loss: loss, learningRate: rate, gradientNorm: norm,
                                       samples: group.reduce(0) { $0 + $1.count }, seconds: Date().timeIntervalSince(stepStart),
                                       waitSeconds: waitSeconds, allreduceSeconds: allreduceSeconds)
            for o in observers { try o.stepFinished(figures) }
            if let every = h[.evalSteps], state.step % every == 0 { try evaluate(epoch: epochProgress) }
            if state.step == totalSteps { break }
            if epochEnded {
                state.epoch += 1
                state.batchesDoneInEpoch = 0
                if h[.evalSteps] == nil { try evaluate(epoch: Double(state.epoch)) }
                batches = Batches.epoch(lengths: lengths, batchSize: h[.batchSize], seed: h[.seed], epoch: state.epoch,
                                        groupByLength: h[.groupByLength])
            }
            if stopReason != nil { break }
            if try processes.any(stopRequested.isSet) {
                // Nothing is lost: the run resumes after this very step.
                throw TrainingError.interrupted(step: state.step, checkpoint: try saveCheckpoint()?.directory)
            }
            switch h[.saveStrategy] {
            case .steps where state.step % h[.saveSteps]! == 0, .epoch where epochEnded: try saveCheckpoint()
            default: break
            }
        }
        // A step budget can end a run between evaluations: the final metrics are those of the last step.
        if state.lastEvaluatedStep != state.step { try evaluate(epoch: Double(state.step) / Double(stepsPerEpoch)) }
        try saveCheckpoint()
        return TrainingResult(steps: state.step, finalMetrics: state.lastMetrics, bestMetrics: state.bestMetrics,
                              bestStep: state.bestStep, seconds: Date().timeIntervalSince(start), stopReason: stopReason)
    }
}

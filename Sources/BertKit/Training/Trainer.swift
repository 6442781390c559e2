import Foundation

/// Why a run stopped early.
public enum TrainingError: Error, CustomStringConvertible, LocalizedError {
    case nonFiniteLoss(step: Int, loss: Double)
    case interrupted(step: Int)

    public var description: String {
        switch self {
        case .nonFiniteLoss(let step, let loss): "the training loss became \(loss) at step \(step); try a lower learning rate"
        case .interrupted(let step): "interrupted at step \(step)"
        }
    }
    public var errorDescription: String? { description }
}

/// What the trainer reports as it goes; progress display and results.db are observers.
public protocol TrainingObserver: AnyObject {
    func trainingStarted(totalSteps: Int, stepsPerEpoch: Int, examples: Int)
    func stepFinished(_ step: TrainingStep)
    func evaluated(step: Int, epoch: Double, metrics: [String: Double], isBest: Bool)
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
}

/// What a finished run achieved.
public struct TrainingResult: Sendable {
    public let steps: Int
    public let finalMetrics: [String: Double]
    public let bestMetrics: [String: Double]
    public let bestStep: Int
    public let seconds: Double
}

/// The fine-tuning loop: seeded, length-grouped batches; gradient accumulation; AdamW with linear warm-up and
/// decay; evaluation every epoch or every N steps, exporting the best model by the task's main metric.
public final class Trainer {
    public let task: TrainableTask
    public let hyperparameters: Hyperparameters
    public let bestModelDirectory: String?
    /// Told of every step and evaluation: the progress display, the run's record in results.db.
    public let observers: [TrainingObserver]
    /// Checked between steps; set it (from a signal handler, say) to stop the run.
    public let stopRequested: StopFlag

    public init(task: TrainableTask, hyperparameters: Hyperparameters, bestModelDirectory: String?,
                observers: [TrainingObserver] = [], stopRequested: StopFlag = StopFlag()) {
        self.task = task
        self.hyperparameters = hyperparameters
        self.bestModelDirectory = bestModelDirectory
        self.observers = observers
        self.stopRequested = stopRequested
    }

    public func run() throws -> TrainingResult {
        let h = hyperparameters
        let lengths = task.trainingLengths
        let microBatchesPerEpoch = (lengths.count + h[.batchSize] - 1) / h[.batchSize]
        let stepsPerEpoch = max(1, (microBatchesPerEpoch + h[.gradientAccumulation] - 1) / h[.gradientAccumulation])
        let totalSteps = h[.maxSteps] ?? Int((h[.epochs] * Double(stepsPerEpoch)).rounded(.up))
        let schedule = LearningRateSchedule(peak: h[.learningRate], warmupSteps: Int(h[.warmupRatio] * Double(totalSteps)),
                                            totalSteps: totalSteps)
        let optimizer = Optimizer(parameters: task.parameters, weightDecay: Float(h[.weightDecay]),
                                  maxGradNorm: Float(h[.maxGradNorm]),
                                  settings: .init(beta1: Float(h[.adamBeta1]), beta2: Float(h[.adamBeta2]), epsilon: Float(h[.adamEpsilon])))
        for o in observers { o.trainingStarted(totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch, examples: lengths.count) }

        let start = Date()
        var step = 0
        var final: [String: Double] = [:]
        var best: [String: Double] = [:]
        var bestStep = 0
        var lastEvaluated = -1

        func evaluate(epoch: Double) throws {
            lastEvaluated = step
            let metrics = task.evaluate()
            final = metrics
            let score = metrics[task.mainMetric] ?? -.infinity
            let isBest = best.isEmpty || score > (best[task.mainMetric] ?? -.infinity)
            if isBest {
                best = metrics
                bestStep = step
                if let bestModelDirectory { try task.export(to: bestModelDirectory) }
            }
            for o in observers { o.evaluated(step: step, epoch: epoch, metrics: metrics, isBest: isBest) }
        }

        // Each optimizer update leaves the gradients at zero; only the first step needs clearing here.
        task.parameters.zeroGradients()
        var epoch = 0
        training: while step < totalSteps {
            let batches = Batches.epoch(lengths: lengths, batchSize: h[.batchSize], seed: h[.seed], epoch: epoch,
                                        groupByLength: h[.groupByLength])
            var next = 0
            while next < batches.count && step < totalSteps {
                let group = batches[next..<min(next + h[.gradientAccumulation], batches.count)]
                next += group.count
                let stepStart = Date()
                var loss = 0.0
                for (m, examples) in group.enumerated() {
                    let seed = Dropout.streamSeed(h[.seed], site: UInt64(step) << 8 | UInt64(m))
                    loss += task.trainStep(examples, dropout: .training(seed: seed), gradientScale: 1 / Float(group.count))
                }
                loss /= Double(group.count)
                guard loss.isFinite else { throw TrainingError.nonFiniteLoss(step: step + 1, loss: loss) }
                let rate = schedule.rate(at: step)
                let norm = optimizer.update(learningRate: Float(rate))
                step += 1
                let epochProgress = Double(epoch) + Double(next) / Double(batches.count)
                let figures = TrainingStep(step: step, epoch: epochProgress, loss: loss, learningRate: rate, gradientNorm: norm,
                                           samples: group.reduce(0) { $0 + $1.count }, seconds: Date().timeIntervalSince(stepStart))
                for o in observers { o.stepFinished(figures) }
                if stopRequested.isSet { throw TrainingError.interrupted(step: step) }
                if let every = h[.evalSteps], step % every == 0 { try evaluate(epoch: epochProgress) }
                if step == totalSteps { break training }
            }
            epoch += 1
            if h[.evalSteps] == nil { try evaluate(epoch: Double(epoch)) }
        }
        // A step budget can end a run between evaluations: the final metrics are those of the last step.
        if lastEvaluated != step { try evaluate(epoch: Double(step) / Double(stepsPerEpoch)) }
        return TrainingResult(steps: step, finalMetrics: final, bestMetrics: best, bestStep: bestStep,
                              seconds: Date().timeIntervalSince(start))
    }
}

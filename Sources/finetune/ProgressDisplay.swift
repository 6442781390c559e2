import BertKit
import Foundation

/// Shows a run's progress: a bar on a terminal, otherwise a plain line every 10 seconds, and each evaluation
/// (the task's own metrics; per-label and per-type ones are in results.db).
final class ProgressDisplay: TrainingObserver {
    let mainMetric: String
    let shown: Set<String>
    let interactive = isatty(STDERR_FILENO) != 0
    private var totalSteps = 0
    private var samples = 0
    /// Steps taken in this process: after a resume, the first step shown is not step 1.
    private var stepsHere = 0
    private var trainingSeconds = 0.0
    private var recentLoss: Double?
    private let start = Date()
    private var lastLine = Date.distantPast

    init(mainMetric: String, metrics: [String]) {
        self.mainMetric = mainMetric
        shown = Set(metrics + ["threshold"])
    }

    /// The shown metrics, as text.
    func describe(_ metrics: [String: Double]) -> String {
        metrics.filter { shown.contains($0.key) }.sorted { $0.key < $1.key }
            .map { "\($0.key) \(String(format: "%.4f", $0.value))" }.joined(separator: ", ")
    }

    func trainingStarted(totalSteps: Int, stepsPerEpoch: Int, examples: Int) {
        self.totalSteps = totalSteps
        say("  \(totalSteps) optimizer steps (\(stepsPerEpoch) per epoch)")
    }

    func stepFinished(_ s: TrainingStep) {
        samples += s.samples
        stepsHere += 1
        trainingSeconds += s.seconds
        recentLoss = recentLoss.map { 0.9 * $0 + 0.1 * s.loss } ?? s.loss
        let rate = Double(samples) / max(trainingSeconds, 1e-9)
        let elapsed = Date().timeIntervalSince(start)
        let eta = elapsed / Double(stepsHere) * Double(totalSteps - s.step)
        let figures = String(format: "loss %.4f  lr %.2e  %.1f samples/s  ETA %@", recentLoss!, s.learningRate, rate, clock(eta))
        if interactive {
            let width = 28
            let filled = width * s.step / max(1, totalSteps)
            let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "") + String(repeating: " ", count: max(0, width - filled - 1))
            FileHandle.standardError.write(Data("\r  [\(bar)] \(s.step)/\(totalSteps) epoch \(String(format: "%.2f", s.epoch))  \(figures)\u{1B}[K".utf8))
        } else if s.step == totalSteps || Date().timeIntervalSince(lastLine) >= 10 {
            lastLine = Date()
            say("  step \(s.step)/\(totalSteps) epoch \(String(format: "%.2f", s.epoch))  \(figures)")
        }
    }

    func evaluated(step: Int, epoch: Double, metrics: [String: Double], isBest: Bool) {
        clearBar()
        say("  dev at step \(step) (epoch \(String(format: "%.2f", epoch))): \(describe(metrics))\(isBest ? "  (best \(mainMetric) so far, saved)" : "")")
    }

    /// Clears the progress bar's line, so that the next line starts clean.
    func clearBar() {
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    func clock(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "--:--" }
        let s = Int(seconds)
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

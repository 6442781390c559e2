/// Linear warm-up from 0 to the peak rate, then linear decay to 0 at the last step, as transformers'
/// `get_linear_schedule_with_warmup`: the rate of 0-based optimizer step `k` is `peak · λ(k)`.
public struct LearningRateSchedule: Sendable {
    public let peak: Double
    public let warmupSteps: Int
    public let totalSteps: Int

    public init(peak: Double, warmupSteps: Int, totalSteps: Int) {
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    public func rate(at step: Int) -> Double {
        if step < warmupSteps { return peak * Double(step) / Double(max(1, warmupSteps)) }
        return peak * max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmupSteps)))
    }
}

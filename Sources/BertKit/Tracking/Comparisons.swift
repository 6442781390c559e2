import Foundation

extension ResultsDatabase {
    /// Two runs of one task compared on the dev predictions of their best evaluations (the models they kept), by
    /// a paired bootstrap over the examples (`Significance.pairedBootstrap`) of the main metric, first minus second.
    /// Throws, saying why, when they cannot be compared so: different tasks or plugins, no stored predictions,
    /// different dev examples.
    public func pairedBootstrap(_ first: Int64, _ second: Int64, resamples: Int = 10_000, seed: UInt64 = 0)
        throws -> (metric: String, examples: Int, comparison: Significance.Comparison) {
        guard let a = try run(first), let b = try run(second) else { throw UsageError("no such run in \(path)") }
        guard let metric = a.mainMetric, metric == b.mainMetric, a.task == b.task else {
            throw UsageError("runs \(first) and \(second) do not share a task and main metric")
        }
        guard let name = try plugin(of: first), name == (try plugin(of: second)),
              let plugin = TaskPlugins.all.first(where: { $0.name == name }) else {
            throw UsageError("runs \(first) and \(second) were not both recorded with their plugin (results.db version 4 and later)")
        }
        guard let x = try bestPredictions(of: first)?.predictions, let y = try bestPredictions(of: second)?.predictions,
              !x.isEmpty else {
            throw UsageError("runs \(first) and \(second) have no stored dev predictions (\(plugin.name) does not store them, or they predate them)")
        }
        guard x.map(\.gold) == y.map(\.gold) else { throw UsageError("runs \(first) and \(second) were evaluated on different dev examples") }
        guard plugin.score(metric, x[...]) != nil else { throw UsageError("\(plugin.name) cannot compute \(metric) from stored predictions") }
        let comparison = Significance.pairedBootstrap(count: x.count, resamples: resamples, seed: seed) { sample in
            plugin.score(metric, sample.map { x[$0] }[...])! - plugin.score(metric, sample.map { y[$0] }[...])!
        }
        return (metric, x.count, comparison)
    }

    /// Two configurations of a sweep compared over their seeds by Welch's t-test of their runs' best main metric.
    public func welch(sweep: Int64, _ first: String, _ second: String) throws -> Significance.Comparison? {
        Significance.welch(try bestScores(ofSweep: sweep, configuration: first), try bestScores(ofSweep: sweep, configuration: second))
    }
}

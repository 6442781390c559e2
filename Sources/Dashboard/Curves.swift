import BertKit
import Foundation

/// The learning curves of runs, as the run and compare pages draw them: training loss, learning rate and every
/// dev metric, one panel each, within an optional range of steps (the zoom).
struct Curves {
    var runs: [Int64]
    var steps: ClosedRange<Double>?

    init(runs: [Int64], query: [String: String]) {
        self.runs = runs
        let from = query["from"].flatMap(Double.init), to = query["to"].flatMap(Double.init)
        if let from, let to, from < to { steps = from...to }
    }

    func chart(_ database: ResultsDatabase) throws -> LineChart {
        let names = try database.database.query("""
            SELECT DISTINCT split, name FROM metrics WHERE run_id IN (\(runs.map(String.init).joined(separator: ",")))
               AND split IN ('train', 'dev') AND name <> 'grad_norm'
            """).map { (split: $0.cell("split"), name: $0.cell("name")) }
        // Training first (loss, then learning rate), then the dev metrics by name.
        let ordered = names.sorted { a, b in
            let rank = { (m: (split: String, name: String)) in m.split == "train" ? (m.name == "loss" ? 0 : 1) : 2 }
            return (rank(a), a.name) < (rank(b), b.name)
        }
        var panels: [LineChart.Panel] = []
        for metric in ordered {
            var series: [LineChart.Series] = []
            for run in runs {
                let points = try database.series(of: run, split: metric.split, name: metric.name)
                    .map { (x: Double($0.step), y: $0.value) }
                    .filter { steps?.contains($0.x) ?? true }
                series.append(.init(name: "run \(run)", points: points))
            }
            let title = metric.split == "train" ? "training \(metric.name.replacingOccurrences(of: "_", with: " "))" : "dev \(metric.name)"
            panels.append(.init(title: title, xLabel: "step", yLabel: metric.name, series: series))
        }
        var chart = LineChart(panels: panels)
        chart.panelHeight = 220
        return chart
    }

    /// The chart's `<svg>`, or a sentence when the runs have logged nothing yet.
    func svg(_ database: ResultsDatabase) throws -> String {
        let chart = try chart(database)
        return chart.panels.isEmpty ? "<p>No metrics logged yet.</p>" : chart.svg(standalone: false)
    }
}

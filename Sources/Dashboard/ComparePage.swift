import BertKit
import Foundation

/// Two or more runs side by side: their curves overlaid, their hyper-parameters with those that differ marked,
/// and each run against the first by the paired bootstrap over their best evaluations' dev predictions.
struct ComparePage {
    let runs: [Int64]
    let curves: Curves

    init(runs: [Int64], query: [String: String]) {
        self.runs = runs
        curves = Curves(runs: runs, query: query)
    }

    func render(_ database: ResultsDatabase) throws -> String {
        guard runs.count >= 2 else {
            return HTML.page(title: "Compare runs", "<p class=\"error\">Tick two or more runs on the <a href=\"/\">runs page</a> to compare them.</p>")
        }
        for id in runs where try database.run(id) == nil {
            return HTML.page(title: "Compare runs", "<p class=\"error\">There is no run \(id).</p>")
        }
        let list = runs.map(String.init).joined(separator: ", ")
        var out = "<h2>Curves</h2><div id=\"curves\" class=\"curves\">\(try curves.svg(database))</div>\n"

        // Hyper-parameters, one row per key, one column per run.
        let query = ShownQuery("SELECT run_id, key, value FROM params WHERE run_id IN (\(list)) ORDER BY key, run_id")
        var byKey: [String: [Int64: String]] = [:]
        for row in try query.rows(in: database) {
            byKey[row.cell("key"), default: [:]][row.integer("run_id") ?? 0] = row.cell("value")
        }
        let keys = byKey.keys.sorted()
        let rows = keys.map { key in [key] + runs.map { byKey[key]?[$0] ?? "" } }
        let classes = rows.map { Set($0.dropFirst()).count > 1 ? "differs" : nil }
        out += "<h2>Hyper-parameters</h2><p class=\"hint\">Rows that differ are marked.</p>"
            + HTML.table(["key"] + runs.map { "run \($0)" }, text: rows, id: "parameters", classes: classes) + HTML.sql(query)

        out += "<h2>Is the difference more than noise?</h2>\n"
        out += "<p class=\"hint\">Paired bootstrap: 10,000 resamples of the dev examples, the main metric of each run minus the first run's, "
            + "on the predictions of their best evaluations.</p>\n"
        var significance: [[String]] = []
        for other in runs.dropFirst() {
            do {
                let (metric, examples, c) = try database.pairedBootstrap(other, runs[0])
                significance.append(["run \(other) − run \(runs[0])", metric, String(examples), String(format: "%+.4f", c.difference),
                                     String(format: "[%+.4f, %+.4f]", c.lower, c.upper), String(format: "%.4f", c.pValue),
                                     c.pValue < 0.05 ? "yes (p < 0.05)" : "no"])
            } catch {
                significance.append(["run \(other) − run \(runs[0])", "", "", "", "", "", "\(error)"])
            }
        }
        out += HTML.table(["difference", "metric", "examples", "observed", "95 % interval", "p", "more than noise?"], text: significance,
                          id: "significance")
        return HTML.page(title: "Compare runs \(list)", out)
    }
}

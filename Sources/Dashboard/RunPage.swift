import BertKit
import Foundation

/// One run: where it is (updated live while it runs), its curves (drag across a panel to zoom), its record,
/// hyper-parameters, metrics, files, resumptions, and what its best evaluation's predictions show.
struct RunPage {
    let id: Int64
    let curves: Curves

    init(id: Int64, query: [String: String]) {
        self.id = id
        curves = Curves(runs: [id], query: query)
    }

    func render(_ database: ResultsDatabase) throws -> String? {
        guard let run = try database.run(id), let progress = try RunProgress(run: id, in: database) else { return nil }
        var out = "<p id=\"progress\" class=\"status-\(HTML.escape(progress.status))\" data-run=\"\(id)\" data-live=\"\(progress.status == "running")\">"
            + HTML.escape(progress.line) + "</p>\n"
        if let reason = run.stopReason { out += "<p class=\"stop-reason\">Stopped: \(HTML.escape(reason))</p>\n" }
        if let error = run.error { out += "<p class=\"error\">\(HTML.escape(error))</p>\n" }

        out += "<h2>Curves</h2><p class=\"hint\">Drag across a panel to zoom in on those steps"
            + (curves.steps == nil ? "" : "; <a href=\"/runs/\(id)\">show every step</a>") + ".</p>\n"
        out += "<div id=\"curves\" class=\"curves\">\(try curves.svg(database))</div>\n"

        let record = ShownQuery("SELECT * FROM runs WHERE id = ?", [.integer(id)])
        out += "<h2>Record</h2>" + HTML.table(["field", "value"], text: run.fields.map { [$0.0, $0.1] }) + HTML.sql(record)

        out += try section("Hyper-parameters", ShownQuery("SELECT key, value FROM params WHERE run_id = ? ORDER BY key", [.integer(id)]),
                           columns: ["key", "value"], in: database)
        out += try section("Metrics", ShownQuery("""
            SELECT split, name, final, best, last_step FROM metric_summary WHERE run_id = ? ORDER BY split, name
            """, [.integer(id)]), columns: ["split", "name", "final", "best", "last_step"], in: database)
        out += try section("Artifacts", ShownQuery("SELECT kind, path, bytes, sha256 FROM artifacts WHERE run_id = ? ORDER BY rowid",
                                                   [.integer(id)]), columns: ["kind", "path", "bytes", "sha256"], in: database)
        out += try section("Resumptions", ShownQuery("SELECT from_step, time, host, pid FROM resumes WHERE run_id = ? ORDER BY rowid",
                                                     [.integer(id)]), columns: ["from_step", "time", "host", "pid"], in: database)
        out += try PredictionsView(run: id, mainMetric: run.mainMetric, plugin: try database.plugin(of: id)).render(database)
        return HTML.page(title: "Run \(id): \(run.task)", out)
    }

    /// A heading, the rows of `query` (or a line saying there are none), and the SQL.
    private func section(_ title: String, _ query: ShownQuery, columns: [String], in database: ResultsDatabase) throws -> String {
        let rows = try query.rows(in: database)
        let body = rows.isEmpty ? "<p class=\"none\">None.</p>\n" : HTML.table(columns, text: rows.map { r in columns.map { r.cell($0) } })
        return "<h2>\(HTML.escape(title))</h2>" + body + HTML.sql(query)
    }
}

/// What a run's stored dev predictions show, at the evaluation its best model comes from: for classification a
/// confusion matrix and the misclassified examples, for regression the largest errors, for token classification
/// each entity type's precision, recall and F1 (seqeval's, as the run scored them) and the sentences with the most
/// wrong tags.
struct PredictionsView {
    let run: Int64
    let mainMetric: String?
    let plugin: String?
    static let worstShown = 20

    func render(_ database: ResultsDatabase) throws -> String {
        guard let mainMetric else { return "" }
        let query = ShownQuery(ResultsDatabase.bestPredictionsSQL, [.integer(run), .integer(run), .text(mainMetric), .integer(run)])
        let rows = try query.rows(in: database)
        guard let step = rows.first?.cell("step") else {
            return "<h2>Predictions</h2><p class=\"none\">No stored dev predictions.</p>\n" + HTML.sql(query)
        }
        let examples = rows.map { (example: $0.cell("example"), predicted: $0.cell("predicted"), gold: $0.cell("gold")) }
        var out = "<h2>Predictions at step \(HTML.escape(step)) (best dev \(HTML.escape(mainMetric)))</h2>\n"
        if plugin == "token-classification" {
            out += entityView(examples)
        } else if examples.allSatisfy({ Double($0.gold) != nil && Double($0.predicted) != nil && $0.predicted.contains(".") }) {
            // A regression's predictions are numbers with a fraction; a classifier's are its labels.
            let worst = examples.sorted { abs(Double($0.predicted)! - Double($0.gold)!) > abs(Double($1.predicted)! - Double($1.gold)!) }
            out += "<h3>Largest errors</h3>" + HTML.table(["example", "predicted", "gold"], text: worst.prefix(Self.worstShown).map { [$0.example, $0.predicted, $0.gold] },
                                                          id: "worst")
        } else {
            out += confusionMatrix(examples)
            let wrong = examples.filter { $0.predicted != $0.gold }
            out += "<h3>Misclassified (\(wrong.count) of \(examples.count); the first \(min(wrong.count, Self.worstShown)))</h3>"
                + HTML.table(["example", "predicted", "gold"], text: wrong.prefix(Self.worstShown).map { [$0.example, $0.predicted, $0.gold] }, id: "worst")
        }
        return out + HTML.sql(query)
    }

    private func confusionMatrix(_ examples: [(example: String, predicted: String, gold: String)]) -> String {
        let labels = Array(Set(examples.map(\.gold) + examples.map(\.predicted))).sorted()
        var counts: [String: Int] = [:]
        for e in examples { counts[e.gold + "\u{0}" + e.predicted, default: 0] += 1 }
        let rows = labels.map { gold in [gold] + labels.map { String(counts[gold + "\u{0}" + $0] ?? 0) } }
        return "<h3>Confusion matrix (rows: gold, columns: predicted)</h3>"
            + HTML.table(["gold \\ predicted"] + labels, text: rows, id: "confusion")
    }

    private func entityView(_ examples: [(example: String, predicted: String, gold: String)]) -> String {
        let gold = examples.map { $0.gold.split(separator: " ").map(String.init) }
        let predicted = examples.map { $0.predicted.split(separator: " ").map(String.init) }
        let score = EntityMetrics.score(gold: gold, predicted: predicted)
        let rows = score.byType.keys.sorted().map { type in
            let s = score.byType[type]!
            return [type, HTML.number(s.precision), HTML.number(s.recall), HTML.number(s.f1), String(s.gold)]
        } + [["overall", HTML.number(score.overall.precision), HTML.number(score.overall.recall), HTML.number(score.overall.f1),
              String(score.overall.gold)]]
        let wrongTags = zip(gold, predicted).map { g, p in zip(g, p).filter { $0 != $1 }.count + abs(g.count - p.count) }
        let worst = examples.indices.filter { wrongTags[$0] > 0 }.sorted { (wrongTags[$0], -$0) > (wrongTags[$1], -$1) }
        return "<h3>Entities by type</h3>" + HTML.table(["type", "precision", "recall", "f1", "gold entities"], text: rows, id: "entity-types")
            + "<h3>Sentences with the most wrong tags</h3>"
            + HTML.table(["example", "wrong tags", "predicted", "gold"],
                         text: worst.prefix(Self.worstShown).map { [examples[$0].example, String(wrongTags[$0]), examples[$0].predicted, examples[$0].gold] },
                         id: "worst")
    }
}

import BertKit
import Foundation

/// The sweeps, and one sweep: per configuration the mean ± sd over seeds of its best main metric and curves with
/// ± sd bands, and each configuration against the best by Welch's t-test over seeds.
enum SweepPages {
    static func list(_ database: ResultsDatabase) throws -> String {
        let query = ShownQuery("SELECT id, task, status, grid, seeds, jobs, started_at, ended_at FROM sweeps ORDER BY id DESC")
        let rows = try query.rows(in: database)
        let cells = rows.map { r in
            [Cell.link(r.cell("id"), to: "/sweeps/\(r.cell("id"))")] + ["task", "status", "grid", "seeds", "jobs", "started_at", "ended_at"].map { Cell.text(r.cell($0)) }
        }
        let body = rows.isEmpty ? "<p class=\"none\">No sweeps yet (finetune sweep).</p>\n"
            : HTML.table(["id", "task", "status", "grid", "seeds", "jobs", "started_at", "ended_at"], cells, id: "sweeps")
        return HTML.page(title: "Sweeps", body + HTML.sql(query))
    }

    static func sweep(_ id: Int64, _ database: ResultsDatabase) throws -> String? {
        guard let sweep = try database.sweep(id) else { return nil }
        let query = ShownQuery("""
            SELECT configuration, runs, main_metric, mean, sd, min, max, mean_seconds FROM sweep_summary
             WHERE sweep_id = ? ORDER BY mean DESC
            """, [.integer(id)])
        let rows = try query.rows(in: database)
        let best = rows.first?.cell("configuration")
        var table: [[String]] = []
        for r in rows {
            let configuration = r.cell("configuration")
            var welch = ""
            if let best, configuration != best {
                if let c = try database.welch(sweep: id, configuration, best) {
                    welch = String(format: "%+.4f [%+.4f, %+.4f], p = %.4f", c.difference, c.lower, c.upper, c.pValue)
                        + (c.pValue < 0.05 ? ": worse than the best" : ": not distinguishable from the best")
                } else {
                    welch = (r.integer("runs") ?? 0) < 2 || (rows.first?.integer("runs") ?? 0) < 2
                        ? "needs two or more completed seeds in each" : "no test: every seed scored the same in both"
                }
            } else if configuration == best {
                welch = "best mean"
            }
            table.append([configuration, r.cell("runs"), r.cell("main_metric"), HTML.number(r.real("mean")), HTML.number(r.real("sd")),
                          HTML.number(r.real("min")), HTML.number(r.real("max")), HTML.number(r.real("mean_seconds"), digits: 1), welch])
        }
        var out = "<p class=\"status-\(HTML.escape(sweep.status.rawValue))\">\(HTML.escape(sweep.task)): \(HTML.escape(sweep.status.rawValue)), "
            + "seeds \(sweep.seeds.map(String.init).joined(separator: ", ")); <a href=\"/?sweep=\(id)\">its runs</a></p>\n"
        out += "<h2>Configurations</h2><p class=\"hint\">Best main metric of each completed run, mean and standard deviation over seeds; "
            + "each configuration against the best by Welch's t-test (difference, 95 % interval, p).</p>\n"
        out += HTML.table(["configuration", "runs", "metric", "mean", "sd", "min", "max", "mean seconds", "against the best (Welch)"],
                          text: table, id: "configurations") + HTML.sql(query)
        if let metric = rows.first?.text("main_metric") {
            let chart = try database.learningCurves(sweep: id, metric: metric, spread: .standardDeviation)
            out += "<h2>Curves</h2><div id=\"curves\" class=\"curves\">\(chart.svg(standalone: false))</div>\n"
        }
        return HTML.page(title: "Sweep \(id)", out)
    }
}

import BertKit
import Foundation

/// The first page: every run in a table, filtered by task, status, plugin and sweep, sorted by any column (a
/// hyper-parameter of `run_params`, the main metric, or any dev metric picked to show), with boxes to tick runs to
/// compare, a page of `limit` runs at a time (a browser takes most of a second to lay out a table of a thousand
/// runs; BENCHMARKS.md). Hyper-parameters that every listed run shares are said once above the table instead of in
/// a column.
struct RunsPage {
    /// The page's settings, from its query string.
    var task: String?
    var status: String?
    var plugin: String?
    var sweep: Int64?
    /// A dev metric to show (its best value) as a column, such as `f1`.
    var metric: String?
    var sort = "id"
    var descending = true
    var limit = 100
    /// The page of runs shown, from 1.
    var page = 1

    init(query: [String: String]) {
        func given(_ key: String) -> String? { query[key].flatMap { $0.isEmpty ? nil : $0 } }
        task = given("task")
        status = given("status")
        plugin = given("plugin")
        sweep = given("sweep").flatMap { Int64($0) }
        metric = given("metric")
        sort = given("sort") ?? "id"
        descending = given("order").map { $0 != "asc" } ?? true
        limit = given("limit").flatMap { Int($0) }.map { min(max(1, $0), 10_000) } ?? 100
        page = given("page").flatMap { Int($0) }.map { max(1, $0) } ?? 1
    }

    static let fixedColumns = ["id", "task", "plugin", "status", "experiment", "sweep", "main_metric", "final_main", "best_main",
                               "seconds", "started_at"]

    /// The statement behind the table. The sort column is checked against the columns there are (it becomes part
    /// of the SQL); every other setting is a bound value.
    func query(parameterColumns: [String]) -> (runs: ShownQuery, count: ShownQuery) {
        var conditions: [String] = [], filterValues: [SQLValue] = []
        for (column, value) in [("r.task", task), ("r.status", status), ("r.plugin", plugin)] {
            if let value { conditions.append("\(column) = ?"); filterValues.append(.text(value)) }
        }
        if let sweep { conditions.append("w.sweep_id = ?"); filterValues.append(.integer(sweep)) }
        let filter = conditions.isEmpty ? "" : "\n WHERE " + conditions.joined(separator: " AND ")

        var select = """
            SELECT r.id, r.task, r.plugin, r.status, r.experiment, w.sweep_id AS sweep, r.main_metric, s.final_main, s.best_main,
                   s.seconds, r.started_at, r.host, r.pid
            """
        if metric != nil {
            select += ",\n       (SELECT CASE WHEN m.name LIKE '%loss%' THEN MIN(m.value) ELSE MAX(m.value) END FROM metrics m"
                + "\n         WHERE m.run_id = r.id AND m.split = 'dev' AND m.name = ?) AS metric"
        }
        for column in parameterColumns { select += ", p.\(column)" }
        let known = Set(Self.fixedColumns + parameterColumns + (metric == nil ? [] : ["metric"]))
        let order = known.contains(sort) ? sort : "id"
        let sql = select + """

              FROM runs r JOIN run_summary s ON s.run_id = r.id
              LEFT JOIN run_params p ON p.run_id = r.id
              LEFT JOIN sweep_runs w ON w.run_id = r.id
            """ + filter + "\n ORDER BY \"\(order)\" \(descending ? "DESC" : "ASC") NULLS LAST, r.id DESC LIMIT ? OFFSET ?"
        let values = (metric.map { [SQLValue.text($0)] } ?? []) + filterValues
            + [.integer(Int64(limit)), .integer(Int64((page - 1) * limit))]
        let count = ShownQuery("SELECT COUNT(*) AS runs FROM runs r LEFT JOIN sweep_runs w ON w.run_id = r.id" + filter, filterValues)
        return (ShownQuery(sql, values), count)
    }

    func render(_ database: ResultsDatabase) throws -> String {
        let parameterColumns = try database.database.query("SELECT name FROM pragma_table_info('run_params') WHERE name <> 'run_id'")
            .map { $0.cell("name") }
        let (query, countQuery) = self.query(parameterColumns: parameterColumns)
        let rows = try query.rows(in: database)
        let total = Int(try countQuery.rows(in: database).first?.integer("runs") ?? 0)

        // Hyper-parameters that differ between the listed runs get a column; the rest are said once.
        let differing = parameterColumns.filter { c in Set(rows.map { $0.cell(c) }).count > 1 }
        let shared = parameterColumns.filter { c in !differing.contains(c) && !(rows.first?.cell(c).isEmpty ?? true) }
        let metricColumns = metric == nil ? [] : ["metric"]
        let columns = Self.fixedColumns + metricColumns + differing
        let header = ["compare"] + columns.map { $0 == "metric" ? "best dev \(metric ?? "")" : $0 }

        var out = try filters(database)
        let first = (page - 1) * limit
        out += "<p class=\"count\">" + (rows.isEmpty ? "No runs" : "Runs \(first + 1)–\(first + rows.count) of <span id=\"run-count\">\(total)</span>")
            + (shared.isEmpty ? "" : "; the same in each: " + HTML.escape(shared.map { "\($0) = \(rows[0].cell($0))" }.joined(separator: ", ")))
            + "</p>\n"
        out += "<form id=\"compare\" action=\"/compare\" method=\"get\"><button type=\"submit\">Compare ticked runs</button></form>\n"
        let sortable = columns.map { column -> String in
            let descendingNext = !(sort == column && descending)
            var settings = settingsQuery()
            settings["sort"] = column
            settings["order"] = descendingNext ? "desc" : "asc"
            return Self.link(settings)
        }
        out += "<table id=\"runs\"><thead><tr><th>compare</th>"
        for (i, title) in header.dropFirst().enumerated() {
            let mark = columns[i] == sort ? (descending ? " ▼" : " ▲") : ""
            out += "<th><a href=\"\(HTML.escape(sortable[i]))\">\(HTML.escape(title))\(mark)</a></th>"
        }
        out += "</tr></thead><tbody>\n"
        for row in rows {
            let id = row.cell("id")
            var cells = [Cell.checkbox(name: "run", value: id, form: "compare")]
            for column in columns {
                switch column {
                case "id": cells.append(.link(id, to: "/runs/\(id)"))
                case "status": cells.append(.text(Self.status(row)))
                case "sweep": cells.append(row.cell("sweep").isEmpty ? .text("") : .link(row.cell("sweep"), to: "/sweeps/\(row.cell("sweep"))"))
                default: cells.append(.text(row.cell(column)))
                }
            }
            out += "<tr class=\"status-\(HTML.escape(Self.status(row)))\">" + cells.map { "<td>\($0.html)</td>" }.joined() + "</tr>\n"
        }
        out += "</tbody></table>\n" + pages(total: total) + HTML.sql(query) + HTML.sql(countQuery)
        return HTML.page(title: "Runs", out)
    }

    /// A run's status as a person should read it: a run still marked running whose process is gone was
    /// interrupted (the next command that writes results.db records it so).
    static func status(_ row: [String: SQLValue]) -> String {
        let recorded = row.cell("status")
        guard recorded == "running", case .integer(let pid)? = row["pid"] else { return recorded }
        return ResultsDatabase.processHasEnded(pid: pid, host: row.text("host")) ? "interrupted" : recorded
    }

    /// The filters as a form of drop-downs, each offering the values there are.
    private func filters(_ database: ResultsDatabase) throws -> String {
        func options(_ sql: String) throws -> [String] { try database.database.query(sql).map { $0.cell("v") } }
        let tasks = try options("SELECT DISTINCT task AS v FROM runs ORDER BY 1")
        let plugins = try options("SELECT DISTINCT plugin AS v FROM runs WHERE plugin IS NOT NULL ORDER BY 1")
        let sweeps = try options("SELECT id AS v FROM sweeps ORDER BY id DESC")
        // Dev metrics are named alike by every run of a task: the newest run of each task names them, found
        // through the metrics' index instead of a pass over every metric row.
        let metrics = try options("""
            SELECT DISTINCT name AS v FROM metrics
             WHERE split = 'dev' AND run_id IN (SELECT MAX(id) FROM runs GROUP BY task) ORDER BY 1
            """)
        func select(_ name: String, _ values: [String], _ chosen: String?) -> String {
            "<label>\(name) <select name=\"\(name)\"><option value=\"\">any</option>"
                + values.map { "<option\($0 == chosen ? " selected" : "")>\(HTML.escape($0))</option>" }.joined() + "</select></label> "
        }
        return "<form id=\"filters\" method=\"get\" action=\"/\">"
            + select("task", tasks, task) + select("status", ["running", "completed", "failed", "interrupted"], status)
            + select("plugin", plugins, plugin) + select("sweep", sweeps, sweep.map(String.init))
            + select("metric", metrics, metric)
            + "<input type=\"hidden\" name=\"sort\" value=\"\(HTML.escape(sort))\"><input type=\"hidden\" name=\"order\" value=\"\(descending ? "desc" : "asc")\">"
            + "<button type=\"submit\">Show</button></form>\n"
    }

    /// Links to the previous and next page, keeping the filters and the sort.
    private func pages(total: Int) -> String {
        var links: [String] = []
        for (title, target) in [("← previous", page - 1), ("next →", page + 1)] where target >= 1 && (target - 1) * limit < total {
            var settings = settingsQuery()
            settings["sort"] = sort
            settings["order"] = descending ? "desc" : "asc"
            settings["page"] = String(target)
            links.append("<a class=\"page\" href=\"\(HTML.escape(Self.link(settings)))\">\(title)</a>")
        }
        return links.isEmpty ? "" : "<p class=\"pages\">" + links.joined(separator: " ") + "</p>\n"
    }

    private func settingsQuery() -> [String: String] {
        var settings: [String: String] = [:]
        settings["task"] = task
        settings["status"] = status
        settings["plugin"] = plugin
        settings["sweep"] = sweep.map(String.init)
        settings["metric"] = metric
        if limit != 100 { settings["limit"] = String(limit) }
        return settings
    }

    static func link(_ settings: [String: String]) -> String {
        "/?" + settings.sorted { $0.key < $1.key }.map { "\($0.key)=\(HTML.queryValue($0.value))" }.joined(separator: "&")
    }
}

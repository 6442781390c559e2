import BertKit
import Foundation

/// The pieces every page is made of. Every value that comes from results.db goes through `escape` (a task named
/// `<script>` is shown as text); page builders concatenate the results, so a value never reaches the page another way.
enum HTML {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// A value in a query string (`?task=...`).
    static func queryValue(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// A whole page: the navigation, `body`, and the stylesheet and script served by the binary itself.
    static func page(title: String, _ body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(title)) · bertkit</title>
        <link rel="stylesheet" href="/assets/dashboard.css"><script src="/assets/dashboard.js" defer></script></head>
        <body><nav><a href="/">Runs</a> <a href="/sweeps">Sweeps</a></nav>
        <main><h1>\(escape(title))</h1>
        \(body)
        </main></body></html>

        """
    }

    /// A table with its header; `classes` marks rows (say, `differs`).
    static func table(_ header: [String], _ rows: [[Cell]], id: String? = nil, classes: [String?] = []) -> String {
        var out = "<table\(id.map { " id=\"\($0)\"" } ?? "")><thead><tr>"
        for h in header { out += "<th>\(escape(h))</th>" }
        out += "</tr></thead><tbody>\n"
        for (i, row) in rows.enumerated() {
            let c = i < classes.count ? classes[i] : nil
            out += "<tr\(c.map { " class=\"\($0)\"" } ?? "")>" + row.map { "<td>\($0.html)</td>" }.joined() + "</tr>\n"
        }
        return out + "</tbody></table>\n"
    }

    /// A table of text cells.
    static func table(_ header: [String], text rows: [[String]], id: String? = nil, classes: [String?] = []) -> String {
        table(header, rows.map { $0.map(Cell.text) }, id: id, classes: classes)
    }

    /// The SQL that filled a table, ready to copy into `sqlite3 results.db`.
    static func sql(_ query: ShownQuery) -> String {
        "<details class=\"sql\"><summary>SQL</summary><pre>\(escape(query.text))</pre>"
            + "<button type=\"button\" class=\"copy\">Copy</button></details>\n"
    }

    static func number(_ value: Double?, digits: Int = 4) -> String {
        guard let value else { return "" }
        return value.isFinite ? String(format: "%.\(digits)f", value) : "\(value)"
    }
}

/// A table cell: text, escaped, or text that links somewhere, or a box to tick. There is no way to put
/// unescaped text in a cell.
struct Cell {
    let html: String

    static func text(_ text: String) -> Cell { Cell(html: HTML.escape(text)) }
    static func link(_ text: String, to href: String) -> Cell { Cell(html: "<a href=\"\(HTML.escape(href))\">\(HTML.escape(text))</a>") }
    static func checkbox(name: String, value: String, form: String) -> Cell {
        Cell(html: "<input type=\"checkbox\" name=\"\(HTML.escape(name))\" value=\"\(HTML.escape(value))\" form=\"\(HTML.escape(form))\">")
    }
}

/// A SELECT as the dashboard runs it and as a page shows it: the statement with its values in place of the `?`s.
struct ShownQuery {
    let sql: String
    let values: [SQLValue]

    init(_ sql: String, _ values: [SQLValue] = []) {
        self.sql = sql
        self.values = values
    }

    func rows(in database: ResultsDatabase) throws -> [[String: SQLValue]] { try database.database.query(sql, values) }

    /// The statement as `sqlite3` takes it: each `?` replaced by its value, text quoted.
    var text: String {
        var out = "", next = values.makeIterator()
        var quoted = false
        for c in sql {
            if c == "'" { quoted.toggle() }
            guard c == "?", !quoted, let value = next.next() else { out.append(c); continue }
            switch value {
            case .null: out += "NULL"
            case .integer(let v): out += String(v)
            case .real(let v): out += String(v)
            case .text(let v): out += "'" + v.replacingOccurrences(of: "'", with: "''") + "'"
            }
        }
        return out
    }
}

extension [String: SQLValue] {
    /// A column's value as a cell shows it.
    func cell(_ column: String) -> String {
        switch self[column] {
        case .real(let v)?: abs(v) >= 1e4 || v == v.rounded() ? String(v) : String(format: "%.4g", v)
        case let v?: v.description
        case nil: ""
        }
    }
}

import BertKit
import Foundation

/// Where a run is: its last step of the planned ones, the time left at the pace since it (last) started, and its
/// status as a person should read it. What the run page shows and what its live updates send.
struct RunProgress: Equatable {
    var status: String
    var step: Int
    var totalSteps: Int?
    var secondsLeft: Double?
    /// The newest metric row, so that a live page knows when there is something new to draw.
    var lastMetricRow: Int64

    static let query = """
        SELECT r.status, r.host, r.pid, r.started_at,
               (SELECT MAX(step) FROM metrics WHERE run_id = r.id AND split = 'train') AS step,
               (SELECT MAX(rowid) FROM metrics WHERE run_id = r.id) AS last_row,
               (SELECT value FROM params WHERE run_id = r.id AND key = 'total_steps') AS total_steps,
               (SELECT time FROM resumes WHERE run_id = r.id ORDER BY rowid DESC LIMIT 1) AS resumed_at,
               (SELECT from_step FROM resumes WHERE run_id = r.id ORDER BY rowid DESC LIMIT 1) AS resumed_from
          FROM runs r WHERE r.id = ?
        """

    init?(run: Int64, in database: ResultsDatabase, now: Date = Date()) throws {
        guard let row = try database.database.query(Self.query, [.integer(run)]).first else { return nil }
        status = RunsPage.status(row)
        step = Int(row["step"]?.double ?? 0)
        totalSteps = row["total_steps"]?.double.map { Int($0) }
        lastMetricRow = Int64(row["last_row"]?.double ?? 0)
        // The pace of this process: since the run started, or since its latest resumption and from that step.
        let resumedAt = row.cell("resumed_at")
        let since = ResultsDatabase.date(resumedAt.isEmpty ? row.cell("started_at") : resumedAt)
        let fromStep = Int(row["resumed_from"]?.double ?? 0)
        if status == "running", let totalSteps, let since, step > fromStep {
            secondsLeft = now.timeIntervalSince(since) / Double(step - fromStep) * Double(totalSteps - step)
        }
    }

    /// One line: "running: step 120 of 400, about 2 min left".
    var line: String {
        var text = "\(status): step \(step)" + (totalSteps.map { " of \($0)" } ?? "")
        if let secondsLeft {
            text += secondsLeft < 90 ? String(format: ", about %.0f s left", secondsLeft) : String(format: ", about %.0f min left", secondsLeft / 60)
        }
        return text
    }

    /// The progress as a server-sent event's JSON.
    var json: String {
        let left = secondsLeft.map { String(format: "%.1f", $0) } ?? "null"
        let total = totalSteps.map(String.init) ?? "null"
        let fields = "\"status\":\"\(status)\",\"step\":\(step),\"total_steps\":\(total),\"seconds_left\":\(left)"
        return "{\(fields),\"metric_rows\":\(lastMetricRow),\"line\":\"\(line)\"}"
    }
}

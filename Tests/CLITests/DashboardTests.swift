import BertKit
import Foundation
import Testing

/// `finetune dashboard` in a real browser (headless Chromium through WebDriver) over a results.db made by a real
/// sweep (STS-B regression on the tiny model: two learning rates, three seeds), a NER run, a run recorded through the library under a task named like markup, and a run training while the pages
/// are open. Screenshots go to .build/dashboard-screenshots/ for a person to look at.
@Suite(.serialized) struct DashboardTests {
    static let screenshots = CommandLineTests.root + "/.build/dashboard-screenshots"

    /// Starts `finetune dashboard` on a free port; returns it, the port and its standard error.
    static func start(db: String, extra: [String] = []) throws -> (Process, Int, Pipe) {
        let (process, port, _, err) = try ServeTests.startListening(["dashboard", "--db", db, "--port", "0"] + extra,
                                                                   announcement: "dashboard of ")
        return (process, port, err)
    }

    @Test func everyPageInABrowserOverARealSweepAndARunningRun() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let sweep = try cli.finetune([
            "sweep", "--task", CommandLineTests.fixtures + "/tasks/stsb-slice.json", "--model", CommandLineTests.fixtures + "/tiny-bert",
            "--db", cli.db, "--output-dir", cli.directory + "/runs", "--grid", "learning_rate=1e-3,1e-4", "--seeds", "1,2,3", "--jobs", "1",
            "--max-steps", "12", "--eval-steps", "4", "--batch-size", "4", "--max-length", "40"])
        try #require(sweep.status == 0, "\(sweep.output)\(sweep.error)")
        let ner = try cli.finetune(["train"] + cli.trainArguments(task: "ner-tiny", steps: 4))
        try #require(ner.status == 0, "\(ner.output)\(ner.error)")

        // A program that records runs through BertKit may name a task anything.
        let database = try ResultsDatabase(path: cli.db)
        let markup = "<script>alert(1)</script>"
        let recorded = try database.startRun(task: markup, plugin: "sequence-classification", model: "<b>model</b>", experiment: nil,
                                             mainMetric: "f1", seed: 0, gitCommit: nil, outputDirectory: nil, parameters: [])
        try database.logMetrics(recorded, split: "train", step: 1, epoch: nil, ["loss": 0.5])
        try database.finishRun(recorded, status: .completed)

        let (training, _, _) = try cli.launchTraining(["train"] + cli.trainArguments(steps: 1_000_000, extra: ["--eval-steps", "5"]))
        defer { if training.isRunning { kill(training.processIdentifier, SIGKILL) } }
        let live = try #require(try database.database.query("SELECT id FROM runs WHERE status = 'running'").first?.integer("id"))

        let (dashboard, port, _) = try Self.start(db: cli.db)
        defer { dashboard.terminate(); dashboard.waitUntilExit() }
        let site = "http://127.0.0.1:\(port)"
        let browser = try Browser()
        func number(_ script: String) throws -> Double { (try browser.run(script) as? NSNumber)?.doubleValue ?? -1 }
        func text(_ script: String) throws -> String { try browser.run(script) as? String ?? "" }

        // Runs: every run, the markup shown as text (the page's only script is the dashboard's own), the SQL.
        try browser.open(site + "/")
        #expect(try number("return document.querySelectorAll('#runs tbody tr').length") == 9)
        #expect(try browser.run("return [...document.querySelectorAll('#runs td')].some(td => td.textContent === '\(markup)')") as? Bool == true)
        #expect(try number("return document.scripts.length") == 1)
        #expect(try text("return document.querySelector('details.sql pre').textContent").contains("FROM runs r JOIN run_summary s"))
        try browser.screenshot(to: Self.screenshots + "/runs.png")
        try browser.open(site + "/?sweep=1&sort=learning_rate&order=asc")
        #expect(try number("return document.querySelectorAll('#runs tbody tr').length") == 6)
        #expect(try text("return document.querySelector('#runs tbody tr').textContent").contains("0.0001"))
        try browser.open(site + "/?status=running")
        #expect(try number("return document.querySelectorAll('#runs tbody tr').length") == 1)
        // A dev metric picked as a column, the table sorted by it, best first.
        try browser.open(site + "/?sweep=1&metric=spearman&sort=metric")
        let column = try number("return [...document.querySelectorAll('#runs th')].findIndex(th => th.textContent.startsWith('best dev spearman'))")
        #expect(column > 0)
        let values = try browser.run("return [...document.querySelectorAll('#runs tbody tr')].map(tr => Number(tr.children[\(Int(column))].textContent))") as? [Double] ?? []
        #expect(values.count == 6 && values == values.sorted(by: >), "\(values)")

        // A finished run of the sweep: curves, its record, the largest errors of its best evaluation.
        try browser.open(site + "/runs/1")
        #expect(try number("return document.querySelectorAll('#curves path.line').length") == 4, "loss, learning rate, pearson, spearman")
        #expect(try number("return document.querySelectorAll('#worst tbody tr').length") == 10, "every dev example, largest error first")
        #expect(try text("return document.body.textContent").contains("best-model"))
        try browser.screenshot(to: Self.screenshots + "/run.png")

        // A token-classification run: each entity type's precision, recall and F1 from its stored predictions.
        try browser.open(site + "/runs/7")
        let types = try browser.run("return [...document.querySelectorAll('#entity-types tbody tr')].map(tr => tr.firstElementChild.textContent)") as? [String]
        #expect(types?.last == "overall" && (types?.count ?? 0) >= 2, "\(types ?? [])")

        try browser.open(site + "/runs/1")
        // Zoom: a drag across the training-loss panel, from 25 % to 75 % of its width.
        _ = try browser.run("""
            const svg = document.querySelector('#curves svg'), panel = svg.querySelector('g.panel'), box = svg.getBoundingClientRect();
            const at = (f) => box.left + (Number(panel.dataset.left) + f * (Number(panel.dataset.right) - Number(panel.dataset.left))) * box.width / svg.viewBox.baseVal.width;
            panel.dispatchEvent(new MouseEvent('mousedown', {bubbles: true, clientX: at(0.25), clientY: box.top + 100}));
            panel.dispatchEvent(new MouseEvent('mouseup', {bubbles: true, clientX: at(0.75), clientY: box.top + 100}));
            """)
        #expect(try browser.wait(seconds: 10, until: "return location.search.includes('from=') && document.readyState === 'complete'"))
        #expect(try number("return Number(document.querySelector('#curves g.panel').dataset.xMin)") >= 3)
        #expect(try number("return Number(document.querySelector('#curves g.panel').dataset.xMax)") <= 10)

        // Two runs of the sweep compared: the learning rate marked as differing, the paired bootstrap's line.
        try browser.open(site + "/compare?run=1&run=4")
        #expect(try text("return document.querySelector('#parameters tr.differs').textContent").contains("learning_rate"))
        let significance = try text("return document.querySelector('#significance tbody tr').textContent")
        #expect(significance.contains("run 4 − run 1") && significance.contains("pearson"), "\(significance)")
        let p = try number("return Number(document.querySelectorAll('#significance tbody td')[5].textContent)")
        #expect(p >= 0 && p <= 1, "\(significance)")
        #expect(try number("return document.querySelectorAll('#curves path.line').length") == 8)
        try browser.screenshot(to: Self.screenshots + "/compare.png")

        // The sweep: two configurations over three seeds, bands of ± sd, Welch's test against the best.
        try browser.open(site + "/sweeps/1")
        #expect(try number("return document.querySelectorAll('#configurations tbody tr').length") == 2)
        let against = try text("return document.querySelectorAll('#configurations tbody tr')[1].lastElementChild.textContent")
        #expect(against.contains("p = "), "\(against)")
        #expect(try text("return document.querySelectorAll('#configurations tbody tr')[0].lastElementChild.textContent") == "best mean")
        #expect(try number("return document.querySelectorAll('#curves path.band').length") == 4)
        try browser.screenshot(to: Self.screenshots + "/sweep.png")

        // The running run: its progress and curves update without a reload; killed, it shows as interrupted.
        try browser.open(site + "/runs/\(live)")
        #expect(try text("return document.getElementById('progress').dataset.live") == "true")
        #expect(try number("return [...document.querySelectorAll('#confusion tbody td:not(:first-child)')].reduce((s, td) => s + Number(td.textContent), 0)") == 32,
                "a classification run's confusion matrix holds its 32 dev examples")
        let before = try text("return document.getElementById('progress').textContent")
        #expect(try browser.wait(seconds: 30, until: "return Number(document.body.dataset.updates || 0) >= 3 && Number(document.body.dataset.redraws || 0) >= 1"))
        let after = try text("return document.getElementById('progress').textContent")
        #expect(after != before && after.hasPrefix("running: step") && after.contains("of 1000000"), "\(before) -> \(after)")
        try browser.screenshot(to: Self.screenshots + "/live.png")
        kill(training.processIdentifier, SIGKILL)
        training.waitUntilExit()
        #expect(try browser.wait(seconds: 15, until: "return document.getElementById('progress').textContent.startsWith('interrupted')"))
        #expect(try database.database.query("SELECT status FROM runs WHERE id = ?", [.integer(live)]).first?["status"] == .text("running"),
                "the dashboard only reads: the next writer records the interruption")
    }

    @Test func assetsOnlyFromTheBinaryReadOnlySQLAndAWarningOffThisMachine() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let database = try ResultsDatabase(path: cli.db)
        let run = try database.startRun(task: "t", plugin: "sequence-classification", model: "m", experiment: nil, mainMetric: "f1", seed: 0,
                                        gitCommit: nil, outputDirectory: nil, parameters: [("learning_rate", "0.001")])
        try database.finishRun(run, status: .completed)

        let (dashboard, port, _) = try Self.start(db: cli.db)
        defer { dashboard.terminate(); dashboard.waitUntilExit() }
        #expect(try ServeTests.request(port: port, "GET", "/assets/dashboard.js").status == 200)
        for path in ["/assets/../Package.swift", "/assets/%2e%2e%2fPackage.swift", "/assets/..%2F..%2FPackage.swift", "/assets/", "/runs/99",
                     "/sweeps/1"] {
            #expect(try ServeTests.request(port: port, "GET", path).status == 404, "\(path)")
        }
        // The sort column is checked against the columns there are; anything else sorts by id.
        let injected = try ServeTests.request(port: port, "GET", "/?sort=id%3BDROP%20TABLE%20runs")
        #expect(injected.status == 200 && injected.body.contains("ORDER BY &quot;id&quot; DESC"), "the SQL shown sorts by id")
        #expect(try database.database.query("SELECT COUNT(*) AS n FROM runs").first?.integer("n") == 1)
        // The connection refuses writes.
        let reader = try ResultsDatabase(readingOnly: cli.db)
        #expect(throws: SQLiteError.self) { try reader.database.execute("DELETE FROM runs") }

        let (open, _, err) = try Self.start(db: cli.db, extra: ["--host", "0.0.0.0"])
        open.terminate()
        open.waitUntilExit()
        let warning = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(warning.contains("warning: listening on 0.0.0.0, not only this machine"), "\(warning)")
    }
}

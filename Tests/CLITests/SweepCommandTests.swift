import Foundation
import Testing
import BertKit

/// `finetune sweep` as a user runs it: a sweep killed with SIGKILL (the sweep and its running run) continues with
/// `--resume`, keeping the finished runs, resuming the interrupted one from its checkpoint and starting the rest.
@Suite(.serialized) struct SweepCommandTests {
    @Test func aKilledSweepResumesKeepingFinishedRunsAndResumingTheInterruptedOne() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let runs = cli.directory + "/runs"
        let (process, _, _) = try cli.launch([
            "sweep", "--task", CommandLineTests.fixtures + "/tasks/mrpc-slice.json", "--model", CommandLineTests.fixtures + "/tiny-bert",
            "--db", cli.db, "--output-dir", runs, "--grid", "learning_rate=1e-3,5e-4", "--seeds", "1,2", "--jobs", "1",
            "--max-steps", "80", "--eval-steps", "20", "--batch-size", "4", "--max-length", "40", "--save-strategy", "steps", "--save-steps", "2"])

        // Once the second run has a checkpoint, kill the sweep and that run: nothing gets to clean up.
        var victim: Int32?
        let deadline = Date().addingTimeInterval(120)
        while victim == nil && Date() < deadline && process.isRunning {
            let rows = (try? SQLiteDatabase(path: cli.db).query("SELECT pid FROM runs WHERE id = 2 AND checkpoint IS NOT NULL AND status = 'running'")) ?? []
            if let pid = rows.first?["pid"]?.double { victim = Int32(pid) } else { usleep(5_000) }
        }
        let sweepProcess = process.processIdentifier
        kill(sweepProcess, SIGKILL)
        if let victim { kill(victim, SIGKILL) }
        process.waitUntilExit()
        while let victim, kill(victim, 0) == 0 { usleep(10_000) }
        try #require(victim != nil, "the second run never saved a checkpoint")
        let before = try SQLiteDatabase(path: cli.db).query("SELECT id, status, ended_at FROM runs ORDER BY id")
        #expect(before.count == 2 && before[0]["status"] == .text("completed"))

        let resumed = try cli.finetune(["sweep", "--resume", "1", "--db", cli.db, "--output-dir", runs])
        #expect(resumed.status == 0, "\(resumed.output)\(resumed.error)")
        #expect(resumed.output.contains("1 done, 3 to go") && resumed.output.contains("resuming run 2"), "\(resumed.output)")
        let database = try SQLiteDatabase(path: cli.db)
        let after = try database.query("SELECT id, status, ended_at FROM runs ORDER BY id")
        #expect(after.count == 4 && after.allSatisfy { $0["status"] == .text("completed") }, "\(after)")
        #expect(after[0]["ended_at"] == before[0]["ended_at"], "the finished run was kept, not run again")
        #expect(try database.query("SELECT run_id FROM resumes").map { $0["run_id"] } == [.integer(2)])
        let linked = try database.query("SELECT configuration, seed FROM sweep_runs WHERE sweep_id = 1 ORDER BY run_id")
        #expect(linked.map { "\($0["configuration"]!) \($0["seed"]!)" } == [
            "learning_rate=0.001 1", "learning_rate=0.001 2", "learning_rate=0.0005 1", "learning_rate=0.0005 2"])
        #expect(try database.query("SELECT status FROM sweeps WHERE id = 1").first?["status"] == .text("completed"))
        #expect(try database.query("SELECT runs FROM sweep_summary WHERE sweep_id = 1").map { $0["runs"] } == [.integer(2), .integer(2)])
        #expect(resumed.output.contains("SELECT * FROM sweep_summary"))

        let plot = cli.directory + "/curves.svg"
        #expect(try cli.finetune(["sweeps", "plot", "1", "--db", cli.db, "--output", plot]).status == 0)
        #expect(try String(contentsOfFile: plot, encoding: .utf8).components(separatedBy: "class=\"line\"").count - 1 == 4,
                "two configurations in two panels")
        let compare = try cli.finetune(["runs", "compare", "1", "3", "--db", cli.db])
        #expect(compare.output.contains("paired bootstrap over 32 dev examples"), "\(compare.output)")
    }
}

import Foundation
import Testing
import BertKit

/// Runs that survive: a run killed with SIGKILL at a random step and resumed from its latest checkpoint ends
/// with the same bytes as the run that was never stopped (best model, final parameters, AdamW state) and the
/// same metrics in results.db, logged once each; for every plugin, and in bf16 too.
@Suite(.serialized) struct ResumeTests {
    struct Case: CustomStringConvertible {
        let task: String
        var extra: [String] = []
        var description: String { ([task] + extra).joined(separator: " ") }
    }

    static let cases = [
        Case(task: "mrpc-slice"), Case(task: "mrpc-slice", extra: ["--precision", "bf16"]), Case(task: "ner-tiny"),
        Case(task: "qa-tiny", extra: ["--batch-size", "2"]), Case(task: "pretrain-tiny"),
    ]
    static let steps = 30

    func arguments(_ c: Case, in directory: String) -> [String] {
        ["--task", CommandLineTests.fixtures + "/tasks/\(c.task).json", "--model", CommandLineTests.fixtures + "/tiny-bert",
         "--db", directory + "/results.db", "--output-dir", directory + "/runs", "--max-steps", "\(Self.steps)",
         "--eval-steps", "10", "--batch-size", "4", "--max-length", "40", "--learning-rate", "1e-3",
         "--save-strategy", "steps", "--save-steps", "3", "--save-total-limit", "0", "--keep-checkpoints"] + c.extra
    }

    /// The files a run leaves that must not depend on an interruption.
    func outputs(_ directory: String, _ c: Case) throws -> [String: Data] {
        let run = directory + "/runs/1-\(c.task)"
        var files: [String: Data] = [:]
        for name in ["best/model.safetensors", "checkpoints/checkpoint-\(Self.steps)/model.safetensors",
                     "checkpoints/checkpoint-\(Self.steps)/optimizer.safetensors"] {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: run + "/" + name))
        }
        return files
    }

    func metrics(_ directory: String) throws -> [String] {
        try SQLiteDatabase(path: directory + "/results.db")
            .query("SELECT split, name, step, value FROM metrics ORDER BY split, name, step")
            .map { "\($0["split"]!) \($0["name"]!) \($0["step"]!) \($0["value"]!)" }
    }

    @Test(arguments: cases) func aRunKilledAtARandomStepResumesBitIdentically(_ c: Case) throws {
        let cli = CommandLineTests()
        let straight = cli.directory + "/straight", killed = cli.directory + "/killed"
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let whole = try cli.finetune(arguments(c, in: straight))
        #expect(whole.status == 0, "\(whole.error)")

        // Kill with SIGKILL once results.db shows a random step logged: nothing gets to clean up.
        let target = Int.random(in: 4...(Self.steps - 4))
        let (process, _, _) = try cli.launch(arguments(c, in: killed))
        var seen = 0
        while process.isRunning && seen < target {
            seen = (try? SQLiteDatabase(path: killed + "/results.db")
                .query("SELECT MAX(step) AS s FROM metrics WHERE split = 'train'").first?["s"]?.double).flatMap { $0.map(Int.init) } ?? 0
            usleep(2_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal, "killed at step \(seen) of \(Self.steps), aiming at \(target)")

        let resumed = try cli.finetune(["resume", "1", "--db", killed + "/results.db"])
        #expect(resumed.status == 0, "\(resumed.error)")
        #expect(resumed.output.contains("resumed from"), "\(resumed.output)")
        #expect(try outputs(killed, c) == outputs(straight, c), "killed at step \(seen): the exported and final weights differ")
        #expect(try metrics(killed) == metrics(straight), "killed at step \(seen): the metrics in results.db differ")

        let database = try SQLiteDatabase(path: killed + "/results.db")
        #expect(try database.query("PRAGMA integrity_check").first?["integrity_check"] == .text("ok"))
        #expect(try database.query("SELECT status FROM runs").map { $0["status"] } == [.text("completed")], "one row for the run")
        #expect(try database.query("SELECT COUNT(*) AS n FROM resumes").first?["n"] == .integer(1))
    }

    /// A checkpoint is a folder renamed into place once complete, so a process killed while writing one leaves
    /// a half-written staging folder (`.checkpoint-N.partial-PID`) beside the complete ones. That is the state
    /// made here; resume takes the latest complete checkpoint and removes the debris.
    @Test func aCheckpointHalfWrittenWhenKilledIsIgnoredAndCleanedUp() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let c = Case(task: "mrpc-slice"), straight = cli.directory + "/straight", killed = cli.directory + "/killed"
        #expect(try cli.finetune(arguments(c, in: straight)).status == 0)
        let (process, _, _) = try cli.launch(arguments(c, in: killed))
        process.waitUntilExit()
        // As a kill during the write of checkpoint 12 leaves it: checkpoints after 9 not there yet, a partial one.
        let checkpoints = killed + "/runs/1-mrpc-slice/checkpoints"
        for name in try FileManager.default.contentsOfDirectory(atPath: checkpoints) where Int(name.dropFirst(11))! > 9 {
            try FileManager.default.removeItem(atPath: checkpoints + "/" + name)
        }
        let partial = checkpoints + "/.checkpoint-12.partial-999999"
        try FileManager.default.createDirectory(atPath: partial, withIntermediateDirectories: true)
        try Data(repeating: 7, count: 100).write(to: URL(fileURLWithPath: partial + "/model.safetensors"))
        let partialBest = killed + "/runs/1-mrpc-slice/.best.partial-999999"  // best/ being replaced at the kill
        try FileManager.default.createDirectory(atPath: partialBest, withIntermediateDirectories: true)
        let database = try SQLiteDatabase(path: killed + "/results.db")
        try database.execute("UPDATE runs SET status = 'interrupted'")

        let resumed = try cli.finetune(["resume", "1", "--db", killed + "/results.db"])
        #expect(resumed.status == 0, "\(resumed.error)")
        #expect(resumed.output.contains("checkpoint-9 (step 9)"), "\(resumed.output)")
        #expect(!FileManager.default.fileExists(atPath: partial), "the half-written checkpoint is removed")
        #expect(!FileManager.default.fileExists(atPath: partialBest), "so is a half-written best model")
        #expect(try outputs(killed, c) == outputs(straight, c))
    }

    /// A newest checkpoint damaged after it was written (a flipped low bit, a flipped exponent bit, a truncated
    /// file) is found by its checksum and skipped, with a line naming it and why; the run resumes from the newest
    /// intact one and ends as the run that was never stopped.
    @Test(arguments: ["low bit", "exponent bit", "truncated"]) func aDamagedCheckpointIsSkippedForTheNewestIntactOne(_ damage: String) throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let c = Case(task: "mrpc-slice"), straight = cli.directory + "/straight", stopped = cli.directory + "/stopped"
        #expect(try cli.finetune(arguments(c, in: straight)).status == 0)
        #expect(try cli.finetune(arguments(c, in: stopped)).status == 0)
        // As the run stands when stopped after step 12, then its newest checkpoint damaged on disk.
        let checkpoints = stopped + "/runs/1-mrpc-slice/checkpoints"
        for name in try FileManager.default.contentsOfDirectory(atPath: checkpoints) where Int(name.dropFirst(11))! > 12 {
            try FileManager.default.removeItem(atPath: checkpoints + "/" + name)
        }
        let file = checkpoints + "/checkpoint-12/model.safetensors"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        switch damage {
        case "low bit": bytes[bytes.count - 4001] ^= 0x01
        case "exponent bit": bytes[bytes.count - 4001 + 3 - (bytes.count - 4001) % 4] ^= 0x40
        default: bytes.removeLast(100)
        }
        try bytes.write(to: URL(fileURLWithPath: file))
        try SQLiteDatabase(path: stopped + "/results.db").execute("UPDATE runs SET status = 'interrupted'")

        let resumed = try cli.finetune(["resume", "1", "--db", stopped + "/results.db"])
        #expect(resumed.status == 0, "\(resumed.error)")
        let said = damage == "truncated" ? "has \(bytes.count) bytes, \(bytes.count + 100) were saved" : "does not hold the bytes that were saved"
        #expect(resumed.output.contains("skipped a damaged checkpoint: \(file): \(said)"), "\(resumed.output)")
        #expect(resumed.output.contains("checkpoint-9 (step 9)"), "\(resumed.output)")
        #expect(try outputs(stopped, c) == outputs(straight, c))
    }

    /// One run, one writer: of two `finetune resume` started at the same moment, one resumes and the other
    /// refuses, naming the process that has the run; nothing is logged twice.
    @Test func twoResumesOfOneRunAtOnceLeaveOneWriter() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let c = Case(task: "mrpc-slice"), directory = cli.directory + "/run"
        #expect(try cli.finetune(arguments(c, in: directory)).status == 0)
        let checkpoints = directory + "/runs/1-mrpc-slice/checkpoints"
        for name in try FileManager.default.contentsOfDirectory(atPath: checkpoints) where Int(name.dropFirst(11))! > 12 {
            try FileManager.default.removeItem(atPath: checkpoints + "/" + name)
        }
        try SQLiteDatabase(path: directory + "/results.db").execute("UPDATE runs SET status = 'interrupted'")
        let both = try (0..<2).map { _ in try cli.launch(["resume", "1", "--db", directory + "/results.db"]) }
        let results: [(status: Int32, output: String)] = both.map { process, out, err in
            let (output, error) = (out.fileHandleForReading.readDataToEndOfFile(), err.fileHandleForReading.readDataToEndOfFile())
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: output, as: UTF8.self) + String(decoding: error, as: UTF8.self))
        }
        #expect(results.filter { $0.status == 0 }.count == 1, "\(results)")
        let refusal: String = results.first(where: { $0.status != 0 }).map { $0.output } ?? ""
        #expect(refusal.contains("is running already (process ") || refusal.contains("is still running") || refusal.contains("is completed"),
                "\(refusal)")
        let database = try SQLiteDatabase(path: directory + "/results.db")
        #expect(try database.query("SELECT COUNT(*) AS n FROM resumes").first?["n"] == .integer(1))
        #expect(try database.query("SELECT COUNT(*) AS n FROM metrics WHERE split = 'train' AND name = 'loss'").first?["n"]
                == .integer(Int64(Self.steps)), "each step logged once")
    }

    /// Every write of a run fails once, in turn (`BERTKIT_FAIL_WRITE=N`: the N-th write, sync, rename or record):
    /// each time the run ends with an error that says what failed, results.db stays intact with the run marked,
    /// no partial file or folder is left, and `finetune resume` finishes the run as the run that never failed,
    /// byte for byte, from its latest checkpoint (a run that failed before its first checkpoint has none, and says
    /// so). Until N passes the last write, when the run completes.
    @Test func everyWriteOfARunFailingInTurnLosesNothing() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        func arguments(in directory: String) -> [String] {
            ["--task", CommandLineTests.fixtures + "/tasks/mrpc-slice.json", "--model", CommandLineTests.fixtures + "/tiny-bert",
             "--db", directory + "/results.db", "--output-dir", directory + "/runs", "--max-steps", "4", "--eval-steps", "2",
             "--batch-size", "8", "--max-length", "40", "--learning-rate", "1e-3", "--save-strategy", "steps", "--save-steps", "2"]
        }
        let straight = cli.directory + "/straight"
        #expect(try cli.finetune(arguments(in: straight)).status == 0)
        let expected = try Data(contentsOf: URL(fileURLWithPath: straight + "/runs/1-mrpc-slice/best/model.safetensors"))
        var injected = 0, resumed = 0, beforeFirstCheckpoint = 0
        for n in 1...200 {
            let directory = cli.directory + "/fault-\(n)"
            let failed = try cli.finetune(arguments(in: directory), environment: ["BERTKIT_FAIL_WRITE": String(n)])
            if failed.status == 0 { break }
            injected = n
            #expect(failed.status == 1 && failed.error.contains("fault \(n) injected by BERTKIT_FAIL_WRITE"), "fault \(n): \(failed.error)")
            let database = try SQLiteDatabase(path: directory + "/results.db")
            #expect(try database.query("PRAGMA integrity_check").first?["integrity_check"] == .text("ok"), "fault \(n)")
            #expect(try database.query("SELECT status FROM runs").map { $0["status"] } == [.text("failed")], "fault \(n)")
            let debris = (FileManager.default.subpaths(atPath: directory + "/runs") ?? []).filter { $0.contains(".partial-") || $0.hasSuffix(".tmp") }
            #expect(debris.isEmpty, "fault \(n) left \(debris)")
            let resume = try cli.finetune(["resume", "1", "--db", directory + "/results.db"])
            if resume.error.contains("has no intact training checkpoint") {
                // Only a run that failed before its first checkpoint was saved may have none.
                let checkpoints = directory + "/runs/1-mrpc-slice/checkpoints"
                #expect((try? FileManager.default.contentsOfDirectory(atPath: checkpoints))?.isEmpty ?? true, "fault \(n)")
                beforeFirstCheckpoint += 1
                continue
            }
            #expect(resume.status == 0, "fault \(n): \(resume.error)")
            let best = try Data(contentsOf: URL(fileURLWithPath: directory + "/runs/1-mrpc-slice/best/model.safetensors"))
            #expect(best == expected, "fault \(n): the resumed run's model differs")
            resumed += 1
            try? FileManager.default.removeItem(atPath: directory)
        }
        #expect(injected >= 20 && resumed > 0 && resumed + beforeFirstCheckpoint == injected,
                "\(injected) faults injected: \(resumed) resumed, \(beforeFirstCheckpoint) before the first checkpoint")
    }

    @Test func aCompletedRunKeepsItsBestModelOnly() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let result = try cli.finetune(cli.trainArguments(steps: 6) + ["--save-strategy", "steps", "--save-steps", "3"])
        #expect(result.status == 0, "\(result.error)")
        let folder = cli.directory + "/runs/1-mrpc-slice"
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["best"], "no checkpoints are left")
        #expect(try cli.runs()[0]["checkpoint"] == .null, "results.db no longer names a checkpoint")
    }

    @Test func theOldestCheckpointsGoAndTheBestStays() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        // Checkpoints every 5 steps, so that every evaluation (every 10) has one.
        let result = try cli.finetune(arguments(Case(task: "mrpc-slice"), in: cli.directory) + ["--save-steps", "5", "--save-total-limit", "2"])
        #expect(result.status == 0, "\(result.error)")
        let best = try SQLiteDatabase(path: cli.db).query(
            "SELECT step FROM metrics WHERE split = 'dev' AND name = 'f1' ORDER BY value DESC, step ASC LIMIT 1").first?["step"]
        let kept = try FileManager.default.contentsOfDirectory(atPath: cli.directory + "/runs/1-mrpc-slice/checkpoints").sorted()
        let expected = Set(["checkpoint-25", "checkpoint-30", "checkpoint-\(best!.description)"])
        #expect(Set(kept) == expected, "the two newest and the best step's: \(kept)")
    }

    @Test func resumingWithOtherHyperparametersIsRefusedByName() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let c = Case(task: "mrpc-slice"), directory = cli.directory
        let (process, out, _) = try cli.launch(arguments(c, in: directory) + ["--max-steps", "100000"])
        var seen = ""
        while !seen.contains("optimizer steps") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        usleep(200_000)
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        let interrupted = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(interrupted.contains("`finetune resume 1` goes on from"), "Ctrl-C saves a checkpoint: \(interrupted)")

        let refused = try cli.finetune(["resume", "1", "--db", directory + "/results.db", "--learning-rate", "5e-4", "--seed", "3"])
        #expect(refused.status == 1)
        #expect(refused.error.contains("learning_rate 0.001 -> 0.0005") && refused.error.contains("seed 42 -> 3"), "\(refused.error)")
        let run = try SQLiteDatabase(path: directory + "/results.db").query("SELECT status FROM runs").first
        #expect(run?["status"] == .text("interrupted"), "a refused resume leaves the run as it was")
    }
}

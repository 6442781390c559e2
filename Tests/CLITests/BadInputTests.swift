import Foundation
import Testing
import BertKit

/// The corpus of bad inputs (Tests/CLITests/BadInputs, made by scripts/fixtures/make_bad_inputs.py): broken model folders
/// and data files. Each must end the run with exit status 1 and an error naming the file (and the line or the
/// tensor), mark the run `failed` in results.db, and leave no partial artifact in the run's folder.
@Suite struct BadInputTests {
    struct Case: Decodable, CustomStringConvertible {
        let name, note, task, model, error: String
        var arguments: [String]?
        var description: String { name }
    }

    static let corpus = CommandLineTests.root + "/Tests/CLITests/BadInputs"
    static let cases: [Case] = {
        let data = FileManager.default.contents(atPath: corpus + "/cases.json")!
        return try! JSONDecoder().decode([Case].self, from: data)
    }()

    @Test(arguments: cases) func aBadInputFailsTheRunClearlyAndLeavesNothingBehind(_ c: Case) throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let model = c.model == "tiny-bert" ? CommandLineTests.fixtures + "/tiny-bert" : Self.corpus + "/" + c.model
        let extra = (c.arguments ?? []).map { $0.hasPrefix("BadInputs/") ? CommandLineTests.root + "/Tests/CLITests/" + $0 : $0 }
        let result = try cli.finetune(["--task", CommandLineTests.fixtures + "/tasks/\(c.task).json", "--model", model, "--db", cli.db,
                                       "--output-dir", cli.directory + "/runs", "--max-steps", "2", "--batch-size", "4",
                                       "--max-length", "40"] + extra)
        #expect(result.status == 1, "\(c.note): \(result.output)")
        #expect(result.error.contains(c.error), "\(c.note): expected '\(c.error)' in: \(result.error)")
        let file = c.arguments?.last ?? c.model
        let named = result.error.contains(Self.corpus + "/" + c.model) || result.error.contains((file as NSString).lastPathComponent)
        #expect(named, "the error names the file: \(result.error)")
        #expect(try cli.runs().map { $0["status"] } == [.text("failed")], "\(c.note)")
        let left = (FileManager.default.subpaths(atPath: cli.directory + "/runs") ?? []).filter { !$0.hasSuffix("-\(c.task)") }
        #expect(left.isEmpty, "nothing is left in the run's folder: \(left)")
    }

    @Test func aCheckpointOfAnotherRunIsRefused() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let arguments = cli.trainArguments(steps: 6) + ["--save-strategy", "steps", "--save-steps", "3", "--keep-checkpoints"]
        #expect(try cli.finetune(arguments).status == 0)
        #expect(try cli.finetune(arguments).status == 0)
        let first = cli.directory + "/runs/1-mrpc-slice/checkpoints", second = cli.directory + "/runs/2-mrpc-slice/checkpoints"
        try FileManager.default.removeItem(atPath: first)
        try FileManager.default.copyItem(atPath: second, toPath: first)
        try SQLiteDatabase(path: cli.db).execute("UPDATE runs SET status = 'interrupted' WHERE id = 1")
        let refused = try cli.finetune(["resume", "1", "--db", cli.db])
        #expect(refused.status == 1 && refused.error.contains("checkpoint-6: belongs to run 2, not run 1"), "\(refused.error)")
    }

    @Test func exportNeverReplacesAFileOrAFolderOfOtherThings() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        #expect(try cli.finetune(cli.trainArguments()).status == 0)
        let file = cli.directory + "/notes.txt"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: file))
        let onFile = try cli.finetune(["export", "1", "--to", file, "--db", cli.db])
        #expect(onFile.status != 0 && onFile.error.contains("notes.txt: is a file; not replaced"), "\(onFile.error)")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "keep me")
        let folder = cli.directory + "/documents"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: URL(fileURLWithPath: folder + "/thesis.tex"))
        let onFolder = try cli.finetune(["export", "1", "--to", folder, "--db", cli.db])
        #expect(onFolder.status != 0 && onFolder.error.contains("is a folder of other files"), "\(onFolder.error)")
        #expect(FileManager.default.fileExists(atPath: folder + "/thesis.tex"))
        let link = cli.directory + "/dangling"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: cli.directory + "/gone")
        let onLink = try cli.finetune(["export", "1", "--to", link, "--db", cli.db])
        #expect(onLink.status != 0 && onLink.error.contains("dangling: is a link to \(cli.directory)/gone, which does not exist"),
                "\(onLink.error)")
        let unwritable = try cli.finetune(["export", "1", "--to", "/proc/bertkit-export", "--db", cli.db])
        #expect(unwritable.status != 0 && unwritable.error.contains("/proc/bertkit-export: cannot be written (")
                && !unwritable.error.contains("Domain="), "the system's reason, not Foundation's error code: \(unwritable.error)")
    }

    @Test func anUnwritableOutputFolderFailsBeforeTraining() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let blocker = cli.directory + "/occupied"
        try Data().write(to: URL(fileURLWithPath: blocker))  // a file where the output folder should go
        let result = try cli.finetune(cli.trainArguments().map { $0 == cli.directory + "/runs" ? blocker : $0 })
        #expect(result.status == 1 && result.error.contains("occupied/1-mrpc-slice: the run's output folder cannot be written"), "\(result.error)")
        #expect(!result.output.contains("optimizer steps"), "it fails before training starts")
        #expect(try cli.runs().first?["status"] == .text("failed"))
    }

    @Test func aDeadRunEndsWhenItWasLastSeen() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        #expect(try cli.finetune(cli.trainArguments()).status == 0)
        let database = try SQLiteDatabase(path: cli.db)
        // As a process killed long ago leaves its row: running, with a pid that no longer exists.
        try database.execute("UPDATE runs SET status = 'running', ended_at = NULL, pid = 999999, last_seen = '2026-01-02T03:04:05.000Z'")
        _ = try ResultsDatabase(path: cli.db)
        let row = try database.query("SELECT status, ended_at FROM runs").first
        #expect(row?["status"] == .text("interrupted") && row?["ended_at"] == .text("2026-01-02T03:04:05.000Z"))
    }
}

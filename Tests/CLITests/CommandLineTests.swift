import Foundation
import Testing
import BertKit

/// The `finetune` tool as a user runs it: a process, its exit status, its output and results.db.
@Suite(.serialized) struct CommandLineTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let fixtures = root + "/Tests/BertKitTests/Fixtures"
    /// Built beside the test runner, because this target depends on the executable.
    static let binary = Bundle.main.executableURL!.deletingLastPathComponent().appendingPathComponent("finetune").path

    struct Result { let status: Int32; let output: String; let error: String }

    let directory: String = {
        let path = NSTemporaryDirectory() + "bertkit-cli-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()
    var db: String { directory + "/results.db" }

    func launch(_ arguments: [String], environment: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.currentDirectoryURL = URL(fileURLWithPath: Self.root)
        let (out, err) = (Pipe(), Pipe())
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return (process, out, err)
    }

    /// Starts a training run and returns once it has begun its steps (its log says how many).
    func launchTraining(_ arguments: [String]) throws -> (Process, Pipe, Pipe) {
        let (process, out, err) = try launch(arguments)
        var seen = ""
        while !seen.contains("optimizer steps") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        return (process, out, err)
    }

    @discardableResult
    func finetune(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let (process, out, err) = try launch(arguments, environment: environment)
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
                      error: String(decoding: error, as: UTF8.self))
    }

    func trainArguments(task: String = "mrpc-slice", steps: Int = 4, extra: [String] = []) -> [String] {
        ["--task", Self.fixtures + "/tasks/\(task).json", "--model", Self.fixtures + "/tiny-bert", "--db", db,
         "--output-dir", directory + "/runs", "--max-steps", "\(steps)", "--eval-steps", "2", "--batch-size", "8",
         "--max-length", "40", "--learning-rate", "1e-3"] + extra
    }

    /// A long run of the default encoder on the MRPC slice, for tests that interrupt it.
    func defaultEncoderArguments(db: String, batchSize: Int, maxLength: Int, extra: [String] = []) -> [String] {
        ["--task", Self.fixtures + "/tasks/mrpc-slice.json", "--model", Self.root + "/models/all-MiniLM-L6-v2", "--db", db,
         "--output-dir", directory + "/runs", "--max-steps", "1000", "--batch-size", "\(batchSize)", "--max-length", "\(maxLength)"] + extra
    }

    func runs() throws -> [[String: SQLValue]] {
        try SQLiteDatabase(path: db).query("SELECT * FROM runs ORDER BY id")
    }

    @Test func preTrainingOnATextFileLogsItsSettingsAndExamples() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try finetune(trainArguments(task: "pretrain-tiny", extra: [
            "--text", Self.fixtures + "/tasks/data/pretrain-tiny.txt", "--next-sentence-prediction", "false",
            "--whole-word-masking", "true"]))
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("held-out pairs") && result.output.contains("mlm_accuracy"))
        let database = try SQLiteDatabase(path: db)
        let params = try database.query("SELECT key, value FROM params WHERE run_id = 1")
        let byName = Dictionary(uniqueKeysWithValues: params.map { ($0["key"]!.description, $0["value"]!.description) })
        #expect(byName["next_sentence_prediction"] == "false" && byName["whole_word_masking"] == "true", "\(byName)")
        #expect(byName["window_overlap"] == nil, "a span-QA setting is not logged for pre-training")
        let kinds = try database.query("SELECT kind FROM artifacts WHERE run_id = 1 ORDER BY kind").map { $0["kind"]!.description }
        #expect(kinds == ["best-model", "examples", "examples"])
        let metrics = try database.query("SELECT DISTINCT name FROM metrics WHERE run_id = 1 AND split = 'dev' ORDER BY name")
        #expect(metrics.map { $0["name"]!.description } == ["mlm_accuracy", "mlm_loss", "perplexity"])
    }

    @Test func aCorpusWithABadLineTrainsAndSaysWhereTheLineIs() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let corpus = directory + "/corpus.txt"
        var bytes = Array(try String(contentsOfFile: Self.fixtures + "/tasks/data/pretrain-tiny.txt", encoding: .utf8).utf8)
        bytes += [0xFF, 0xFE, 0x0A]  // the last line: not UTF-8
        try Data(bytes).write(to: URL(fileURLWithPath: corpus))
        let line = bytes.filter { $0 == 0x0A }.count
        let result = try finetune(trainArguments(task: "pretrain-tiny", steps: 2, extra: ["--text", corpus]))
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("warning: \(corpus):\(line): not valid UTF-8; line skipped"), "\(result.output)")
    }

    @Test func aRunIsRecordedListedComparedExportedAndPredicts() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try finetune(trainArguments())
        #expect(first.status == 0, "\(first.error)")
        #expect(first.output.contains("run 1 completed"))
        #expect(first.output.contains("next: ") && first.output.contains(" runs show 1") && first.output.contains(" export 1 --to exported/mrpc-slice"),
                "the end of a run says what to do next: \(first.output)")
        let second = try finetune(trainArguments(extra: ["--seed", "7", "--learning-rate", "5e-4", "--precision", "bf16"]))
        #expect(second.status == 0, "\(second.error)")

        let database = try SQLiteDatabase(path: db)
        let summary = try database.query("SELECT * FROM run_summary ORDER BY run_id")
        #expect(summary.map { $0["status"] } == [.text("completed"), .text("completed")])
        #expect(summary[0]["main_metric"] == .text("f1") && summary[0]["best_main"]?.double != nil)
        let params = try database.query("SELECT learning_rate, seed FROM run_params ORDER BY run_id")
        #expect(params.map { $0["learning_rate"] } == [.real(1e-3), .real(5e-4)])
        #expect(params.map { $0["seed"] } == [.integer(42), .integer(7)])
        #expect(try database.query("SELECT precision FROM run_params ORDER BY run_id").map { $0["precision"] }
                    == [.text("fp32"), .text("bf16")])
        let trainLoss = try database.query("SELECT COUNT(*) AS n FROM metrics WHERE run_id = 1 AND split = 'train' AND name = 'loss'")
        #expect(trainLoss[0]["n"] == .integer(4))
        let artifact = try database.query("SELECT kind, sha256, bytes FROM artifacts WHERE run_id = 1")
        #expect(artifact.first?["kind"] == .text("best-model") && (artifact.first?["sha256"]?.description.count ?? 0) == 64)
        let best = directory + "/runs/1-mrpc-slice/best"
        let folderBytes = try FileManager.default.contentsOfDirectory(atPath: best)
            .map { try FileManager.default.attributesOfItem(atPath: best + "/" + $0)[.size] as! Int }.reduce(0, +)
        #expect(artifact.first?["bytes"] == .integer(Int64(folderBytes)), "a folder's bytes are its files' sum")

        let list = try finetune(["runs", "--db", db])
        #expect(list.status == 0 && list.output.contains("mrpc-slice") && list.output.contains("completed"))
        #expect(list.output.contains("4 steps") && !list.output.contains("epochs"), "a max-steps run shows its steps: \(list.output)")
        let show = try finetune(["runs", "show", "1", "--db", db])
        #expect(show.output.contains("learning_rate") && show.output.contains("best-model"))
        let compare = try finetune(["runs", "compare", "1", "2", "--db", db])
        #expect(compare.output.contains("learning_rate") && compare.output.contains("dev f1 best"))
        let compared = compare.output.split(separator: "\n")
        #expect(compared.contains { $0.hasPrefix("*") && $0.contains("precision") }, "the setting that differs is marked: \(compare.output)")
        #expect(compared.contains { $0.hasPrefix(" ") && $0.contains("batch_size") }, "one that does not is not")

        let export = directory + "/exported"
        #expect(try finetune(["export", "1", "--to", export, "--db", db]).status == 0)
        let predictions = directory + "/predictions.tsv"
        let predict = try finetune(["predict", "--model", export, "--input", Self.fixtures + "/tasks/data/mrpc-dev-32.tsv",
                                    "--task", Self.fixtures + "/tasks/mrpc-slice.json", "--split", "dev", "--output", predictions,
                                    "--max-length", "40"])
        #expect(predict.status == 0, "\(predict.error)")
        let lines = try String(contentsOfFile: predictions, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 33 && lines[0] == "index\tprediction\tnot_equivalent\tequivalent", "the task's label names: \(lines[0])")
        #expect(lines.dropFirst().allSatisfy { ["not_equivalent", "equivalent"].contains($0.split(separator: "\t")[1]) })
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: export + "/config.json"))) as! [String: Any]
        #expect(config["id2label"] as? [String: String] == ["0": "not_equivalent", "1": "equivalent"])
    }

    @Test func classWeightsAreAnOptionAndRecorded() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try finetune(trainArguments(steps: 2, extra: ["--class-weights", "balanced"]))
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("class weights"), "the resolved weights are shown")
        let database = try SQLiteDatabase(path: db)
        #expect(try database.query("SELECT class_weights FROM run_params WHERE run_id = 1").first?["class_weights"] == .text("balanced"))
        let wrong = try finetune(trainArguments(steps: 2, extra: ["--class-weights", "1,2,3"]))
        #expect(wrong.status == 1 && wrong.error.contains("3 weights for 2 labels"), "\(wrong.error)")
    }

    /// `--input -`: each line's result arrives before the next line is written, and a bad line gets an error
    /// line of its own (so the n-th output answers the n-th input) without ending the stream.
    @Test func predictStreamsStandardInputLineByLine() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["predict", "--model", Self.fixtures + "/pipelines/question-answering", "--input", "-"]
        let (input, output, error) = (Pipe(), Pipe(), Pipe())
        process.standardInput = input
        process.standardOutput = output
        process.standardError = error
        try process.run()
        func nextLine() -> String {
            var bytes = Data()
            while let byte = try? output.fileHandleForReading.read(upToCount: 1), let b = byte.first, b != UInt8(ascii: "\n") { bytes.append(b) }
            return String(decoding: bytes, as: UTF8.self)
        }
        input.fileHandleForWriting.write(Data("{\"question\": \"who?\", \"context\": \"John Smith lives in New York and works for Acme.\"}\n".utf8))
        let first = try JSONSerialization.jsonObject(with: Data(nextLine().utf8)) as? [String: Any]
        #expect(first?["answer"] as? String == "for Acme." && (first?["answers"] as? [Any])?.count == 1, "\(String(describing: first))")
        input.fileHandleForWriting.write(Data("{\"question\": \"who?\"}\n".utf8))
        let second = try JSONSerialization.jsonObject(with: Data(nextLine().utf8)) as? [String: Any]
        #expect((second?["error"] as? String)?.contains("<stdin>:2") == true, "\(String(describing: second))")
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("wrote 1 predictions"))
    }

    @Test func badInputFailsTheRunWithFileAndLine() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try finetune(trainArguments(extra: ["--train-file", Self.fixtures + "/tasks/data/bad-label.tsv"]))
        #expect(result.status == 1)
        #expect(result.error.contains("bad-label.tsv:4: unknown label 'yes'"))
        let run = try runs()[0]
        #expect(run["status"] == .text("failed") && run["error"]?.description.contains("bad-label.tsv:4") == true)

        let missing = try finetune(["--task", Self.fixtures + "/tasks/mrpc-slice.json", "--model", directory + "/no-model", "--db", db,
                                    "--output-dir", directory + "/runs"])
        #expect(missing.status == 1 && missing.error.contains("model folder not found"))
        #expect(try runs()[1]["status"] == .text("failed"))
    }

    /// A run never writes into a folder it did not create: a results.db started afresh over the same output
    /// folder numbers its run 1 again, and a link where run 1's folder would go points elsewhere.
    @Test func aRunFolderIsAlwaysTheRunsOwn() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try finetune(trainArguments(steps: 2)).status == 0)
        let first = directory + "/runs/1-mrpc-slice/best/model.safetensors"
        let before = try Data(contentsOf: URL(fileURLWithPath: first))
        try FileManager.default.removeItem(atPath: db)
        let elsewhere = directory + "/elsewhere"
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: directory + "/runs/1-mrpc-slice-2", withDestinationPath: elsewhere)
        let again = try finetune(trainArguments(steps: 2, extra: ["--seed", "7"]))
        #expect(again.status == 0, "\(again.error)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: first)) == before, "the first run's model is untouched")
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere).isEmpty, "nothing is written through the link")
        let run = try runs()[0]
        #expect(run["output_dir"] == .text(directory + "/runs/1-mrpc-slice-3"), "\(run)")
        #expect(FileManager.default.fileExists(atPath: directory + "/runs/1-mrpc-slice-3/best/model.safetensors"))
    }

    @Test func predictRefusesToWriteOverItsInput() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let input = directory + "/in.txt", link = directory + "/link.txt"
        try Data("A sentence.\n".utf8).write(to: URL(fileURLWithPath: input))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: input)
        for output in [input, link] {
            let result = try finetune(["predict", "--model", Self.fixtures + "/pipelines/text-classifier", "--input", input, "--output", output])
            #expect(result.status == 1 && result.error.contains("is the input file"), "\(result.error)")
        }
        #expect(try String(contentsOfFile: input, encoding: .utf8) == "A sentence.\n")
    }

    /// A file size limit reached in the middle of writing a checkpoint is a write error: the run ends with a
    /// message, is marked failed, and leaves no partial checkpoint.
    @Test func aFileSizeLimitIsAWriteErrorNotADeath() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The default encoder's checkpoint holds files of 90 MB and more, results.db a few hundred KB: a limit of
        // 20 MB is reached by the checkpoint.
        let model = Self.root + "/models/all-MiniLM-L6-v2"
        let arguments = trainArguments(steps: 3, extra: ["--save-strategy", "steps", "--save-steps", "1", "--model", model])
        let quoted = ([Self.binary] + arguments).map { "'" + $0 + "'" }.joined(separator: " ")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "ulimit -f 20000 && exec " + quoted]
        process.currentDirectoryURL = URL(fileURLWithPath: Self.root)
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let error = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 1, "\(process.terminationReason) \(error)")
        #expect(error.contains("checkpoint of step 1 not saved") && error.contains("File too large"), "\(error)")
        #expect(try runs().first?["status"] == .text("failed"))
        let checkpoints = directory + "/runs/1-mrpc-slice/checkpoints"
        #expect((try? FileManager.default.contentsOfDirectory(atPath: checkpoints))?.isEmpty ?? true, "no partial checkpoint is left")
    }

    @Test func aBatchThatCannotFitIsRefusedBeforeAnythingIsAllocated() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for size in ["100000000", "9223372036854775807"] {
            for option in ["--batch-size", "--eval-batch-size"] {
                let result = try finetune(trainArguments(steps: 2, extra: [option, size]))
                #expect(result.status == 1, "\(option) \(size): \(result.output) \(result.error)")
                #expect(result.error.contains("a batch of \(size) sequences of ") && result.error.contains("lower the batch size"),
                        "\(result.error)")
            }
        }
    }

    @Test func aMaxLengthBeyondTheModelNamesTheSettingAndTheModel() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try finetune(trainArguments(steps: 2).map { $0 == "40" ? "100000" : $0 })
        #expect(result.status == 1, "\(result.output)")
        #expect(result.error.contains("max_length 100000 must be between 3 and ") && result.error.contains("tiny-bert/config.json"),
                "\(result.error)")
        #expect(!result.error.contains("mrpc-slice.json"), "the task file did not set it")
    }

    @Test func ctrlCMarksTheRunInterrupted() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Once training has started, interrupt as a terminal's Ctrl-C would.
        let (process, _, _) = try launchTraining(trainArguments(steps: 100_000))
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        let run = try runs()[0]
        #expect(run["status"] == .text("interrupted"))
        #expect(run["ended_at"] != .null)
    }

    @Test func earlyStoppingEndsARealRunAndSaysWhyInResultsDB() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The tiny model's F1 on the slice stops moving within a few evaluations.
        let result = try finetune(trainArguments(steps: 200, extra: ["--early-stopping-patience", "3"]))
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("early stopping: f1 did not improve by more than 0 in 3 evaluations"), "\(result.output)")
        let run = try runs()[0]
        #expect(run["status"] == .text("completed") && run["stop_reason"]?.description.hasPrefix("early stopping") == true)
        let last = try SQLiteDatabase(path: db).query("SELECT MAX(step) AS s FROM metrics WHERE split = 'train'").first?["s"]
        #expect(last.flatMap(\.double).map { $0 < 200 } == true, "stopped before the step budget: \(String(describing: last))")
    }

    /// A second Ctrl-C quits at once, in the middle of a step: without a crash, and with the run marked. The
    /// default encoder's steps (about a second at batch 32) leave time to press it before the step ends.
    @Test func ctrlCTwiceQuitsAtOnceAndMarksTheRun() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for attempt in 1...4 {
            let db = directory + "/results-\(attempt).db"
            let arguments = defaultEncoderArguments(db: db, batchSize: 32, maxLength: 128)
            let (process, _, _) = try launchTraining(arguments)
            usleep(UInt32(attempt) * 100_000)
            kill(process.processIdentifier, SIGINT)
            usleep(50_000)  // separate signals: the kernel merges a SIGINT into one still pending
            kill(process.processIdentifier, SIGINT)
            process.waitUntilExit()
            #expect(process.terminationReason == .exit && process.terminationStatus == 130, "attempt \(attempt): \(process.terminationReason)")
            let run = try SQLiteDatabase(path: db).query("SELECT status, error FROM runs").first
            #expect(run?["status"] == .text("interrupted"), "attempt \(attempt): \(String(describing: run))")
            #expect(run?["error"]?.description.contains("quit at once by a second Ctrl-C") == true, "attempt \(attempt): \(String(describing: run))")
        }
    }

    /// Two Ctrl-C 0 to 60 ms apart, during a step, 50 times, checkpoints saved or not: every run ends with exit 130
    /// and is marked interrupted, none crashes (an asynchronous signal handler interrupting a GEMM thread inside
    /// `free` once corrupted the heap in about one run of ten).
    @Test func twoCtrlCAtAnyMomentFiftyTimes() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for attempt in 1...50 {
            let db = directory + "/results-\(attempt).db"
            let arguments = defaultEncoderArguments(db: db, batchSize: 16, maxLength: 64,
                                                    extra: ["--save-strategy", attempt % 2 == 0 ? "no" : "epoch"])
            let (process, _, err) = try launchTraining(arguments)
            usleep(UInt32.random(in: 50_000...300_000))
            kill(process.processIdentifier, SIGINT)
            usleep(UInt32.random(in: 0...60_000))
            kill(process.processIdentifier, SIGINT)
            let error = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationReason == .exit && process.terminationStatus == 130, "attempt \(attempt): \(error)")
            let run = try SQLiteDatabase(path: db).query("SELECT status FROM runs").first
            #expect(run?["status"] == .text("interrupted"), "attempt \(attempt): \(String(describing: run))")
        }
    }

    /// A run that crashes (a fatal signal) leaves a marker in its folder; the next command records the run as
    /// failed, with the signal, instead of merely interrupted.
    @Test func aCrashedRunIsRecordedAsFailedWithItsSignal() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (process, _, _) = try launchTraining(trainArguments(steps: 100_000))
        kill(process.processIdentifier, SIGSEGV)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGSEGV)
        #expect(try finetune(["runs", "--db", db]).status == 0)
        let run = try runs()[0]
        #expect(run["status"] == .text("failed"), "\(run)")
        #expect(run["error"]?.description.contains("crashed (signal 11, Segmentation fault)") == true, "\(run)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/runs/1-mrpc-slice/" + CrashMarker.fileName), "the marker is taken")
    }

    @Test func twoRunsWriteTheSameDatabaseAtOnce() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let a = try launch(trainArguments(steps: 8, extra: ["--eval-steps", "1", "--seed", "1"]))
        let b = try launch(trainArguments(steps: 8, extra: ["--eval-steps", "1", "--seed", "2"]))
        for (process, out, err) in [a, b] {
            _ = out.fileHandleForReading.readDataToEndOfFile()
            let error = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(error)")
        }
        let all = try runs()
        #expect(all.count == 2 && all.allSatisfy { $0["status"] == .text("completed") })
        let counts = try SQLiteDatabase(path: db).query(
            "SELECT run_id, COUNT(*) AS n FROM metrics WHERE split = 'dev' GROUP BY run_id ORDER BY run_id")
        #expect(counts.map { $0["n"] } == [.integer(16), .integer(16)], "8 evaluations of 2 metrics each")
    }

    @Test func aVersion1DatabaseIsUpgraded() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {  // results.db as schema version 1 left it: run_params without `precision`
            _ = try ResultsDatabase(path: db)
            let old = try SQLiteDatabase(path: db)
            try old.execute("""
                DROP VIEW run_params;
                CREATE VIEW run_params AS SELECT run_id, MAX(CASE WHEN key = 'seed' THEN CAST(value AS INTEGER) END) AS seed
                  FROM params GROUP BY run_id;
                PRAGMA user_version = 1;
                """)
        }
        _ = try ResultsDatabase(path: db)
        let upgraded = try SQLiteDatabase(path: db)
        let columns = try upgraded.query("SELECT name FROM pragma_table_info('run_params')").compactMap { $0["name"] }
        #expect(columns.contains(.text("precision")) && columns.contains(.text("learning_rate")))
        #expect(try upgraded.query("PRAGMA user_version").first?["user_version"] == .integer(5))
        let runColumns = try upgraded.query("SELECT name FROM pragma_table_info('runs')").compactMap { $0["name"] }
        #expect(runColumns.contains(.text("last_seen")) && runColumns.contains(.text("checkpoint")) && runColumns.contains(.text("plugin")))
        let tables = try upgraded.query("SELECT name FROM sqlite_master").compactMap { $0["name"] }
        #expect(["sweeps", "sweep_runs", "predictions", "sweep_summary"].allSatisfy { tables.contains(.text($0)) })
    }
}

/// The SQL shown in the guide "Comparing runs" runs against a real results.db.
@Suite struct GuideQueryTests {
    @Test func everySQLBlockInTheGuideRuns() throws {
        let guide = try String(contentsOfFile: CommandLineTests.root + "/Sources/BertKit/BertKit.docc/ComparingRuns.md", encoding: .utf8)
        let blocks = guide.components(separatedBy: "```sql\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        #expect(blocks.count >= 3)
        let tests = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: tests.directory) }
        for seed in ["1", "2"] {
            #expect(try tests.finetune(tests.trainArguments(extra: ["--seed", seed])).status == 0)
        }
        let database = try SQLiteDatabase(path: tests.db)
        for sql in blocks {
            let rows = try database.query(sql.split(separator: "\n").filter { !$0.hasPrefix("--") }.joined(separator: "\n"))
            if sql.contains("did not finish") { continue }
            #expect(!rows.isEmpty, "no rows from:\n\(sql)")
        }
    }
}

/// A warm training step (forward with dropout, loss, backward, AdamW) of each task head, in fp32 and in bf16,
/// allocates nothing in the toolkit's code, in debug and release builds: measured in a process of its own
/// (Tests/AllocationCheck), where no other test allocates meanwhile. The GEMM library (oneDNN) allocates its packing
/// workspace inside each call, which its API gives no way to hand over; that count is reported, not asserted.
@Suite struct AllocationTests {
    @Test func aWarmTrainingStepAllocatesNothing() throws {
        let process = Process()
        process.executableURL = Bundle.main.executableURL!.deletingLastPathComponent().appendingPathComponent("allocation-check")
        process.arguments = [CommandLineTests.fixtures]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let heads = output.split(separator: "\n").filter { $0.contains("warm steps") }
        #expect(heads.count == 8, "four heads in two precisions:\n\(output)")
        for line in heads {
            // "<head> <precision>: 5 warm steps: <toolkit> allocations by the toolkit, <library> by the GEMM library, <loops> parallel loops"
            let numbers = line.split(separator: ":").last!.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            #expect(numbers.count == 3 && numbers[0] == 0, "\(line)")
            // The kernels did run on both cores, so the pool's hand-off to the workers was measured too.
            #expect(numbers.count == 3 && (numbers[2] > 0 || Parallel.workers == 1), "\(line)")
        }
        #expect(output.contains("control allocation seen: true"), "the counter sees an allocation made on purpose")
    }
}

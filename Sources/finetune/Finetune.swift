import ArgumentParser
import BertKit
import Foundation

@main
struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Fine-tune BERT encoders on GLUE-style tasks; track runs in results.db; export to Hugging Face.",
        subcommands: [Train.self, Resume.self, Sweep.self, Sweeps.self, Runs.self, Export.self, Predict.self, Evaluate.self, Encode.self, Serve.self, DashboardCommand.self],
        defaultSubcommand: Train.self
    )

    /// Errors in one style, `error: …`: a usage error (an option misspelt or missing) is followed by the usage
    /// of its command, any other error (a missing run, a broken file) by nothing else.
    static func main() {
        // A file size limit (`ulimit -f`) reached while writing a checkpoint or a model is then a write error
        // (EFBIG) that ends the run with a message and a record, not a death by SIGXFSZ that leaves neither.
        signal(SIGXFSZ, SIG_IGN)
        // Before any other thread exists: Ctrl-C and SIGTERM are then waited for by one thread, never handled
        // inside another's work.
        SignalWatcher.takeSignals()
        var command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exitAsUsageError(error)
        }
        do {
            try command.run()
        } catch let error as ValidationError {
            exitAsUsageError(error)
        } catch let error where String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
            exit(withError: error)  // `finetune help train`, --version, exit codes
        } catch {
            fail(error)
        }
    }

    private static func exitAsUsageError(_ error: Error) -> Never {
        guard exitCode(for: error) != .success else { exit(withError: error) }  // --help
        var message = fullMessage(for: error)
        if message.hasPrefix("Error: ") { message = "error: " + message.dropFirst("Error: ".count) }
        FileHandle.standardError.write(Data((message + "\n").utf8))
        Foundation.exit(exitCode(for: error).rawValue)
    }
}

/// Options shared by commands that load a model.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model folder in Hugging Face layout (config.json, model.safetensors, vocab.txt).")
    var model: String = defaultModelDirectory

    static var defaultModelDirectory: String {
        ProcessInfo.processInfo.environment["BERTKIT_MODEL"] ?? "models/all-MiniLM-L6-v2"
    }
}

/// How each process computes, and how long it waits for the others under mpirun.
struct ProcessOptions: ParsableArguments {
    @Option(help: "Threads for this process (default: the cores it may run on; under mpirun, its share of them).")
    var threads: Int?
    @Option(help: "Under mpirun: seconds to wait for the other processes before ending the job (0: no limit).")
    var mpiTimeout: Double = 600

    /// Sets the thread count before the first parallel loop reads it (`Parallel.workers`), and the group's timeout.
    func apply() {
        if let threads { setenv("BERTKIT_THREADS", String(max(1, threads)), 1) }
        ProcessGroup.current.timeout = mpiTimeout
    }
}

/// Where results.db is.
struct DatabaseOptions: ParsableArguments {
    @Option(help: "The SQLite results database (created if missing).")
    var db: String = ProcessInfo.processInfo.environment["BERTKIT_DB"] ?? "results.db"
}

/// Prints an error the way a user should read it, and exits with `code`; in a group of processes, the error
/// names the process.
func fail(_ error: Error, code: Int32 = 1, processes: ProcessGroup = .single) -> Never {
    let which = processes.isDistributed ? "process \(processes.rank): " : ""
    var message = error.localizedDescription
    // The default encoder is the one folder that a fresh checkout lacks until it is set up.
    if let missing = error as? CheckpointError, missing.file == ModelOptions.defaultModelDirectory,
       !FileManager.default.fileExists(atPath: missing.file) {
        message += " (scripts/setup installs the default encoder there)"
    }
    FileHandle.standardError.write(Data("error: \(which)\(message)\n".utf8))
    Foundation.exit(code)
}

/// Writes a line to standard output at once, unbuffered, so that a run's log can be followed in a file
/// (`tail -f`) as it happens; `print` holds output back when it is not a terminal.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// How to run this program again from the current folder, for commands a message suggests: its path as
/// started (`swift run` starts `.build/release/finetune`), relative to here when it lies below.
var invocation: String {
    let path = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    let here = FileManager.default.currentDirectoryPath + "/"
    if !CommandLine.arguments[0].contains("/") { return CommandLine.arguments[0] }  // found on PATH
    return path.hasPrefix(here) ? String(path.dropFirst(here.count)) : path
}

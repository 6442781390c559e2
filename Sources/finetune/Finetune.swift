import ArgumentParser
import BertKit
import Foundation

@main
struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Fine-tune BERT encoders on GLUE-style tasks; track runs in results.db; export to Hugging Face.",
        subcommands: [Train.self, Resume.self, Sweep.self, Sweeps.self, Runs.self, Export.self, Predict.self, Evaluate.self, Encode.self],
        defaultSubcommand: Train.self
    )
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
    FileHandle.standardError.write(Data("error: \(which)\(error.localizedDescription)\n".utf8))
    Foundation.exit(code)
}

/// Writes a line to standard output at once, unbuffered, so that a run's log can be followed in a file
/// (`tail -f`) as it happens; `print` holds output back when it is not a terminal.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

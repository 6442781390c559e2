import ArgumentParser
import BertKit
import Foundation

/// `finetune export RUN --to DIR`: copies a run's best model, a Hugging Face folder, to DIR.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a run's best model as a Hugging Face folder (transformers' from_pretrained loads it).")

    @Argument(help: "Run id.") var id: Int64
    @Option(help: "Destination folder (replaced if it exists).") var to: String
    @OptionGroup var databaseOptions: DatabaseOptions

    func run() throws {
        guard let run = try open(databaseOptions).run(id) else { throw UsageError("no run \(id) in \(databaseOptions.db)") }
        let source = (run.outputDirectory ?? "") + "/best"
        guard FileManager.default.fileExists(atPath: source + "/model.safetensors") else {
            throw UsageError("run \(id) (\(run.status)) has no saved model at \(source)")
        }
        try ModelFolder.copy(from: source, to: to)
        print("exported run \(id) to \(to)")
    }
}

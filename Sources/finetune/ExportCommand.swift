import ArgumentParser
import BertKit
import Foundation

/// `finetune export RUN --to DIR`: copies a run's best model, a Hugging Face folder, to DIR.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a run's best model as a Hugging Face folder (AutoModelForSequenceClassification loads it).")

    @Argument(help: "Run id.") var id: Int64
    @Option(help: "Destination folder (replaced if it exists).") var to: String
    @OptionGroup var databaseOptions: DatabaseOptions

    func run() throws {
        let db = try open(databaseOptions).database
        guard let row = try db.query("SELECT output_dir, status FROM runs WHERE id = ?", [.integer(id)]).first else {
            throw ValidationError("no run \(id) in \(databaseOptions.db)")
        }
        let source = format(row["output_dir"]) + "/best"
        guard FileManager.default.fileExists(atPath: source + "/model.safetensors") else {
            throw ValidationError("run \(id) (\(format(row["status"]))) has no saved model at \(source)")
        }
        try ModelFolder.copy(from: source, to: to)
        print("exported run \(id) to \(to)")
    }
}

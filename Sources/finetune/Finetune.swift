import ArgumentParser
import BertKit
import Foundation

@main
struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Fine-tune BERT encoders on GLUE, SQuAD and CoNLL tasks; track runs in results.db.",
        subcommands: [Encode.self]
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

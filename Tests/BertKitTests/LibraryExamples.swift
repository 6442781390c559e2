// The examples of the article "Using BertKit in your Swift program" (Sources/BertKit/BertKit.docc/UsingBertKit.md),
// which shows each function below verbatim; LibraryExampleTests runs them.
import BertKit
import Foundation

/// Fine-tunes `encoder` on a paraphrase task whose TSV files are in `data`, with the task and the hyper-parameters
/// written in code, and returns the folder of the best model.
func fineTuneParaphrases(encoder: String, data: String, train: String, dev: String, output: String) throws -> String {
    let task = try TaskSpec([
        "name": "paraphrase", "plugin": "sequence-classification", "dataDirectory": .text(data),
        "splits": [
            "train": ["file": .text(train), "textA": 3, "textB": 4, "label": 0],
            "dev": ["file": .text(dev), "textA": 3, "textB": 4, "label": 0],
        ],
        "labels": ["0", "1"], "labelNames": ["different", "paraphrase"],
        "metrics": ["accuracy", "f1"], "mainMetric": "f1",
    ])
    var settings = Hyperparameters()
    settings[.learningRate] = 1e-3
    settings[.maxSteps] = 6
    settings[.batchSize] = 8
    settings[.maxLength] = 40
    var run = try FineTuningRun(spec: task, hyperparameters: settings, model: encoder)
    run.outputRoot = output + "/runs"
    let database = try ResultsDatabase(path: output + "/results.db")
    let outcome = try run.run(database: database) { line in print(line) }
    if let error = outcome.error { throw error }
    return outcome.outputDirectory + "/best"
}

/// Loads a fine-tuned paraphrase model once and classifies pairs with it.
func classifyParaphrases(model folder: String) throws -> [TextClassification] {
    let model = try FineTunedModel(folder: folder, precision: .int8)
    return try model.classify([
        TextInput("The company said profits rose.", pair: "Profits went up, the firm said."),
        TextInput("He plays the guitar.", pair: "It rained all day in Seattle."),
    ])
}

/// The cosine similarity of two sentences under a sentence-transformers encoder.
func similarity(_ a: String, _ b: String, encoder folder: String) throws -> Float {
    let encoder = try SentenceEncoder(folder: folder)
    let vectors = try encoder.embed([a, b])
    let dot = zip(vectors[0], vectors[1]).map(*).reduce(0, +)
    let norms = vectors.map { v in v.map { $0 * $0 }.reduce(0, +).squareRoot() }
    return dot / (norms[0] * norms[1])
}

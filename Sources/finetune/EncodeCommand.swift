import ArgumentParser
import BertKit
import Foundation

/// Tokenises a sentence (or pair) and runs the encoder over it: the quickest check that a model loads.
struct Encode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tokenize a text (or a pair) and print its tokens and sentence embedding.")

    @Argument(help: "The text to encode.")
    var text: String

    @Option(help: "A second text, encoded as the pair [CLS] text [SEP] pair [SEP].")
    var pair: String?

    @OptionGroup var modelOptions: ModelOptions

    func run() throws {
        let checkpoint = try BertCheckpoint(directory: modelOptions.model)
        let tokenizer = try Tokenizer(directory: checkpoint.directory)
        let encoding = tokenizer.encode(text, pair: pair, maxLength: checkpoint.config.maxSequenceLength)

        let store = ParameterStore(BertEncoder.parameters(checkpoint.config))
        let report = try checkpoint.loadWeights(into: store)
        let encoder = BertEncoder(config: checkpoint.config, store: store, context: BuildContext(maxBatch: 1, maxLength: encoding.count))
        let batch = EncoderBatch(batchSize: 1, sequenceLength: encoding.count, tokenIds: encoding.ids,
                                 tokenTypeIds: encoding.typeIds, lengths: [encoding.count])
        let start = Date()
        encoder.forward(batch)
        let milliseconds = Date().timeIntervalSince(start) * 1000

        let hidden = checkpoint.config.hiddenSize
        // Mean of the token vectors, L2-normalised: the sentence embedding all-MiniLM-L6-v2 was trained for.
        var embedding = [Float](repeating: 0, count: hidden)
        for t in 0..<encoding.count {
            for c in 0..<hidden { embedding[c] += encoder.sequenceOutput[t * hidden + c] / Float(encoding.count) }
        }
        let norm = embedding.reduce(0) { $0 + $1 * $1 }.squareRoot()
        embedding = embedding.map { $0 / norm }

        print("model     \(checkpoint.directory) (\(report.loaded.count) tensors loaded, \(checkpoint.config.numHiddenLayers) layers, hidden \(hidden))")
        print("tokens    \(encoding.ids.map { tokenizer.vocabulary.token($0) }.joined(separator: " "))")
        print("ids       \(encoding.ids.map(String.init).joined(separator: " "))")
        print("embedding [\(embedding.prefix(8).map { String(format: "%.4f", $0) }.joined(separator: ", ")), ...] (mean-pooled, normalised, \(hidden) values)")
        print(String(format: "forward   %.1f ms", milliseconds))
    }
}

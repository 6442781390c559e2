import BertKit
import Foundation

/// Texts per second through each kind of tokenizer, the toolkit's against the `tokenizers` library's (what
/// transformers' fast tokenizers run) on the same texts in the same run: one text at a time on one thread (how the
/// toolkit's prediction path calls it), and the library's `encode_batch` over all cores as well.
struct TokenizerSpeed {
    let model: String
    let python: String
    let output: String
    let rounds = 5

    func run() throws {
        let fixtures = "Tests/BertKitTests/Fixtures/tokenizers"
        let texts = try JSONDecoder().decode(Texts.self, from: Data(contentsOf: URL(fileURLWithPath: fixtures + "/texts.json"))).singles
        // The default model read from vocab.txt alone (BERT's tokenizer without a tokenizer.json) as well.
        let vocabOnly = NSTemporaryDirectory() + "bertkit-vocab-only-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: vocabOnly) }
        try FileManager.default.createDirectory(atPath: vocabOnly, withIntermediateDirectories: true)
        for name in ["vocab.txt", "tokenizer_config.json"] { try FileManager.default.copyItem(atPath: model + "/" + name, toPath: vocabOnly + "/" + name) }
        let folders = [(model, "all-MiniLM-L6-v2 tokenizer.json (WordPiece)"), (vocabOnly, "all-MiniLM-L6-v2 vocab.txt (WordPiece)"),
                       (fixtures + "/roberta-bpe", "byte-level BPE (RoBERTa-style)"), (fixtures + "/xlmr-unigram", "Unigram + Precompiled (XLM-R-style)"),
                       (fixtures + "/bpe-bytefallback", "BPE with byte fallback")]
        let reference = referenceRates(folders.filter { $0.0 != vocabOnly }.map(\.0))
        var lines = ["# Tokenizer speed: texts per second", "",
                     "machine: \(machineDescription()), \(Parallel.workers) cores; \(Date()); \(texts.count) texts (Tests/BertKitTests/Fixtures/tokenizers/texts.json: "
                        + "GLUE, GoEmotions, SQuAD and hard cases), median of \(rounds) passes (min-max)", "",
                     "| tokenizer | toolkit, 1 thread | tokenizers, 1 thread | ratio | tokenizers encode_batch, all cores |",
                     "|---|---:|---:|---:|---:|"]
        for (folder, name) in folders {
            let tokenizer = try Tokenizer(directory: folder)
            var rates: [Double] = []
            for _ in 0..<rounds {
                let start = Date()
                var count = 0
                for text in texts { count += tokenizer.encode(text).count }
                rates.append(Double(texts.count) / Date().timeIntervalSince(start))
                precondition(count > 0)
            }
            rates.sort()
            let ours = rates[rates.count / 2]
            let theirs = reference[folder == vocabOnly ? model : folder]
            lines.append(String(format: "| %@ | %.0f (%.0f-%.0f) | %@ | %@ | %@ |", name, ours, rates.first!, rates.last!,
                                theirs.map { String(format: "%.0f", $0.single) } ?? "-", theirs.map { String(format: "%.2fx", ours / $0.single) } ?? "-",
                                theirs.map { String(format: "%.0f", $0.batch) } ?? "-"))
        }
        if reference.isEmpty { lines += ["", "tokenizers not measured: `\(python)` has no tokenizers library (set --python or BERTKIT_PYTHON)."] }
        let table = lines.joined(separator: "\n") + "\n"
        print(table, terminator: "")
        try FileManager.default.createDirectory(atPath: (output as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try table.write(toFile: output, atomically: true, encoding: .utf8)
    }

    struct Texts: Decodable { let singles: [String] }

    /// The library's rates per folder from scripts/bench/tokenizer_speed.py, or none when it cannot run.
    private func referenceRates(_ folders: [String]) -> [String: (single: Double, batch: Double)] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, "scripts/bench/tokenizer_speed.py", "--rounds", String(rounds)] + folders
        let pipe = Pipe()
        process.standardOutput = pipe
        guard (try? process.run()) != nil else { return [:] }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let json = try? JSONSerialization.jsonObject(with: data) as? [String: [String: Double]] else { return [:] }
        return json.compactMapValues { r in r["single"].flatMap { s in r["batch"].map { (s, $0) } } }
    }
}

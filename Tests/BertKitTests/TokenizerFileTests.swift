import Foundation
import Testing
import BertKit

/// tokenizer.json against the `tokenizers` library: tokenizers of every kind (WordPiece, RoBERTa's byte-level
/// BPE, XLM-R's Unigram with SentencePiece's character map, BPE with byte fallback, and the remaining normalisers
/// and pre-tokenizers), trained on the shared data by scripts/fixtures/make_tokenizer_fixtures.py, each on about
/// 2,000 real and hard texts and 244 pairs under longest-first truncation.
@Suite struct TokenizerFileTests {
    struct Texts: Decodable {
        let singles: [String]
        let pairs: [Pair]
        let sentences: [[String]]

        struct Pair: Decodable {
            let text: String, pair: String, maxLength: Int?
            init(from decoder: Decoder) throws {
                var c = try decoder.unkeyedContainer()
                text = try c.decode(String.self)
                pair = try c.decode(String.self)
                maxLength = try c.decodeNil() ? nil : try c.decode(Int.self)
            }
        }
    }

    struct Expected: Decodable {
        let ids: [Int32]
        let offsets: [Int]
        let words: [Int?]
        let type_ids: [Int32]?
        let decoded: String?
    }

    static let folder = Fixture.path("tokenizers")

    static let texts: Texts = try! JSONDecoder().decode(Texts.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/texts.json")))

    /// Every text and pair of `texts.json` encoded by the tokenizer of `kind`, against the library's encodings.
    func check(_ kind: String) throws {
        let tokenizer = try Tokenizer(directory: Self.folder + "/" + kind)
        let lines = try String(contentsOfFile: Self.folder + "/" + kind + "/cases.jsonl", encoding: .utf8).split(separator: "\n")
        let inputs: [(String, String?, Int?)] = Self.texts.singles.map { ($0, nil, nil) } + Self.texts.pairs.map { ($0.text, $0.pair, $0.maxLength) }
        #expect(lines.count == inputs.count)
        var mismatches = 0, decodedChecked = 0
        for ((text, pair, maxLength), line) in zip(inputs, lines) {
            let expected = try JSONDecoder().decode(Expected.self, from: Data(line.utf8))
            let e = tokenizer.encode(text, pair: pair, maxLength: maxLength)
            let offsets = e.offsets.flatMap { [$0.lowerBound, $0.upperBound] }
            var same = e.ids == expected.ids && offsets == expected.offsets && e.wordIds == expected.words
                && (expected.type_ids == nil || e.typeIds == expected.type_ids!)
            var decoded: String? = nil
            if let d = expected.decoded {
                decoded = tokenizer.decode(e.ids)
                decodedChecked += 1
                same = same && decoded == d
            }
            if !same {
                mismatches += 1
                if mismatches <= 4 {
                    Issue.record("""
                        \(kind): \(text.debugDescription) \(pair.map { "+ " + $0.debugDescription } ?? "") \(maxLength.map { "max \($0)" } ?? "")
                          ids      \(e.ids)
                          expected \(expected.ids)
                          offsets  \(offsets)
                          expected \(expected.offsets)
                          words    \(e.wordIds.map { $0.map(String.init) ?? "-" })
                          expected \(expected.words.map { $0.map(String.init) ?? "-" })
                          types    \(e.typeIds) expected \(expected.type_ids ?? [])
                          decoded  \((decoded ?? "").debugDescription) expected \((expected.decoded ?? "").debugDescription)
                        """)
                }
            }
        }
        #expect(decodedChecked > 500)
        #expect(mismatches == 0, "\(kind): \(mismatches) of \(inputs.count) encodings differ from the tokenizers library's")
    }

    struct WordsExpected: Decodable {
        let ids: [Int32]
        let words: [Int]
    }

    /// Sentences given as words (CoNLL's), against the library's `is_pretokenized` encodings with the prefix space
    /// transformers requires of byte-level BPE for such input.
    @Test(arguments: ["wordpiece", "roberta-bpe", "xlmr-unigram", "bpe-bytefallback", "wordpiece-mixed"])
    func sentencesGivenAsWords(_ kind: String) throws {
        let tokenizer = try Tokenizer(directory: Self.folder + "/" + kind)
        let lines = try String(contentsOfFile: Self.folder + "/" + kind + "/words.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == Self.texts.sentences.count)
        var mismatches = 0
        for (words, line) in zip(Self.texts.sentences, lines) {
            let expected = try JSONDecoder().decode(WordsExpected.self, from: Data(line.utf8))
            let tokens = tokenizer.tokenize(words: words)
            let ids = tokens.flatMap { $0.map(\.id) }
            let wordOfToken = tokens.enumerated().flatMap { w, pieces in pieces.map { _ in w } }
            if ids != expected.ids || wordOfToken != expected.words {
                mismatches += 1
                if mismatches <= 3 { Issue.record("\(kind): \(words)\n  ids \(ids)\n  expected \(expected.ids)") }
            }
        }
        #expect(mismatches == 0, "\(kind): \(mismatches) of \(lines.count) sentences differ")
    }

    @Test func wordPiece() throws { try check("wordpiece") }
    @Test func robertaByteLevelBPE() throws { try check("roberta-bpe") }
    @Test func xlmRobertaUnigram() throws { try check("xlmr-unigram") }
    @Test func bpeWithByteFallback() throws { try check("bpe-bytefallback") }
    @Test func wordPieceWithEveryOtherPart() throws { try check("wordpiece-mixed") }

    /// A tokenizer.json the toolkit cannot read is an error naming the file, the place in it and what was expected.
    @Test func badTokenizerFilesNameThePlaceAndWhatWasExpected() throws {
        let folder = NSTemporaryDirectory() + "bertkit-bad-tokenizer-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let good = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.folder + "/roberta-bpe/tokenizer.json"))) as! [String: Any]
        func error(_ change: (inout [String: Any]) -> Void) throws -> String {
            var json = good
            change(&json)
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: folder + "/tokenizer.json"))
            do { _ = try Tokenizer(directory: folder) } catch { return "\(error)" }
            return "no error"
        }
        let file = folder + "/tokenizer.json"
        #expect(try error { $0["normalizer"] = ["type": "Nonsense"] }.contains("\(file): normalizer.type: normalizer \"Nonsense\" is not supported"))
        #expect(try error { $0["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [["type": "Split", "pattern": ["Regex": "(unclosed"], "behavior": "Isolated"]]] }
            .contains("pre_tokenizer.pretokenizers[0].pattern: the regular expression \"(unclosed\" does not compile"))
        #expect(try error { json in
            var model = json["model"] as! [String: Any]
            model["merges"] = [["Ġ", "nonexistent-token"]]
            json["model"] = model
        }.contains("model.merges[0]: the merge of \"Ġ\" and \"nonexistent-token\" names a token not in the vocabulary"))
        #expect(try error { json in
            var model = json["model"] as! [String: Any]
            model["dropout"] = 0.1
            json["model"] = model
        }.contains("model.dropout: BPE dropout 0.1 samples a different tokenisation each time"))
        try Data("{\"model\": [".utf8).write(to: URL(fileURLWithPath: file))
        #expect(throws: CheckpointError.self) { _ = try Tokenizer(directory: folder) }
    }
}

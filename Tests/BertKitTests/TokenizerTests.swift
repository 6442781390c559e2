import Foundation
import Testing
import BertKit

/// The tokenizer against Hugging Face's on real texts (MRPC, SST-2, CoNLL-2003, SQuAD) and hard cases.
@Suite struct TokenizerTests {
    struct Case: Decodable {
        let text: String
        let pair: String?
        let max_length: Int?
        let ids: [Int32]
        let type_ids: [Int32]?
        let offsets: [[Int]]
        let words: [Int?]
    }

    static func cases(_ name: String) throws -> [Case] {
        let text = try String(contentsOfFile: Fixture.path(name), encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONDecoder().decode(Case.self, from: Data($0.utf8)) }
    }

    static func tokenizer(vocabulary: String, lowercase: Bool) throws -> Tokenizer {
        try Tokenizer(vocabulary: Vocabulary(path: Fixture.path(vocabulary)),
                          normalizer: BertNormalizer(lowercase: lowercase))
    }

    func check(_ cases: [Case], with tokenizer: Tokenizer) {
        var mismatches = 0
        for c in cases {
            let e = tokenizer.encode(c.text, pair: c.pair, maxLength: c.max_length)
            let offsets = e.offsets.map { [$0.lowerBound, $0.upperBound] }
            let same = e.ids == c.ids && offsets == c.offsets && e.wordIds == c.words
                && (c.type_ids == nil || e.typeIds == c.type_ids!)
            if !same {
                mismatches += 1
                if mismatches <= 5 {
                    Issue.record("""
                        \(c.text.debugDescription) \(c.pair.map { "+ " + $0.debugDescription } ?? "")
                          ids      \(e.ids) expected \(c.ids)
                          offsets  \(offsets) expected \(c.offsets)
                          words    \(e.wordIds) expected \(c.words)
                        """)
                }
            }
        }
        #expect(mismatches == 0, "\(mismatches) of \(cases.count) encodings differ from Hugging Face's")
    }

    /// do_lower_case false over a vocabulary without a capital letter would make every capitalised word [UNK]:
    /// the tokenizer says so; the model's own casing says nothing.
    @Test func aCasedReadingOfAnUncasedVocabularyIsSaid() throws {
        let folder = NSTemporaryDirectory() + "bertkit-casing-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.copyItem(atPath: Fixture.path("tiny-bert"), toPath: folder)
        #expect(try Tokenizer(directory: folder).warning == nil)
        try Data(#"{"do_lower_case": false}"#.utf8).write(to: URL(fileURLWithPath: folder + "/tokenizer_config.json"))
        let warning = try Tokenizer(directory: folder).warning
        #expect(warning?.contains("sets do_lower_case false, but \(folder)/vocab.txt has no capital letter") == true, "\(warning ?? "none")")
    }

    @Test func uncasedMatchesHuggingFace() throws {
        let cases = try Self.cases("tokenizer-uncased.jsonl")
        #expect(cases.count >= 2000)
        check(cases, with: try Self.tokenizer(vocabulary: "vocab-uncased.txt", lowercase: true))
    }

    @Test func casedMatchesHuggingFace() throws {
        check(try Self.cases("tokenizer-cased.jsonl"), with: try Self.tokenizer(vocabulary: "vocab-cased.txt", lowercase: false))
    }

    @Test func pairsWithLongestFirstTruncationMatchHuggingFace() throws {
        check(try Self.cases("tokenizer-pairs.jsonl"), with: try Self.tokenizer(vocabulary: "vocab-uncased.txt", lowercase: true))
    }

    /// The default model's folder has both tokenizer.json and vocab.txt: tokenizer.json is read, and gives the same
    /// encodings as Hugging Face's on all the texts and pairs above.
    @Test func theDefaultModelsTokenizerJSONMatchesHuggingFace() throws {
        let tokenizer = try Tokenizer(directory: Fixture.miniLMDirectory)
        #expect(tokenizer.source == .tokenizerFile(Fixture.miniLMDirectory + "/tokenizer.json"))
        #expect(tokenizer.encode("Hello [MASK] world").ids == [101, 7592, 103, 2088, 102])
        check(try Self.cases("tokenizer-uncased.jsonl"), with: tokenizer)
        check(try Self.cases("tokenizer-pairs.jsonl"), with: tokenizer)
    }

    /// A folder with vocab.txt alone gets BERT's tokenizer, cased as tokenizer_config.json says.
    @Test func vocabTxtAloneReadsCasingFromTokenizerConfig() throws {
        let folder = NSTemporaryDirectory() + "bertkit-vocab-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for name in ["vocab.txt", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: Fixture.miniLMDirectory + "/" + name, toPath: folder + "/" + name)
        }
        let tokenizer = try Tokenizer(directory: folder)
        #expect(tokenizer.source == .wordPieceVocabulary(BertNormalizer(lowercase: true)))
        #expect(tokenizer.encode("Hello [MASK] world").ids == [101, 7592, 103, 2088, 102])
    }

    @Test func tokenTypesAndSequenceIdsOfAPair() throws {
        let tokenizer = try Self.tokenizer(vocabulary: "vocab-uncased.txt", lowercase: true)
        let e = tokenizer.encode("a b", pair: "c")
        #expect(e.typeIds == [0, 0, 0, 0, 1, 1])
        #expect(e.sequenceIds == [nil, 0, 0, nil, 1, nil])
        #expect(e.wordIds == [nil, 0, 1, nil, 0, nil])
    }
}

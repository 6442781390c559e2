// libFuzzer harness: tokenizers on arbitrary bytes as text, alone and as pairs under truncation: BERT's over a real
// vocabulary (the uncased one of Tests/BertKitTests/Fixtures, found through BERTKIT_FUZZ_VOCAB), cased and uncased,
// and the tokenizer.json fixtures of every kind (BERTKIT_FUZZ_TOKENIZERS: WordPiece, byte-level BPE, Unigram with
// SentencePiece's character map, BPE with byte fallback, and the other normalisers and pre-tokenizers).
import Foundation

let tokenizers: [Tokenizer] = {
    let environment = ProcessInfo.processInfo.environment
    let vocabulary = try! Vocabulary(path: environment["BERTKIT_FUZZ_VOCAB"]!)
    let folder = environment["BERTKIT_FUZZ_TOKENIZERS"]!
    let kinds = ["wordpiece", "roberta-bpe", "xlmr-unigram", "bpe-bytefallback", "wordpiece-mixed"]
    return [try! Tokenizer(vocabulary: vocabulary), try! Tokenizer(vocabulary: vocabulary, normalizer: BertNormalizer(lowercase: false))]
        + kinds.map { try! Tokenizer(directory: folder + "/" + $0) }
}()

/// Loads the tokenizers before the first input: what loading allocates is then not counted as an input's leak.
/// (LeakSanitizer takes Swift's enum payload pointers, which carry the case in their spare bits, for lost.)
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    precondition(!tokenizers.isEmpty)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    let half = text.index(text.startIndex, offsetBy: text.count / 2)
    let length = text.unicodeScalars.count
    for tokenizer in tokenizers {
        let encoding = tokenizer.encode(text, maxLength: 64)
        precondition(encoding.ids.count <= 64)
        let pair = tokenizer.encode(String(text[..<half]), pair: String(text[half...]), maxLength: 16)
        precondition(pair.ids.count <= 16)
        for token in tokenizer.tokenize(text) {
            precondition(token.offsets.lowerBound >= 0 && token.offsets.upperBound <= length, "offsets \(token.offsets) outside \(length) scalars")
            precondition(Int(token.id) < tokenizer.vocabulary.count)
        }
        _ = tokenizer.decode(encoding.ids)
    }
    return 0
}

// libFuzzer harness: the tokenizer on arbitrary bytes as text, with a real vocabulary (the uncased one of
// Tests/BertKitTests/Fixtures, found through BERTKIT_FUZZ_VOCAB), cased and uncased, alone and as pairs.
import Foundation

let tokenizers: [BertTokenizer] = {
    let path = ProcessInfo.processInfo.environment["BERTKIT_FUZZ_VOCAB"]!
    let vocabulary = try! Vocabulary(path: path)
    return [try! BertTokenizer(vocabulary: vocabulary), try! BertTokenizer(vocabulary: vocabulary, normalizer: BertNormalizer(lowercase: false))]
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    let half = text.index(text.startIndex, offsetBy: text.count / 2)
    for tokenizer in tokenizers {
        let encoding = tokenizer.encode(text, maxLength: 64)
        precondition(encoding.ids.count <= 64)
        _ = tokenizer.encode(String(text[..<half]), pair: String(text[half...]), maxLength: 16)
        _ = tokenizer.tokenize(text)
    }
    return 0
}

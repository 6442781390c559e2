// libFuzzer harness: arbitrary vocabularies (the input's lines) and a text tokenized with them: the first line
// of the input is the text, the rest is vocab.txt.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    let newline = data.firstIndex(of: UInt8(ascii: "\n")) ?? data.endIndex
    let text = String(decoding: data[..<newline], as: UTF8.self)
    let special = Data("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n".utf8)
    guard let vocabulary = try? Vocabulary(data: special + data[newline...].dropFirst(), path: "vocab.txt"),
          let tokenizer = try? Tokenizer(vocabulary: vocabulary) else { return 0 }
    _ = tokenizer.encode(text, pair: text, maxLength: 32)
    return 0
}

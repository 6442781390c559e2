// libFuzzer harness: CoNLL column files, IOB2 and IOB1 (scripts/fuzz builds and runs it).
import Foundation

let labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    for scheme in [TagScheme.iob2, .iob1] {
        for (token, tag) in [(0, -1), (0, 3), (-2, 1)] {
            _ = try? CoNLLFile.parse(data, path: "input.txt", tokenColumn: token, tagColumn: tag, scheme: scheme, labels: labels)
        }
    }
    return 0
}

// libFuzzer harness: SQuAD JSON files, v1.1 and v2.0 (scripts/fuzz builds and runs it).
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    _ = try? SQuADFile.parse(data, path: "input.json")
    _ = try? SQuADFile.parse(data, path: "input.json", articles: 0..<1)
    return 0
}

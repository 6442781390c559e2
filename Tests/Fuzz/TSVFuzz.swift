// libFuzzer harness: TSV files as GLUE ships them (scripts/fuzz builds and runs it).
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    for header in [true, false] { _ = try? TSVFile(data: data, path: "input.tsv", hasHeader: header) }
    return 0
}

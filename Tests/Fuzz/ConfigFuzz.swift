// libFuzzer harness: config.json decoding and validation (scripts/fuzz builds and runs it).
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    if let config = try? BertConfig.decode(Data(bytes: bytes, count: count), path: "config.json") {
        _ = config.headSize
    }
    return 0
}

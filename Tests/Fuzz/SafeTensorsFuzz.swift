// libFuzzer harness: the safetensors header parser and tensor reads (scripts/fuzz builds and runs it).
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard let file = try? SafeTensorsFile(bytes: Data(bytes: bytes, count: count), path: "input") else { return 0 }
    for name in file.names {
        _ = try? file.floats(name)
        _ = try? file.integers(name)
    }
    return 0
}

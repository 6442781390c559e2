import Foundation

/// Writes float32 tensors as a safetensors file, atomically: the bytes go to a temporary file beside the
/// destination, which is then renamed, so a reader never sees half a file under the final name.
public struct SafeTensorsWriter {
    public struct Tensor {
        public let name: String
        public let shape: [Int]
        public let values: UnsafeBufferPointer<Float>

        public init(name: String, shape: [Int], values: UnsafeBufferPointer<Float>) {
            precondition(shape.reduce(1, *) == values.count, "\(name): shape \(shape) does not match \(values.count) values")
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    public static func write(_ tensors: [Tensor], metadata: [String: String] = ["format": "pt"], to path: String) throws {
        let ordered = tensors.sorted { $0.name < $1.name }
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        for tensor in ordered {
            let length = tensor.values.count * 4
            header[tensor.name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + length]]
            offset += length
        }
        var headerBytes = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // The data section starts 8-byte aligned; the format pads the header with spaces.
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }

        // Streamed to disk tensor by tensor: no second copy of the weights in memory.
        try AtomicFile.write(to: path) { file in
            try withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { try file.write($0) }
            try headerBytes.withUnsafeBytes { try file.write($0) }
            for tensor in ordered {
                #if _endian(little)
                try file.write(UnsafeRawBufferPointer(tensor.values))  // already the format's byte order
                #else
                try tensor.values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { try file.write($0) }
                #endif
            }
        }
    }
}

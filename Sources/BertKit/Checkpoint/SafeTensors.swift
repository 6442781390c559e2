import Foundation

/// Element types that a safetensors file may hold.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL

    public var byteSize: Int {
        switch self {
        case .F64, .I64: 8
        case .F32, .I32: 4
        case .F16, .BF16, .I16: 2
        case .I8, .U8, .BOOL: 1
        }
    }
}

/// A read-only safetensors file: an 8-byte little-endian header length, a JSON header naming each tensor's
/// dtype, shape and byte range, then the raw little-endian data. The file is memory-mapped and every header
/// entry is validated on open, so a truncated file or a header that lies fails here with the file's name.
public struct SafeTensorsFile {
    public struct Entry: Sendable {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        /// Byte range within the data section.
        public let byteRange: Range<Int>
        public var elementCount: Int { shape.reduce(1, *) }
    }

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    private let bytes: Data
    private let dataStart: Int

    /// Entry names in file order.
    public var names: [String] { entries.values.sorted { $0.byteRange.lowerBound < $1.byteRange.lowerBound }.map(\.name) }

    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CheckpointError(file: path, "file not found")
        }
        let bytes: Data
        do {
            bytes = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw CheckpointError(file: path, "cannot be read: \(error.localizedDescription)")
        }
        try self.init(bytes: bytes, path: path)
    }

    /// Parses a file's bytes; `path` names it in errors.
    public init(bytes: Data, path: String) throws {
        self.path = path
        guard bytes.count >= 8 else {
            throw CheckpointError(file: path, "is \(bytes.count) bytes long; a safetensors file starts with an 8-byte header length")
        }
        let headerLength = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw CheckpointError(file: path, "header length \(headerLength) exceeds the file size \(bytes.count): truncated or not a safetensors file")
        }
        let dataStart = 8 + Int(headerLength)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<dataStart))
        } catch {
            throw CheckpointError(file: path, "header is not valid JSON")
        }
        guard let header = json as? [String: Any] else {
            throw CheckpointError(file: path, "header is not a JSON object")
        }
        let dataLength = bytes.count - dataStart
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            entries[name] = try Self.entry(name: name, value, dataLength: dataLength, path: path)
        }
        // The tensors tile the data section, in some order, with neither overlaps nor holes (as the format
        // requires): a file whose tensors share bytes is not what it claims to be.
        var covered = 0
        for entry in entries.values.sorted(by: { ($0.byteRange.lowerBound, $0.byteRange.upperBound) < ($1.byteRange.lowerBound, $1.byteRange.upperBound) }) {
            guard entry.byteRange.lowerBound == covered else {
                throw CheckpointError(file: path, entry.byteRange.lowerBound < covered
                    ? "tensor '\(entry.name)': data_offsets [\(entry.byteRange.lowerBound), \(entry.byteRange.upperBound)] overlap another tensor's bytes"
                    : "bytes \(covered)..<\(entry.byteRange.lowerBound) of the data section belong to no tensor")
            }
            covered = entry.byteRange.upperBound
        }
        guard covered == dataLength else {
            throw CheckpointError(file: path, "the tensors cover \(covered) of the data section's \(dataLength) bytes")
        }
        self.bytes = bytes
        self.dataStart = dataStart
        self.entries = entries
        self.metadata = metadata
    }

    private static func entry(name: String, _ value: Any, dataLength: Int, path: String) throws -> Entry {
        guard let fields = value as? [String: Any],
              let dtypeName = fields["dtype"] as? String,
              let shape = fields["shape"] as? [Int],
              let offsets = fields["data_offsets"] as? [Int], offsets.count == 2
        else {
            throw CheckpointError(file: path, "tensor '\(name)': expected {dtype, shape, data_offsets: [begin, end]}")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw CheckpointError(file: path, "tensor '\(name)': unknown dtype '\(dtypeName)'")
        }
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw CheckpointError(file: path, "tensor '\(name)': negative dimension in shape \(shape)")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin >= 0, begin <= end else {
            throw CheckpointError(file: path, "tensor '\(name)': data_offsets [\(begin), \(end)] are not an increasing range")
        }
        guard end <= dataLength else {
            throw CheckpointError(file: path, "tensor '\(name)': data ends at byte \(end) but the data section holds \(dataLength) bytes (truncated file?)")
        }
        // Counted without overflow: a lying header may claim a shape of [2^62, 2^62].
        var expected = dtype.byteSize
        for dimension in shape {
            let (product, overflow) = expected.multipliedReportingOverflow(by: dimension)
            guard !overflow else {
                throw CheckpointError(file: path, "tensor '\(name)': shape \(shape) needs more bytes than the data section's \(dataLength)")
            }
            expected = product
        }
        guard end - begin == expected else {
            throw CheckpointError(file: path, "tensor '\(name)': \(dtype) \(shape) needs \(expected) bytes but data_offsets span \(end - begin)")
        }
        return Entry(name: name, dtype: dtype, shape: shape, byteRange: begin..<end)
    }

    public func entry(_ name: String) throws -> Entry {
        guard let entry = entries[name] else { throw CheckpointError(file: path, "no tensor named '\(name)'") }
        return entry
    }

    /// Copies a floating-point tensor into `destination` as float32 (F16, BF16 and F64 are converted).
    public func readFloats(_ name: String, into destination: UnsafeMutablePointer<Float>) throws {
        let entry = try self.entry(name)
        let count = entry.elementCount
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + dataStart + entry.byteRange.lowerBound
            switch entry.dtype {
            case .F32:
                for i in 0..<count { destination[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
            case .F16:
                for i in 0..<count { destination[i] = Float(halfBits: UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
            case .BF16:
                for i in 0..<count { destination[i] = Float(bitPattern: UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
            case .F64:
                for i in 0..<count { destination[i] = Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
            default:
                break
            }
        }
        guard [.F32, .F16, .BF16, .F64].contains(entry.dtype) else {
            throw CheckpointError(file: path, "tensor '\(name)' has dtype \(entry.dtype); expected a floating-point dtype")
        }
    }

    /// A floating-point tensor as float32 values.
    public func floats(_ name: String) throws -> [Float] {
        let count = try entry(name).elementCount
        return try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try readFloats(name, into: buffer.baseAddress!)
            initialized = count
        }
    }

    /// An integer tensor as `Int` values.
    public func integers(_ name: String) throws -> [Int] {
        let entry = try self.entry(name)
        return try bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + dataStart + entry.byteRange.lowerBound
            return try (0..<entry.elementCount).map { i in
                switch entry.dtype {
                case .I64: Int(Int64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
                case .I32: Int(Int32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
                case .I16: Int(Int16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
                case .I8: Int(base.loadUnaligned(fromByteOffset: i, as: Int8.self))
                case .U8, .BOOL: Int(base.loadUnaligned(fromByteOffset: i, as: UInt8.self))
                default: throw CheckpointError(file: path, "tensor '\(name)' has dtype \(entry.dtype); expected an integer dtype")
                }
            }
        }
    }
}

extension Float {
    /// The value of an IEEE 754 binary16 bit pattern, decoded without relying on a platform `Float16` type.
    init(halfBits h: UInt16) {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F {
            self = Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        } else if exponent == 0 {
            // Zero or subnormal: mantissa · 2^-24.
            let magnitude = Float(mantissa) * 0x1p-24
            self = Float(bitPattern: sign | magnitude.bitPattern)
        } else {
            self = Float(bitPattern: sign | (UInt32(exponent - 15 + 127) << 23) | (mantissa << 13))
        }
    }
}

import Foundation

/// A checksum of a file's bytes, to find corruption (a flipped bit, a truncated or replaced file) in what the
/// toolkit wrote itself, such as a training checkpoint: the length and two running sums of the file's 64-bit
/// words (Fletcher's, modulo 2^64; the tail zero-padded), as hex. Any single flipped bit changes the first
/// sum, and the second depends on where the words are. Fast enough to check a checkpoint in a fraction of the
/// time it takes to write; not a defence against tampering (results.db's artifacts carry SHA-256 for that).
public enum FileChecksum {
    public static func of(_ path: String) throws -> String {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw CheckpointError(file: path, "cannot be read (\(error.localizedDescription))")
        }
        var a: UInt64 = 0, b: UInt64 = 0
        data.withUnsafeBytes { bytes in
            let words = bytes.count / 8
            for i in 0..<words {
                a &+= UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
                b &+= a
            }
            var tail: UInt64 = 0
            for (k, byte) in bytes[(8 * words)...].enumerated() { tail |= UInt64(byte) << (8 * UInt64(k)) }
            a &+= tail
            b &+= a
        }
        return "\(data.count):" + String(a, radix: 16) + ":" + String(b, radix: 16)
    }
}

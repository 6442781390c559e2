import Crypto
import Foundation

/// The SHA-256 of an artifact recorded in results.db (swift-crypto's, which runs the CPU's SHA instructions where
/// it has them).
package enum FileDigest {
    /// The hex digest of a file, or of every file under a folder (paths sorted; each file's relative path and bytes
    /// hashed in turn), read in 1 MiB chunks.
    package static func sha256(ofFile path: String) throws -> String {
        var hasher = SHA256()
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        let files = isDirectory.boolValue
            ? (FileManager.default.subpaths(atPath: path) ?? []).sorted().filter {
                var d: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: path + "/" + $0, isDirectory: &d)
                return !d.boolValue
            }
            : [""]
        for file in files {
            let full = file.isEmpty ? path : path + "/" + file
            if !file.isEmpty { hasher.update(data: Data(file.utf8)) }
            guard let handle = FileHandle(forReadingAtPath: full) else {
                throw DataError(file: full, "cannot be read to compute its checksum")
            }
            defer { try? handle.close() }
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

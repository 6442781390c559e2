import Foundation

/// Writes files so that the final name only ever holds a complete file.
public enum AtomicFile {
    /// Writes `data` to a temporary name in the destination's folder, then renames it into place.
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { file in try data.withUnsafeBytes { try file.write($0) } }
    }

    /// Streams a file through `body` to a temporary name in the destination's folder, then renames it into
    /// place; the file's bytes are never all in memory at once (a model's weights are hundreds of MB).
    public static func write(to path: String, _ body: (Writer) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp").path
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw CheckpointError(file: path, "cannot create \(temporary) (\(SystemError.text(errno)))") }
        var open = true
        do {
            try FaultInjection.point("write \(temporary)", path)
            try body(Writer(descriptor: descriptor, path: path))
            try FaultInjection.point("sync \(temporary)", path)
            let synced = fsync(descriptor) == 0
            open = false
            guard close(descriptor) == 0, synced else {
                throw CheckpointError(file: path, "cannot finish writing \(temporary) (\(SystemError.text(errno)))")
            }
            try FaultInjection.point("move \(temporary) into place", path)
            if rename(temporary, path) != 0 {
                throw CheckpointError(file: path, "cannot move the finished file into place (\(SystemError.text(errno)))")
            }
        } catch {
            if open { close(descriptor) }
            unlink(temporary)
            throw error
        }
    }

    /// The open temporary file of `write(to:_:)`.
    public struct Writer {
        let descriptor: Int32
        let path: String

        /// Appends `bytes`, retrying short writes.
        public func write(_ bytes: UnsafeRawBufferPointer) throws {
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw CheckpointError(file: path, "cannot write (\(SystemError.text(errno)))")
                }
                offset += written
            }
        }
    }
}

/// What the system said, as a person reads it.
enum SystemError {
    /// `strerror`'s text for an errno: "No space left on device", "File too large".
    static func text(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// The reason inside a Foundation error about a file (its POSIX error's text), instead of the error's
    /// domain and code.
    static func reason(_ error: Error) -> String {
        let error = error as NSError
        if error.domain == NSPOSIXErrorDomain { return text(Int32(error.code)) }
        if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return text(Int32(underlying.code))
        }
        return error.localizedDescription
    }
}

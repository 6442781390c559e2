import Foundation

/// Model folders are written whole or not at all: assembled under a temporary name beside the destination,
/// then renamed into place.
public enum ModelFolder {
    /// A fresh temporary folder beside `destination`, for assembling its replacement.
    static func staging(for destination: URL) throws -> URL {
        let parent = destination.deletingLastPathComponent()
        let staging = parent.appendingPathComponent(".\(destination.lastPathComponent).partial-\(ProcessInfo.processInfo.processIdentifier)")
        do {
            try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
            removeAbandonedStaging(in: parent.path)
            // A leftover of this process's own (same name) must go: the new folder is never assembled on top of it.
            if FileManager.default.fileExists(atPath: staging.path) { try FileManager.default.removeItem(at: staging) }
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError(file: destination.path, "cannot be written (\(SystemError.reason(error)))")
        }
        return staging
    }

    /// Moves `staging` to `destination`, replacing a previous folder there with two renames.
    static func replace(_ destination: URL, with staging: URL) throws {
        let fm = FileManager.default
        var old: URL? = nil
        if fm.fileExists(atPath: destination.path) {
            old = staging.deletingLastPathComponent()
                .appendingPathComponent(".\(destination.lastPathComponent).old-\(ProcessInfo.processInfo.processIdentifier)")
            try? fm.removeItem(at: old!)
            guard rename(destination.path, old!.path) == 0 else {
                throw CheckpointError(file: destination.path, "cannot move the previous folder aside (\(SystemError.text(errno)))")
            }
        }
        guard rename(staging.path, destination.path) == 0 else {
            throw CheckpointError(file: destination.path, "cannot move the new folder into place (\(SystemError.text(errno)))")
        }
        syncDirectory(staging.deletingLastPathComponent().path)
        if let old { try? fm.removeItem(at: old) }
    }

    /// A folder is replaced only by its own kind: never a file, nor a folder of other things (no config.json,
    /// no trainer_state.json), which replacing would delete.
    static func checkReplaceable(_ path: String) throws {
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path), !FileManager.default.fileExists(atPath: path) {
            throw CheckpointError(file: path, "is a link to \(target), which does not exist; not replaced by a model folder")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue else { throw CheckpointError(file: path, "is a file; not replaced by a model folder") }
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        guard contents.isEmpty || contents.contains("config.json") || contents.contains("trainer_state.json") else {
            throw CheckpointError(file: path, "is a folder of other files (no config.json); not replaced by a model folder")
        }
    }

    /// Flushes a folder's entries (a rename into it) to disk.
    static func syncDirectory(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    /// Cleans up after a process that died while replacing a folder in `parent`: its half-written staging
    /// folders (`.NAME.partial-PID`) are removed, and a previous folder it had moved aside (`.NAME.old-PID`)
    /// goes back into place if the new one never arrived. Folders of processes still alive are left alone.
    static func removeAbandonedStaging(in parent: String) {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: parent)) ?? [] where name.hasPrefix(".") {
            for marker in [".partial-", ".old-"] {
                guard let range = name.range(of: marker, options: .backwards), let pid = Int32(name[range.upperBound...]),
                      kill(pid, 0) != 0 && errno == ESRCH else { continue }
                let path = parent + "/" + name
                let destination = parent + "/" + name.dropFirst()[..<name.dropFirst().range(of: marker, options: .backwards)!.lowerBound]
                if marker == ".old-" && !fm.fileExists(atPath: destination) && rename(path, destination) == 0 { continue }
                try? fm.removeItem(atPath: path)
            }
        }
    }

    /// Assembles a folder with `fill` and moves it to `directory`; on failure nothing is left behind.
    public static func write(to directory: String, _ fill: (URL) throws -> Void) throws {
        let destination = URL(fileURLWithPath: directory).standardizedFileURL
        try checkReplaceable(destination.path)
        let staging = try staging(for: destination)
        do {
            try fill(staging)
            // On disk before the rename: a crash never leaves a complete-looking folder with empty files.
            for name in try FileManager.default.contentsOfDirectory(atPath: staging.path) {
                try FaultInjection.point("sync \(name) to disk", destination.path)
                let descriptor = open(staging.appendingPathComponent(name).path, O_RDONLY)
                guard descriptor >= 0, fsync(descriptor) == 0 else {
                    if descriptor >= 0 { close(descriptor) }
                    throw CheckpointError(file: destination.path, "cannot sync \(name) to disk (\(SystemError.text(errno)))")
                }
                close(descriptor)
            }
            syncDirectory(staging.path)
            try FaultInjection.point("move the new folder into place", destination.path)
            try replace(destination, with: staging)
        } catch {
            try? FileManager.default.removeItem(at: staging)
            throw error
        }
    }

    /// Copies a model folder to `destination`, atomically.
    public static func copy(from source: String, to destination: String) throws {
        try write(to: destination) { staging in
            for name in try FileManager.default.contentsOfDirectory(atPath: source) {
                do { try FileManager.default.copyItem(atPath: source + "/" + name, toPath: staging.appendingPathComponent(name).path) } catch {
                    throw CheckpointError(file: destination, "cannot copy \(name) there (\(SystemError.reason(error)))")
                }
            }
        }
    }
}

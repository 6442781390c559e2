import Foundation

/// Model folders are written whole or not at all: assembled under a temporary name beside the destination,
/// then renamed into place.
public enum ModelFolder {
    /// A fresh temporary folder beside `destination`, for assembling its replacement.
    static func staging(for destination: URL) throws -> URL {
        let parent = destination.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        let staging = parent.appendingPathComponent(".\(destination.lastPathComponent).partial-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.removeItem(at: staging)
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
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
                throw CheckpointError(file: destination.path, "cannot move the previous folder aside (errno \(errno))")
            }
        }
        guard rename(staging.path, destination.path) == 0 else {
            throw CheckpointError(file: destination.path, "cannot move the new folder into place (errno \(errno))")
        }
        if let old { try? fm.removeItem(at: old) }
    }

    /// Assembles a folder with `fill` and moves it to `directory`; on failure nothing is left behind.
    public static func write(to directory: String, _ fill: (URL) throws -> Void) throws {
        let destination = URL(fileURLWithPath: directory).standardizedFileURL
        let staging = try staging(for: destination)
        do {
            try fill(staging)
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
                try FileManager.default.copyItem(atPath: source + "/" + name, toPath: staging.appendingPathComponent(name).path)
            }
        }
    }
}

import Foundation

/// The process's peak resident memory (Linux's VmHWM), which can be reset to the current resident size so
/// that one process measures several configurations in turn.
enum PeakMemory {
    /// Starts a new peak at the current resident size (writing 5 to `/proc/self/clear_refs`).
    static func reset() {
        guard let file = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return }
        file.write(Data("5".utf8))
        try? file.close()
    }

    /// The peak resident memory since the start or the last `reset()`, in MB (MiB, as /usr/bin/time reports).
    static var megabytes: Double {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }
        let kilobytes = line?.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Double($0) } ?? 0
        return kilobytes / 1024
    }
}

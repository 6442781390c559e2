import Foundation

/// This process's resident memory, from Linux's `/proc/self/status`, in MB (MiB, as /usr/bin/time reports).
public enum ProcessMemory {
    /// The resident memory now (VmRSS).
    public static var residentMegabytes: Double { field("VmRSS:") }

    /// The peak resident memory since the start or the last `resetPeak()` (VmHWM).
    public static var peakMegabytes: Double { field("VmHWM:") }

    /// Starts a new peak at the current resident size (writing 5 to `/proc/self/clear_refs`), so that one
    /// process can measure several configurations in turn.
    public static func resetPeak() {
        guard let file = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return }
        file.write(Data("5".utf8))
        try? file.close()
    }

    private static func field(_ name: String) -> Double {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix(name) }
        let kilobytes = line?.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Double($0) } ?? 0
        return kilobytes / 1024
    }
}

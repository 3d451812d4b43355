import Foundation

/// The process's own memory, as the kernel counts it (Linux /proc/self/status).
public enum ProcessMemory {
    /// Peak resident set size so far (VmHWM), in bytes; nil where /proc is not there.
    public static func peakResidentBytes() -> Int? { statusField("VmHWM:") }

    /// Current resident set size (VmRSS), in bytes.
    public static func residentBytes() -> Int? { statusField("VmRSS:") }

    private static func statusField(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            // "VmHWM:\t  123456 kB"
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            return fields.count >= 2 ? Int(fields[1]).map { $0 * 1024 } : nil
        }
        return nil
    }
}

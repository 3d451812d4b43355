import Foundation
#if canImport(CMalloc)
import CMalloc
#endif

/// The process's own memory, as the kernel counts it (Linux /proc/self/status).
public enum ProcessMemory {
    /// Peak resident set size so far (VmHWM), in bytes; nil where /proc is not there.
    public static func peakResidentBytes() -> Int? { statusField("VmHWM:") }

    /// Current resident set size (VmRSS), in bytes.
    public static func residentBytes() -> Int? { statusField("VmRSS:") }

    /// Makes glibc's malloc hand large blocks back to the kernel as soon as they are freed: blocks of
    /// 256 KiB and more are mapped on their own, and a free heap top over 1 MiB is trimmed. By
    /// default the mapping threshold rises to the largest block freed so far (up to 32 MiB), so a
    /// round's messages, freed, stayed resident as heap: a worker grew by ~35 MB over its first
    /// rounds. The training step allocates nothing, so the extra mappings cost nothing there.
    public static func returnFreedMemoryPromptly() {
        #if canImport(CMalloc)
        _ = mallopt(M_MMAP_THRESHOLD, 256 << 10)
        _ = mallopt(M_TRIM_THRESHOLD, 1 << 20)
        #endif
    }

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

import Foundation
import LTEBase

/// What the machine has — memory and disk — checked before a large allocation or file, so that a
/// job too big for the machine ends with one line saying so instead of a crash part way through.
public enum SystemResources {
    /// Physical memory, in bytes.
    public static var physicalMemory: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory) }

    /// Memory a new allocation can still get: MemAvailable from /proc/meminfo (free plus
    /// reclaimable cache), or physical memory where that is not there.
    public static var availableMemory: Int {
        if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) {
            for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                if fields.count >= 2, let kb = Int(fields[1]) { return kb * 1024 }
            }
        }
        return physicalMemory
    }

    /// Free bytes on the file system that holds `url` (or its nearest existing parent); nil when unknown.
    public static func freeDisk(at url: URL) -> Int? {
        var probe = url.standardizedFileURL
        while !FileManager.default.fileExists(atPath: probe.path), probe.path != "/" { probe.deleteLastPathComponent() }
        let attributes = try? FileManager.default.attributesOfFileSystem(forPath: probe.path)
        return (attributes?[.systemFreeSize] as? NSNumber)?.intValue
    }

    /// Throws "`what` needs about N GB of memory, the machine has M GB available" when `bytes` will not fit.
    public static func requireMemory(_ bytes: Int, for what: String) throws {
        let available = availableMemory
        guard bytes <= available else {
            throw LTEError("\(what) needs about \(gigabytes(bytes)) of memory, the machine has \(gigabytes(available)) available (\(gigabytes(physicalMemory)) in all)")
        }
    }

    /// Throws "`what` needs about N GB of disk in DIR, M GB are free" when `bytes` will not fit.
    public static func requireDisk(_ bytes: Int, at url: URL, for what: String) throws {
        guard let free = freeDisk(at: url), bytes > free else { return }
        throw LTEError("\(what) needs about \(gigabytes(bytes)) of disk in \(url.path), \(gigabytes(free)) are free")
    }

    public static func gigabytes(_ bytes: Int) -> String { String(format: "%.1f GB", Double(bytes) / 1e9) }
}

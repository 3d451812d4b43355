import Foundation
import LTEBase
import LTENumerics

/// Appends one JSON object per line to a file (`metrics.jsonl`, `rounds.jsonl`), flushed each time
/// so a crash loses at most the line being written. Keys keep the order they are given in.
public final class MetricsLog {
    public let url: URL
    private let handle: FileHandle

    public init(url: URL, truncate: Bool = false) throws {
        self.url = url
        let fm = FileManager.default
        if truncate || !fm.fileExists(atPath: url.path) {
            guard fm.createFile(atPath: url.path, contents: nil) else { throw LTEError("cannot create \(url.path)") }
        }
        guard let h = try? FileHandle(forWritingTo: url) else { throw LTEError("cannot open \(url.path) for writing") }
        handle = h
        handle.seekToEndOfFile()
    }

    deinit { try? handle.close() }

    public func append(_ fields: KeyValuePairs<String, MetricValue?>) {
        var parts: [String] = []
        for (k, v) in fields { if let v { parts.append("\"\(k)\":\(v.json)") } }
        handle.write(Data(("{" + parts.joined(separator: ",") + "}\n").utf8))
    }
}

/// A JSON scalar for metrics lines.
public enum MetricValue {
    case int(Int), float(Double), string(String), ints([Int])

    var json: String {
        switch self {
        case .int(let i): return String(i)
        case .float(let d): return d.isFinite ? String(d) : "null"
        case .string(let s): return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        case .ints(let a): return "[" + a.map(String.init).joined(separator: ",") + "]"
        }
    }
}

import Foundation
import LTEBase

/// Edits of an existing metrics.jsonl.
enum MetricsFile {
    /// Removes lines logged after `step` (by a run that went on past its last checkpoint and then
    /// stopped), so a resumed run's lines follow on without repeats.
    static func dropLines(after step: Int, in url: URL) throws {
        guard let data = FileManager.default.contents(atPath: url.path) else { return }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        let kept = lines.filter { line in
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                  let logged = (object["step"] as? NSNumber)?.intValue else { return true }
            return logged <= step
        }
        guard kept.count != lines.count else { return }
        do { try Data(kept.map { $0 + "\n" }.joined().utf8).write(to: url, options: .atomic) } catch {
            throw LTEError("cannot rewrite \(url.path): \(error.localizedDescription)")
        }
    }
}

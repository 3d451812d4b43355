import Foundation

/// Text a peer sent, made safe to quote in an error reply or a log line (issue 20, item 17).
///
/// A refusal that quotes a 64 KiB tensor name is itself over the 64 KiB string limit, so it could not
/// be encoded and the peer got no answer at all. Everything a message quotes from its input goes
/// through `quote`, and `ErrorMessage` clamps its whole text as a last guard.
public enum WireText {
    /// Longest quotation of peer-supplied text, in UTF-8 bytes.
    public static let maxQuotedBytes = 80
    /// Longest error message a node sends, in UTF-8 bytes: well under any string limit.
    public static let maxErrorBytes = 2048

    /// `text` as is when short, else its first bytes (whole characters) and how long it was.
    public static func quote(_ text: String, maxBytes: Int = maxQuotedBytes) -> String {
        let n = text.utf8.count
        guard n > maxBytes else { return text }
        return "\(prefix(text, bytes: maxBytes))… (\(n) bytes)"
    }

    /// The longest prefix of whole characters within `bytes` UTF-8 bytes.
    static func prefix(_ text: String, bytes: Int) -> String {
        var used = 0
        var out = ""
        for c in text {
            let size = c.utf8.count
            guard used + size <= bytes else { break }
            out.append(c)
            used += size
        }
        return out
    }
}

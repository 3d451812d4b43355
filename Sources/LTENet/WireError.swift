import LTEBase

/// Why a frame or a message was refused, as one line that names the field and the numbers.
///
/// Every check the decoder makes has its own `Kind`, so tests (and the server's error replies) can
/// tell "truncated" from "bad MAC" without parsing text; `message` is what a person reads in a log.
public struct WireError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable {
        case truncated          // fewer bytes than a field needs
        case badMagic           // not an LTE frame at all
        case unsupportedVersion // a frame from a newer or older build
        case unknownType        // message type number this build does not know
        case unknownFlags       // reserved flag bits set
        case tooLarge           // frame or field over its configured limit
        case lengthMismatch     // declared body length disagrees with the frame
        case badChecksum        // SHA-256 trailer does not match (corruption)
        case badMAC             // HMAC trailer does not match (wrong secret or tampering)
        case authentication     // authenticated frame without a secret, or the reverse
        case invalidString      // not UTF-8
        case invalidTensor      // rank, shape, overflow, duplicate name
        case invalidValue       // a number out of range, counts that disagree, duplicates
        case trailingBytes      // bytes left over after the last field
        case nonFinite          // NaN or ±Inf where the server needs finite numbers
        case replayed           // a message already seen, or too old to tell
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "wire: \(message)" }

    /// The project-wide error type, for callers that only print.
    public var lteError: LTEError { LTEError(description) }
}

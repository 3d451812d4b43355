import CNNG
import LTEBase

/// A failed nng call, as one line: what was attempted and nng's own reason (`nng_strerror`).
///
/// Callers branch on the predicates (a server loop treats `isTimeout` as "nothing yet", a worker
/// treats `isConnectionReset` as "server went away: reconnect and push again"), and print the rest.
public struct NNGError: Error, CustomStringConvertible, Equatable, Sendable {
    public let code: Int32
    public let operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    public var reason: String { String(cString: nng_strerror(code)) }
    public var description: String { "nng: \(operation): \(reason)" }
    public var lteError: LTEError { LTEError(description) }

    public var isTimeout: Bool { code == Self.code(NNG_ETIMEDOUT) }
    public var isClosed: Bool { code == Self.code(NNG_ECLOSED) }
    public var isCanceled: Bool { code == Self.code(NNG_ECANCELED) }
    public var isConnectionReset: Bool { code == Self.code(NNG_ECONNRESET) }
    public var isNotSupported: Bool { code == Self.code(NNG_ENOTSUP) }

    static func code(_ e: nng_errno_enum) -> Int32 { Int32(e.rawValue) }

    /// Throws unless `rv` is 0.
    static func check(_ rv: Int32, _ operation: @autoclosure () -> String) throws {
        if rv != 0 { throw NNGError(code: rv, operation: operation()) }
    }
}

/// nng takes durations as Int32 milliseconds, with -1 meaning "forever".
func nngDuration(_ d: Duration?) -> nng_duration {
    guard let d else { return nng_duration(NNG_DURATION_INFINITE) }
    let (seconds, attoseconds) = d.components
    if seconds < 0 { return 0 }
    let ms = seconds.multipliedReportingOverflow(by: 1000)
    if ms.overflow || ms.partialValue > Int64(Int32.max) { return Int32.max }
    return nng_duration(min(ms.partialValue + attoseconds / 1_000_000_000_000_000, Int64(Int32.max)))
}

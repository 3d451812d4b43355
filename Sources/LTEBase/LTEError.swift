/// The one error type users see: a single line that names what was wrong and where.
/// Every layer throws it for bad input (files, configs, flags, messages); the CLI prints
/// `error: <message>` and exits non-zero.
public struct LTEError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

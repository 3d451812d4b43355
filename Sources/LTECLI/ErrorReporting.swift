import ArgumentParser
import Foundation
import LTEBase
import LTENumerics

/// Runs a command's body and turns an `LTEError` into what users expect from a Unix tool: one line,
/// `error: <message>`, on stderr, and exit status 1 — no stack trace, no Swift type names.
/// Other errors (argument parsing, `ExitCode`) pass through to ArgumentParser unchanged.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as LTEError {
        printError(error.message)
        throw ExitCode(1)
    }
}

/// Async variant for `AsyncParsableCommand`s.
func runReportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as LTEError {
        printError(error.message)
        throw ExitCode(1)
    }
}

/// Writes `error: <message>` and a newline to stderr.
func printError(_ message: String) {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
}

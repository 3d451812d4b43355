import Foundation
import LTEBase

/// A child process whose output lines are shown with its name in front.
final class Child {
    let name: String
    let process = Process()
    var reported = false

    init(name: String, executable: String, arguments: [String]) throws {
        self.name = name
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let lines = PrefixedLines(prefix: "[\(name)] ")
        pipe.fileHandleForReading.readabilityHandler = { lines.take($0) }
        do { try process.run() } catch { throw LTEError("cannot start \(name): \(error.localizedDescription)") }
    }

    var isRunning: Bool { process.isRunning }
    var status: Int32 { process.isRunning ? 0 : process.terminationStatus }
    /// True when it ended in any way but exit status 0.
    var failed: Bool { !process.isRunning && (process.terminationReason == .uncaughtSignal || process.terminationStatus != 0) }
    /// How it ended, for people: "exited with status 3" or "was killed by signal 9 (SIGKILL)".
    var ending: String {
        guard process.terminationReason == .uncaughtSignal else { return "exited with status \(process.terminationStatus)" }
        let signal = process.terminationStatus
        let name = Self.signalNames[signal].map { " (\($0))" } ?? ""
        return "was killed by signal \(signal)\(name)"
    }

    private static let signalNames: [Int32: String] = [
        SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP", SIGABRT: "SIGABRT",
        SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV", SIGPIPE: "SIGPIPE", SIGTERM: "SIGTERM",
    ]

    /// The file of the running `lte`, to start more of it. Not `CommandLine.arguments[0]`: found on
    /// PATH, that is a bare name, which resolved against the working directory names nothing.
    static var currentExecutable: String {
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return resolved }
        if let path = Bundle.main.executablePath { return path }
        return URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
    }
    func terminate() { if process.isRunning { process.terminate() } }
    func wait() { process.waitUntilExit() }
}

/// Splits a child's output into lines and shows each with the child's name in front.
final class PrefixedLines: @unchecked Sendable {
    let prefix: String
    private var buffer = Data()
    private let lock = NSLock()

    init(prefix: String) { self.prefix = prefix }

    func take(_ handle: FileHandle) {
        let chunk = handle.availableData
        lock.lock(); defer { lock.unlock() }
        if chunk.isEmpty {   // end of output
            if !buffer.isEmpty { say(prefix + String(decoding: buffer, as: UTF8.self)) }
            buffer = Data()
            handle.readabilityHandler = nil
            return
        }
        buffer.append(chunk)
        while let nl = buffer.firstIndex(of: 0x0A) {
            say(prefix + String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self))
            buffer.removeSubrange(buffer.startIndex...nl)
        }
    }
}

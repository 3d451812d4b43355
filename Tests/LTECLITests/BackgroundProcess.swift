import Foundation
import LTETestSupport
import XCTest

/// An `lte` process running beside the test (server, worker), its output collected in files.
final class BackgroundLTE {
    let process = Process()
    let name: String
    private let outURL: URL

    init(_ name: String, _ args: [String]) throws {
        guard let url = LTEBinary.url else { throw LTEBinaryMissing() }
        self.name = name
        outURL = FileManager.default.temporaryDirectory.appendingPathComponent("lte-bg-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL)
        process.executableURL = url
        process.arguments = args
        process.currentDirectoryURL = packageRoot
        process.standardOutput = out
        process.standardError = out
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: outURL)
    }

    var output: String { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }

    /// Waits at most `seconds`; a process still running then is killed and the wait fails.
    @discardableResult
    func wait(seconds: Double) -> Int32? {
        let end = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit(); return nil }
        return process.terminationStatus
    }

    func kill9() { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }

    /// The 64-hex weights hash after the last `weights ` in the output.
    var finalHash: String? {
        guard let r = output.range(of: "weights ", options: .backwards) else { return nil }
        return String(output[r.upperBound...].prefix(64))
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's choice for port 0).
func freeLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

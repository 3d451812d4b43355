import Foundation
import LTETestSupport
import XCTest

/// The package root, found from this file's path (Tests/LTECLITests/LTEBinary.swift).

/// What a finished `lte` process left behind.
struct LTEResult {
    var status: Int32
    var stdout: String
    var stderr: String

    var stderrLines: [Substring] { stderr.split(separator: "\n", omittingEmptySubsequences: true) }
    var summary: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
}

/// The release `lte` binary these tests drive as a subprocess, as users run it.
enum LTEBinary {
    /// Next to the running test bundle (same build products directory) if it is there; otherwise the
    /// newest `<packageRoot>/.build*/release/lte`.
    static let url: URL? = {
        let fm = FileManager.default
        var candidates: [URL] = []
        for path in [Bundle.main.executablePath, CommandLine.arguments.first].compactMap({ $0 }) {
            var dir = URL(fileURLWithPath: path).deletingLastPathComponent()
            // On macOS the runner sits inside an .xctest bundle, itself in the products directory.
            while dir.pathExtension == "xctest" || dir.lastPathComponent == "MacOS" || dir.lastPathComponent == "Contents" {
                dir = dir.deletingLastPathComponent()
            }
            candidates.append(dir.appendingPathComponent("lte"))
        }
        if let found = candidates.first(where: { fm.isExecutableFile(atPath: $0.path) }) { return found }
        let builds = ((try? fm.contentsOfDirectory(atPath: packageRoot.path)) ?? []).filter { $0.hasPrefix(".build") }
        let built = builds.map { packageRoot.appendingPathComponent($0).appendingPathComponent("release/lte") }
            .filter { fm.isExecutableFile(atPath: $0.path) }
        func modified(_ url: URL) -> Date {
            ((try? fm.attributesOfItem(atPath: url.resolvingSymlinksInPath().path))?[.modificationDate] as? Date) ?? .distantPast
        }
        return built.max { modified($0) < modified($1) }
    }()

    /// Runs `lte args…` to completion; output goes through files, so a chatty process never blocks on
    /// a full pipe. `directory` is where it runs (the package root by default); with `executable`, it
    /// is started as that name looked up on `environment`'s PATH, as a shell would.
    static func run(_ args: [String], directory: URL? = nil, executable: String? = nil, environment: [String: String]? = nil,
                    file: StaticString = #filePath, line: UInt = #line) throws -> LTEResult {
        guard let url else {
            XCTFail("no release lte binary next to the tests or under \(packageRoot.path)/.build*/release — build it with swift build -c release",
                    file: file, line: line)
            throw LTEBinaryMissing()
        }
        let fm = FileManager.default
        let scratch = fm.temporaryDirectory.appendingPathComponent("lte-cli-out-\(UUID().uuidString)")
        try fm.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("stdout"), errURL = scratch.appendingPathComponent("stderr")
        _ = fm.createFile(atPath: outURL.path, contents: nil)
        _ = fm.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        let process = Process()
        if let executable {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + args
        } else {
            process.executableURL = url
            process.arguments = args
        }
        if let environment { process.environment = environment }
        process.currentDirectoryURL = directory ?? packageRoot
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        return LTEResult(status: process.terminationStatus,
                         stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                         stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }

    /// Runs and expects success.
    @discardableResult
    static func succeed(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> LTEResult {
        let result = try run(args, file: file, line: line)
        XCTAssertEqual(result.status, 0, "lte \(args.joined(separator: " ")) failed:\n\(result.summary)", file: file, line: line)
        return result
    }

    /// Runs and expects failure with exactly one line on stderr, `error: …`, containing every fragment.
    static func fail(_ args: [String], _ fragments: String..., file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try run(args, file: file, line: line)
        XCTAssertNotEqual(result.status, 0, "lte \(args.joined(separator: " ")) should have failed:\n\(result.summary)", file: file, line: line)
        XCTAssertEqual(result.stderrLines.count, 1, "expected exactly one stderr line:\n\(result.summary)", file: file, line: line)
        let message = result.stderrLines.first.map(String.init) ?? ""
        XCTAssertTrue(message.hasPrefix("error: "), "stderr line is not an error line: \(message)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(message.contains(fragment), "\"\(message)\" lacks \"\(fragment)\"", file: file, line: line)
        }
    }
}

struct LTEBinaryMissing: Error {}

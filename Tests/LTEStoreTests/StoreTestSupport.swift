import Foundation
import LTENumerics
import XCTest

extension XCTestCase {
    /// A fresh empty directory, removed when the test ends.
    func makeStoreTemporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lte-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// Asserts that `body` throws a one-line `LTEError` whose message contains every fragment.
    func assertThrowsLTEError<T>(_ body: @autoclosure () throws -> T, _ fragments: String...,
                                 file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("expected an LTEError containing \(fragments)", file: file, line: line)
        } catch let error as LTEError {
            for fragment in fragments {
                XCTAssertTrue(error.message.contains(fragment), "\"\(error.message)\" does not contain \"\(fragment)\"", file: file, line: line)
            }
            XCTAssertFalse(error.message.contains("\n"), "error message is not one line: \(error.message)", file: file, line: line)
        } catch {
            XCTFail("expected an LTEError, got \(error)", file: file, line: line)
        }
    }
}

/// Runs a program to completion; returns its exit status and what it wrote to stdout and stderr.
@discardableResult
func runProgram(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    if let environment { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Read before waiting, so a full pipe cannot block the child.
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// `git --git-dir <repo> <arguments>`, failing the test on a non-zero exit.
func git(_ repo: URL, _ arguments: String..., file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let r = try runProgram("/usr/bin/git", ["--git-dir", repo.path] + arguments)
    XCTAssertEqual(r.status, 0, "git \(arguments.joined(separator: " ")) failed: \(r.err)", file: file, line: line)
    return r.out
}

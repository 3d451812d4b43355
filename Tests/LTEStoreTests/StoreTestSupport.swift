import Foundation
import LTENumerics
import XCTest


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

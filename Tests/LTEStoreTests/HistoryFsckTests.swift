import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEStore

/// fsck reads every object, follows every ref and replays every round; damage of any kind is one
/// clear error.
final class HistoryFsckTests: XCTestCase {
    private func standardRun() throws -> SimulatedServer {
        try SimulatedServer.standardRun(at: try makeTemporaryDirectory().appendingPathComponent("history.git"))
    }

    /// The loose file holding object `id`, made writable (git writes them read-only).
    private func objectFile(_ history: MergeHistory, _ id: String) throws -> URL {
        let url = history.url.appendingPathComponent("objects/\(id.prefix(2))/\(id.dropFirst(2))")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: url.path)
        return url
    }

    func testFsckReadsEveryObjectAndReplaysEveryRound() throws {
        let s = try standardRun()
        try s.history.branch(from: "5", name: "side")
        let report = try s.history.fsck()
        XCTAssertEqual(report.lines, ["main", "side"])
        XCTAssertEqual(report.rounds, 8)
        XCTAssertEqual(report.snapshots, 4)
        let loose = try git(s.history.url, "count-objects", "-v").split(separator: "\n").first { $0.hasPrefix("count: ") }
        XCTAssertEqual(loose.map { String($0.dropFirst(7)) }, "\(report.objects)")
        XCTAssertGreaterThan(report.bytes, 0)
    }

    func testCorruptObjectIsReported() throws {
        let s = try standardRun()
        let blob = try s.history.show("3").files["heads/1.safetensors"]!
        let url = try objectFile(s.history, blob)
        var bytes = try Data(contentsOf: url)
        bytes[bytes.count / 2] ^= 0x5a
        try bytes.write(to: url)
        assertLTEError(try s.history.fsck(), contains: "fsck:", "object \(blob) is corrupt")
        XCTAssertNotEqual(try runProgram("/usr/bin/git", ["--git-dir", s.history.url.path, "fsck", "--strict"]).status, 0, "git agrees")
        let reopened = try MergeHistory.open(at: s.history.url, modelConfig: SimulatedServer.model)
        assertLTEError(try reopened.replay(to: "3"), contains: blob.prefix(7).description)
    }

    func testTruncatedObjectIsReported() throws {
        let s = try standardRun()
        let blob = try s.history.show("6").files["weights/model.safetensors"]!
        let url = try objectFile(s.history, blob)
        try Data(try Data(contentsOf: url).prefix(100)).write(to: url)
        assertLTEError(try s.history.fsck(), contains: "object \(blob) is corrupt")
    }

    func testMissingObjectIsReported() throws {
        let s = try standardRun()
        let blob = try s.history.show("5").files["replicated.safetensors"]!
        try FileManager.default.removeItem(at: try objectFile(s.history, blob))
        assertLTEError(try s.history.fsck(), contains: "fsck:", "object \(blob) (replicated.safetensors in commit \(s.committed[5]!.commit.prefix(7))) is missing")
    }

    func testWrongRecordedHashIsReportedWithItsRound() throws {
        let s = try standardRun()
        s.main.params[s.main.layout.blocks[1].wo] += 0.5   // a server whose weights drifted from its merges
        try s.history.commitMerge(round: 8, workerCommits: [try s.pushOnly("a")], metadata: RoundMetadata(),
                                  weights: s.main.params.pointer, snapshot: false)
        assertLTEError(try s.history.fsck(), contains: "fsck:", "replay of round 8", "but the round recorded")
    }
}

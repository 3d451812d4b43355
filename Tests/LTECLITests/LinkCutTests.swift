import Foundation
import LTETestSupport
import XCTest

/// A worker whose link to the server is cut for a while mid-run (issue 15: the wide-area test bed's
/// 30 s cut): rounds close at the quorum without it, it waits the cut out, catches up, and ends on
/// the same weights as the server, the other worker and the history's replay.
final class LinkCutTests: LaunchedRunTestCase {
    func testWorkerSurvivesLinkThatDropsEveryConnection() throws { try survivesCut(.drop, seconds: 15) }

    func testWorkerSurvivesLinkThatGoesSilent() throws { try survivesCut(.silence, seconds: 15) }

    private func survivesCut(_ kind: CuttableRelay.Cut, seconds: Double) throws {
        let run = scratch.appendingPathComponent("run")
        let port = freeLoopbackPort()
        let address = "tcp://127.0.0.1:\(port)"
        let relay = try CuttableRelay(to: port)
        defer { relay.stop() }
        // Rounds close 2 s after the first head is in; the finished run waits up to a minute for the
        // cut worker to fetch the final weights.
        let server = try BackgroundLTE("server", ["server", "--listen", address, "--run", run.path, "--config", "configs/tiny.json",
                                                  "--data", data, "--rounds", "20", "--heads", "2", "--quorum", "1",
                                                  "--round-timeout", "2", "--final-wait", "60"] + lteSettings)
        let near = try BackgroundLTE("worker w0", ["worker", "--server", address, "--heads", "0", "--data", data, "--id", "w0"])
        let far = try BackgroundLTE("worker w1", ["worker", "--server", "tcp://127.0.0.1:\(relay.port)", "--heads", "1", "--data", data,
                                                  "--id", "w1", "--reconnect-timeout", "90"])
        func roundsLogged() -> Int {
            ((try? String(contentsOf: run.appendingPathComponent("rounds.jsonl"), encoding: .utf8)) ?? "").split(separator: "\n").count
        }
        let end = Date().addingTimeInterval(60)
        while Date() < end && roundsLogged() < 2 { Thread.sleep(forTimeInterval: 0.02) }
        XCTAssertGreaterThanOrEqual(roundsLogged(), 2, server.output)
        let cutAt = roundsLogged()
        relay.cut(kind, for: seconds)
        XCTAssertEqual(far.wait(seconds: 180), 0, "\(far.name):\n\(far.output)")
        XCTAssertEqual(near.wait(seconds: 60), 0, "\(near.name):\n\(near.output)")
        XCTAssertEqual(server.wait(seconds: 60), 0, server.output)

        // The cut was real: some rounds closed without w1's head.
        let lines = try String(contentsOf: run.appendingPathComponent("rounds.jsonl"), encoding: .utf8).split(separator: "\n")
        let heads = try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])["heads"] as? [Int] }
        XCTAssertTrue(heads.dropFirst(cutAt).contains([0]), "no round closed without the cut worker: \(heads)")
        XCTAssertEqual(heads.last, [0, 1], "the cut worker never merged again: \(heads)")
        if kind == .drop {
            // Requests made while the link is down fail and are retried, with at most one line every 5 s.
            let retries = far.output.split(separator: "\n").filter { $0.contains("unreachable") }
            XCTAssertLessThanOrEqual(retries.count, Int(seconds / 5) + 2, far.output)
        }
        // Everyone ends on the history's final weights.
        let replay = try LTEBinary.succeed(["replay", "--run", run.path, "--out", scratch.appendingPathComponent("x").path]).stdout
        let final = try XCTUnwrap(near.finalHash)
        XCTAssertEqual(far.finalHash, final)
        XCTAssertTrue(replay.contains(final), "the workers end on other weights than the history:\n\(replay)")
    }
}

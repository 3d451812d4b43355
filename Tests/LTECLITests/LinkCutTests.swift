import Foundation
import LTETestSupport
import XCTest

/// A worker whose link to the server is cut for a while mid-run (issue 15: the wide-area test bed's
/// 30 s cut): rounds close at the quorum without it, it waits the cut out, catches up, and ends on
/// the same weights as the server, the other worker and the history's replay.
final class LinkCutTests: LaunchedRunTestCase {
    func testWorkerSurvivesLinkThatDropsEveryConnection() throws { try survivesCut(.drop, seconds: 15) }

    func testWorkerSurvivesLinkThatGoesSilent() throws { try survivesCut(.silence, seconds: 15) }

    /// A worker dials a relay before the server is up: the relay takes the connection and resets it
    /// (nothing to forward to), which stops nng's own redialling (nanomsg/nng#970); the worker dials
    /// anew and joins once the server is there.
    func testWorkerJoinsThroughARelayThatResetItWhileTheServerWasDown() throws {
        let port = freeLoopbackPort()
        let relay = try CuttableRelay(to: port)
        defer { relay.stop() }
        let worker = try BackgroundLTE("worker", ["worker", "--server", "tcp://127.0.0.1:\(relay.port)", "--heads", "0", "--data", data,
                                                  "--id", "w0", "--connect-timeout", "60"])
        Thread.sleep(forTimeInterval: 1)
        let run = scratch.appendingPathComponent("run")
        let server = try BackgroundLTE("server", ["server", "--listen", "tcp://127.0.0.1:\(port)", "--run", run.path, "--config", "configs/tiny.json",
                                                  "--data", data, "--rounds", "2", "--heads", "1"] + lteSettings)
        XCTAssertEqual(worker.wait(seconds: 90), 0, worker.output)
        XCTAssertEqual(server.wait(seconds: 30), 0, server.output)
        XCTAssertEqual(worker.finalHash, server.output.contains("done after 2 rounds") ? worker.finalHash : "server did not finish")
    }

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
        // The far worker joins first, so the rounds before the cut wait for both.
        let far = try BackgroundLTE("worker w1", ["worker", "--server", "tcp://127.0.0.1:\(relay.port)", "--heads", "1", "--data", data,
                                                  "--id", "w1", "--reconnect-timeout", "90"])
        let joined = Date().addingTimeInterval(60)
        while Date() < joined && !far.output.contains("joined") { Thread.sleep(forTimeInterval: 0.02) }
        let near = try BackgroundLTE("worker w0", ["worker", "--server", address, "--heads", "0", "--data", data, "--id", "w0"])
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

import Foundation
import LTENet
import LTETestSupport
import XCTest

/// `lte.push_format` and `lte.overlap` end to end (issue 15): real processes over tcp on loopback
/// end on the weights of the in-process run with the same settings, and on the history's.
final class CompressedRoundsTests: LaunchedRunTestCase {

    /// `lte launch` over tcp, 2 workers × 2 heads, 4 rounds, for `settings`: returns rounds.jsonl,
    /// after checking the last round's hash is the in-process run's and the replayed history's, and
    /// that `lte fsck` passes on the history.
    private func launchMatchesInProcess(_ name: String, _ settings: [String], file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        let run = scratch.appendingPathComponent(name)
        try LTEBinary.succeed(["launch", "--workers", "2", "--heads-per-worker", "2", "--config", "configs/tiny.json", "--data", data,
                               "--run", run.path, "--rounds", "4", "--listen", "tcp://127.0.0.1:\(freeLoopbackPort())"] + lteSettings + settings)
        let lines = try rounds(run)
        XCTAssertEqual(lines.map { $0["round"] as? Int }, [1, 2, 3, 4], file: file, line: line)
        let served = try XCTUnwrap(lines.last?["weights_hash"] as? String)
        let local = try LTEBinary.succeed(["train", "--mode", "lte", "--config", "configs/tiny.json", "--data", data,
                                           "--run", scratch.appendingPathComponent(name + "-local").path, "--iterations", "20",
                                           "--set", "lte.heads=4"] + lteSettings + settings)
        let localHash = local.stdout.range(of: "weights ", options: .backwards).map { String(local.stdout[$0.upperBound...].prefix(64)) }
        XCTAssertEqual(localHash, served, "\(name): distributed and in-process runs differ", file: file, line: line)
        let replay = try LTEBinary.succeed(["replay", "--run", run.path, "--to", "main", "--out", scratch.appendingPathComponent(name + "-replay").path])
        XCTAssertTrue(replay.stdout.contains(served), "\(name): replay does not reach the server's weights", file: file, line: line)
        // The history records merges only (nothing of a head's fold): fsck checks every round's hash.
        try LTEBinary.succeed(["fsck", "--run", run.path])
        return lines
    }

    /// int8 pushes with merges overlapped: server, workers (launch checks each against the server's
    /// hash), the in-process run and replay hold the same bits; the workers' times are recorded.
    func testOverlappedInt8LaunchMatchesInProcessAndReplay() throws {
        let lines = try launchMatchesInProcess("int8-overlap", ["--set", "lte.push_format=int8", "--set", "lte.overlap=true"])
        for l in lines {
            for key in ["worker_train_ms", "worker_wait_ms", "round_ms", "sync_ms", "bytes_in", "bytes_out"] { XCTAssertNotNil(l[key], key) }
            XCTAssertGreaterThan(l["worker_train_ms"] as? Double ?? 0, 0)
        }
    }

    /// float32 pushes overlapped, each head's fold counting its push in flight at exactly the merge's
    /// s/N (c = 0; the int8 test above runs the default c) on every node alike: the launch, the
    /// in-process run and replay end on the same bits.
    func testOverlappedLaunchMatchesInProcessAndReplay() throws {
        _ = try launchMatchesInProcess("overlap", ["--set", "lte.overlap=true", "--set", "lte.overlap_extrapolation=0"])
    }

    /// Each format moves fewer bytes than float32 and still ends where the in-process run does.
    func testPushFormatsMatchInProcessAndShrinkTheRound() throws {
        var bytes: [String: Int] = [:]
        for format in ["f32", "bf16", "nf4"] {
            let lines = try launchMatchesInProcess(format, ["--set", "lte.push_format=\(format)"])
            bytes[format] = lines.map { ($0["bytes_in"] as? Int ?? 0) + ($0["bytes_out"] as? Int ?? 0) }.reduce(0, +)
        }
        // Frames carry names, shapes and headers besides, and on the tiny model (rank 4) those are a
        // fair part of a round, so the saving is less than the values' own (½ for bf16, ≈ ⅐ for nf4).
        XCTAssertLessThan(bytes["bf16"]!, bytes["f32"]! * 7 / 10, "\(bytes)")
        XCTAssertLessThan(bytes["nf4"]!, bytes["f32"]! * 4 / 10, "\(bytes)")
    }

    /// `lte.frozen_weights` (issue 18): heads compute against nf4 (and int8) frozen weights, requantized
    /// after every merge on every node, and a launched run ends on the in-process run's bits and the
    /// history's; the quantized W really is what the heads see (the run differs from float32's).
    func testQuantizedFrozenWeightsLaunchMatchesInProcessAndReplay() throws {
        let f32 = try launchMatchesInProcess("frozen-f32", [])
        let nf4 = try launchMatchesInProcess("frozen-nf4", ["--set", "lte.frozen_weights=nf4"])
        let int8 = try launchMatchesInProcess("frozen-int8", ["--set", "lte.frozen_weights=int8", "--set", "lte.push_format=int8"])
        let last = { (lines: [[String: Any]]) in lines.last?["weights_hash"] as? String }
        XCTAssertNotEqual(last(nf4), last(f32))
        XCTAssertNotEqual(last(int8), last(f32))

        // The second hash: every round of the nf4 history (the root too) records the hash of its
        // weights quantized; replay and fsck check it along with the weights hash.
        let run = scratch.appendingPathComponent("frozen-nf4").path
        var frozen: [String] = []
        for round in 0...4 {
            let shown = try LTEBinary.succeed(["show", "--run", run, "\(round)"]).stdout
            let line = try XCTUnwrap(shown.split(separator: "\n").first { $0.hasPrefix("frozen nf4 sha256 ") }, "round \(round): \(shown)")
            frozen.append(String(line.dropFirst("frozen nf4 sha256 ".count).prefix(64)))
        }
        XCTAssertEqual(Set(frozen).count, 5, "each merge changes W, so its quantized form: \(frozen)")
        let replay = try LTEBinary.succeed(["replay", "--run", run, "--to", "2", "--out", scratch.appendingPathComponent("nf4-replay-2").path])
        XCTAssertTrue(replay.stdout.contains("frozen nf4 weights \(frozen[2]) match"), replay.stdout)
        let fsck = try LTEBinary.succeed(["fsck", "--run", run])
        XCTAssertTrue(fsck.stdout.contains("5 rounds replayed and matched | 5 frozen-weights hashes matched"), fsck.stdout)
        let f32Show = try LTEBinary.succeed(["show", "--run", scratch.appendingPathComponent("frozen-f32").path, "4"]).stdout
        XCTAssertFalse(f32Show.contains("frozen"), f32Show)
    }

    /// Issue 18, item 2: workers that hold the frozen weights in nf4 only cannot apply a low-rank
    /// delta to them, so each answer carries the requantized layers and no head's factors; the
    /// workers still end on the server's bits, and `bytes_out` is exactly the answers' bytes as they
    /// crossed the wire (counted here by a proxy in front of each worker).
    func testQuantizedFrozenAnswersCarryTheLayersAndCountTheirBytes() throws {
        let run = scratch.appendingPathComponent("run")
        let address = "tcp://127.0.0.1:\(freeLoopbackPort())"
        let server = try BackgroundLTE("server", ["server", "--listen", address, "--run", run.path, "--config", "configs/tiny.json",
                                                  "--data", data, "--rounds", "3", "--heads", "2", "--quorum", "2",
                                                  "--set", "lte.frozen_weights=nf4"] + lteSettings)
        let proxies = try (0..<2).map { _ in try RecordingProxy(listen: "tcp://127.0.0.1:\(freeLoopbackPort())", server: address) }
        defer { proxies.forEach { $0.stop() } }
        let workers = try (0..<2).map { h in
            try BackgroundLTE("worker \(h)", ["worker", "--server", proxies[h].listen, "--heads", "\(h)", "--data", data, "--id", "w\(h)"])
        }
        for w in workers { XCTAssertEqual(w.wait(seconds: 120), 0, "\(w.name):\n\(w.output)") }
        XCTAssertEqual(server.wait(seconds: 30), 0, server.output)
        let lines = try rounds(run)
        XCTAssertEqual(lines.map { $0["round"] as? Int }, [1, 2, 3])
        for w in workers { XCTAssertEqual(w.finalHash, lines.last?["weights_hash"] as? String, w.output) }

        var sent: [Int: Int] = [:]
        for answer in proxies.flatMap(\.answered) {
            guard case .roundResult(let r) = try WireCodec().decode(answer) else { continue }
            XCTAssertFalse(r.tensors.contains { $0.name.hasPrefix("factors.") }, "round \(r.round) sent factors to a worker without W")
            XCTAssertTrue(r.tensors.contains { $0.name.hasPrefix("frozen.") }, "round \(r.round) sent no quantized layers")
            sent[r.round, default: 0] += answer.count
        }
        for l in lines {
            let round = try XCTUnwrap(l["round"] as? Int)
            XCTAssertEqual(l["bytes_out"] as? Int, sent[round], "round \(round): bytes_out is not what crossed the wire")
        }
    }

    /// A bad value is one `error:` line listing the choices.
    func testBadPushFormatOrOverlapIsRefusedWithTheChoices() throws {
        let base = ["train", "--mode", "lte", "--config", "configs/tiny.json", "--data", data, "--run", scratch.appendingPathComponent("bad").path]
        try LTEBinary.fail(base + ["--set", "lte.push_format=fp8"], "lte.push_format must be one of f32, bf16, int8, nf4")
        try LTEBinary.fail(base + ["--set", "lte.overlap=sometimes"], "lte.overlap must be one of true, false")
        try LTEBinary.fail(base + ["--set", "lte.overlap_extrapolation=1.5"], "lte.overlap_extrapolation must be in [0, 1]")
        try LTEBinary.fail(base + ["--set", "lte.overlap=true", "--set", "lte.merge=reset-b"], "lte.overlap needs lte.merge resetless")
    }
}

import Foundation
import LTETestSupport
import XCTest

/// What the tests of launched runs share: a scratch directory per test holding a synthetic data
/// directory, and small LTE settings on the tiny model (4 heads of rank 4, merge every 5 steps).
class LaunchedRunTestCase: XCTestCase {
    var scratch: URL!
    var data: String { scratch.appendingPathComponent("data").path }
    let lteSettings = ["--set", "lte.rank=4", "--set", "lte.alpha=16", "--set", "lte.merge_every=5", "--set", "training.learning_rate=3e-3"]

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("lte-run-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        try LTEBinary.succeed(["data", "synth", "--out", data, "--bytes", "200000"])
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    /// The final weights hash of `lte train --mode lte` on the tiny config with these settings and
    /// `heads` heads: what a distributed run of `iterations` / merge_every rounds must end on.
    func inProcessHash(heads: Int, iterations: Int) throws -> String? {
        let local = try LTEBinary.succeed(["train", "--mode", "lte", "--config", "configs/tiny.json", "--data", data,
                                           "--run", scratch.appendingPathComponent("local").path, "--iterations", String(iterations),
                                           "--set", "lte.heads=\(heads)"] + lteSettings)
        return local.stdout.range(of: "weights ", options: .backwards).map { String(local.stdout[$0.upperBound...].prefix(64)) }
    }
}

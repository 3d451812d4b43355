import Foundation
@testable import LTECluster
import LTETestSupport
import XCTest

/// `lte.outer nesterov` between a `ServerCore` and `WorkerCore`s in process: a worker that joins
/// mid-run takes the outer optimizer's velocity with the weights, so its next merge steps W exactly
/// as the server's does (the worker checks the server's hash after every merge and stops otherwise).
final class OuterOptimizerWorkerTests: XCTestCase {
    func testWorkerJoiningMidRunTakesTheVelocity() throws {
        let h = try ServerHarness(quorum: 1, roundTimeout: .milliseconds(200), lte: { $0.outer = .nesterov })
        let a = try worker("a", heads: [0])
        try a.join(over: link(h))
        for r in 1...3 { XCTAssertEqual(try a.push(a.trainRound(), over: link(h)), .merged(round: r)) }
        let serverVelocity = try XCTUnwrap(h.core.main.outer?.velocity.array)
        XCTAssertTrue(serverVelocity.contains { $0 != 0 }, "three rounds left the velocity at zero")

        let b = try worker("b", heads: [1])
        try b.join(over: link(h))
        XCTAssertEqual(b.round, 3)
        XCTAssertEqual(b.main?.outer?.velocity.array.map(\.bitPattern), serverVelocity.map(\.bitPattern), "the joining worker has another velocity")
        XCTAssertEqual(try pushTogether([(a, h), (b, h)]), [.merged(round: 4), .merged(round: 4)])
        XCTAssertEqual(b.weightsHash, h.core.main.weightsHash)
        XCTAssertEqual(b.main?.outer?.velocity.array, h.core.main.outer?.velocity.array)
        XCTAssertEqual(try h.history.fsck().rounds, 5)
    }
}

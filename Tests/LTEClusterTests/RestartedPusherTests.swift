import Foundation
import LTEBase
@testable import LTECluster
import LTENet
import LTETestSupport
import XCTest

/// A worker killed after its push and restarted under the same name pushes the same round again,
/// with other factors (its optimizer state died with it). The server keeps the first push and
/// ignores the repeat; the repeat's answer must then carry the factors that were merged — not
/// leave them out as a pusher's own — or the restarted worker merges its own and ends on other bits
/// (found by experiments/chaos under ThreadSanitizer, whose timing made the kill land there).
final class RestartedPusherTests: XCTestCase {
    func testARepeatedPushWithOtherFactorsIsAnsweredWithTheMergedOnes() throws {
        let h = try ServerHarness(quorum: 2, roundTimeout: .seconds(60))
        let first = h.honestPush(worker: "a", heads: [0])
        let killed = h.send(.push(first))
        Thread.sleep(forTimeInterval: 0.2)   // the first push is in and waits for head 1
        let again = h.honestPush(worker: "a", heads: [0])
        XCTAssertNotEqual(again.tensors.first { $0.name == "factors.0" }, first.tensors.first { $0.name == "factors.0" })
        let restarted = h.send(.push(again))
        Thread.sleep(forTimeInterval: 0.2)
        let other = h.send(.push(h.honestPush(worker: "b", heads: [1])))
        guard case .roundResult(let toKilled)? = killed.wait(seconds: 30), case .roundResult(let toRestarted)? = restarted.wait(seconds: 30),
              case .roundResult? = other.wait(seconds: 30) else { return XCTFail("the round did not close:\n\(h.log.suffix(5).joined(separator: "\n"))") }

        XCTAssertNil(toKilled.tensors.first { $0.name == "factors.0" }, "the pusher whose bytes were merged got them back")
        let merged = try XCTUnwrap(toRestarted.tensors.first { $0.name == "factors.0" }, "the repeat was answered without the merged factors of its head")
        XCTAssertEqual(merged, first.tensors.first { $0.name == "factors.0" }, "the round merged the first push's factors")
    }
}

import LTEModel
import LTENumerics
@testable import LTETraining
import XCTest

/// `MemoryBudget`'s runtime line: bytes resident before the model, added to the total, never to the state.
final class MemoryBudgetTests: XCTestCase {
    func testRuntimeIsItsOwnLine() {
        let c = ModelConfig(vocabSize: 32, dim: 16, layers: 2, heads: 2, ffnDim: 24, contextLength: 8)
        let model = MemoryBudget.full(c, batch: 2)
        XCTAssertEqual(model.runtime, 0)
        XCTAssertEqual(model.bytes, 4 * (4 * ParameterLayout(c).count + Activations.floatCount(config: c, batch: 2, seqLen: 8)))
        let process = model.adding(runtime: 30 << 20).adding(runtime: 1000)
        XCTAssertEqual(process.runtime, (30 << 20) + 1000)
        XCTAssertEqual(process.bytes, model.bytes + (30 << 20) + 1000)
        XCTAssertEqual(process.stateBytes, model.stateBytes, "the state is the model's: weights, gradients, moments, factors, scratch")
        XCTAssertEqual(process.megabytes, Double(process.bytes) / 1_048_576)
    }
}

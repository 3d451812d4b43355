import XCTest
@testable import LTEModel

final class ActivationsTests: XCTestCase {
    /// The memory budget's count (no allocation) is the floats an Activations really holds.
    func testFloatCountWithoutAllocatingMatchesTheBuffers() {
        for (c, b, t) in [(GradientCheckTests.tiny, 3, 8), (GradientCheckTests.tiny, 1, 5),
                          (ModelConfig(vocabSize: 256, dim: 64, layers: 3, heads: 4, kvHeads: 4, ffnDim: 96, contextLength: 32), 2, 32)] {
            XCTAssertEqual(Activations.floatCount(config: c, batch: b, seqLen: t), Activations(config: c, batch: b, seqLen: t).floatCount)
        }
    }
}

import LTENumerics

/// Uniformly random token batches: for benchmarks and tests that need shapes, not text.
public struct RandomBatches: BatchSource {
    public let batchSize: Int, contextLength: Int, vocabSize: Int
    var rng: SeededGenerator

    public init(batchSize: Int, contextLength: Int, vocabSize: Int, seed: UInt64) {
        self.batchSize = batchSize; self.contextLength = contextLength; self.vocabSize = vocabSize
        rng = SeededGenerator(seed: seed)
    }

    public mutating func next(inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>) {
        for i in 0..<(batchSize * contextLength) {
            inputs[i] = Int32(rng.nextInt(below: vocabSize))
            targets[i] = Int32(rng.nextInt(below: vocabSize))
        }
    }
}

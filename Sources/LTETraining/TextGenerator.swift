import Foundation
import LTEBase
import LTEModel
import LTENumerics

/// Picks the next token from a row of logits: greedy at temperature 0, otherwise a draw from
/// softmax(logits / temperature), restricted to the `topK` most likely tokens when topK > 0.
public struct TokenSampler {
    public let temperature: Float
    public let topK: Int
    private var rng: SeededGenerator
    private var probabilities: [Double] = []
    private var order: [Int] = []

    public init(temperature: Float, topK: Int = 0, seed: UInt64) throws {
        guard temperature >= 0, temperature.isFinite else { throw LTEError("temperature must be 0 or more (got \(temperature))") }
        guard topK >= 0 else { throw LTEError("top-k must be 0 (no limit) or more (got \(topK))") }
        self.temperature = temperature
        self.topK = topK
        rng = SeededGenerator(seed: seed)
    }

    public mutating func next(logits: UnsafePointer<Float>, vocab: Int) -> Int32 {
        var best = 0
        for i in 1..<vocab where logits[i] > logits[best] { best = i }
        if temperature == 0 { return Int32(best) }
        // Candidates: every id, or the top k by logit (ties broken by id, so draws are reproducible).
        order = Array(0..<vocab)
        if topK > 0 && topK < vocab {
            order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
            order.removeLast(vocab - topK)
        }
        let top = Double(logits[best]), t = Double(temperature)
        probabilities = order.map { exp((Double(logits[$0]) - top) / t) }
        let total = probabilities.reduce(0, +)
        var u = Double(rng.nextUniform()) * total
        for (k, p) in probabilities.enumerated() {
            u -= p
            if u < 0 { return Int32(order[k]) }
        }
        return Int32(order[probabilities.lastIndex { $0 > 0 } ?? 0])
    }
}

/// Autoregressive generation with a trained `Transformer`, nanoGPT's `generate`: each new token is
/// drawn from the logits at the last position of the context, which slides to keep only the last
/// `max_position_embeddings` tokens once the text grows longer than that.
public final class TextGenerator {
    public let model: Transformer

    public init(model: Transformer) { self.model = model }

    /// Generates `count` tokens after `prompt` (which must not be empty); `emit` sees each new token.
    public func generate(prompt: [Int32], count: Int, sampler: inout TokenSampler, emit: (Int32) -> Void = { _ in }) -> [Int32] {
        precondition(!prompt.isEmpty, "TextGenerator.generate: empty prompt")
        guard count > 0 else { return [] }
        let c = model.config
        // One window wide enough for the longest context used. Positions after the real tokens are
        // padding: causal attention keeps them from affecting the positions that matter.
        let window = min(c.contextLength, prompt.count + count - 1)
        let acts = Activations(config: c, batch: 1, seqLen: window)
        let tokens = UnsafeMutablePointer<Int32>.allocate(capacity: window)
        defer { tokens.deallocate() }
        var text = prompt
        var generated: [Int32] = []
        generated.reserveCapacity(count)
        for _ in 0..<count {
            let context = text.suffix(window)
            tokens.update(repeating: 0, count: window)
            for (i, id) in context.enumerated() { tokens[i] = id }
            model.forward(acts, tokens: tokens, targets: nil, forTraining: false)
            let next = sampler.next(logits: acts.logits.pointer + (context.count - 1) * c.vocabSize, vocab: c.vocabSize)
            text.append(next)
            generated.append(next)
            emit(next)
        }
        return generated
    }
}

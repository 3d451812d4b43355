import LTENumerics

/// The merge step of LTE (DESIGN.md §2), written out as plain loops in a fixed order so every node
/// that runs it — server, workers, a replay years later — gets the same bits at any thread count.
/// (A BLAS product would pick its blocking, and so its rounding, by thread count and CPU.)
public enum LTEMerge {
    /// One head's contribution: its current factors (A, B) and, for the reset-less rule, the factors
    /// at its previous merge (A⁰, B⁰), both laid out by the `LoRALayout`. It holds the buffers, not
    /// pointers into them, so they live as long as the contribution does: a pointer taken from a
    /// buffer whose last use has passed may already point at freed memory.
    public struct Contribution {
        public let factors: FloatBuffer
        public let previous: FloatBuffer?
        public init(factors: FloatBuffer, previous: FloatBuffer?) {
            self.factors = factors; self.previous = previous
        }
    }

    /// W ← W + (s/N) Σᵢ (Bᵢ Aᵢ − Bᵢ⁰ Aᵢ⁰) on every wrapped layer, summed over the heads present in
    /// the order given. N is the run's total head count, not the number present: a head that misses
    /// a round keeps its pending delta, which lands, with the same weight, in the next merge it joins.
    public static func apply(to weights: FloatBuffer, layout: LoRALayout, heads: [Contribution],
                             scale: Float, totalHeads: Int) {
        guard !heads.isEmpty else { return }
        withExtendedLifetime((weights, heads)) {
            apply(to: weights.pointer, layout: layout, heads: heads.map { ($0.factors.pointer, $0.previous?.pointer) },
                  scale: scale, totalHeads: totalHeads)
        }
    }

    /// The loops of `apply`, on pointers whose buffers the public entry point keeps alive.
    private static func apply(to weights: UnsafeMutablePointer<Float>, layout: LoRALayout,
                              heads: [(factors: UnsafeMutablePointer<Float>, previous: UnsafeMutablePointer<Float>?)],
                              scale: Float, totalHeads: Int) {
        let r = layout.rank
        let factor = scale / Float(totalHeads)
        for s in layout.sites {
            let n = s.inFeatures, m = s.outFeatures
            let chunk = max(1, (m + 15) / 16)
            Parallel.forEach((m + chunk - 1) / chunk) { c in
                let acc = UnsafeMutablePointer<Float>.allocate(capacity: n)
                defer { acc.deallocate() }
                for i in (c * chunk)..<min(m, (c + 1) * chunk) {
                    acc.update(repeating: 0, count: n)
                    for h in heads {
                        let a = h.factors + s.a, b = h.factors + s.b
                        for k in 0..<r { Vec.axpy(b[i * r + k], a + k * n, acc, count: n) }
                        if let p = h.previous {
                            let a0 = p + s.a, b0 = p + s.b
                            for k in 0..<r { Vec.axpy(-b0[i * r + k], a0 + k * n, acc, count: n) }
                        }
                    }
                    Vec.axpy(factor, acc, weights + s.weight + i * n, count: n)
                }
            }
        }
    }

    /// dst[span] = mean over replicas of replica[span] for each span (offset, count), summed in the
    /// order given: the replicated parameters (embeddings, norm gains) after a round.
    /// Buffers, not pointers, for the reason `Contribution` gives.
    public static func average(spans: [(offset: Int, count: Int)], replicas: [FloatBuffer], into dst: FloatBuffer) {
        guard let first = replicas.first else { return }
        precondition(spans.allSatisfy { span in span.offset + span.count <= dst.count && replicas.allSatisfy { span.offset + span.count <= $0.count } },
                     "LTEMerge.average: a span lies outside a buffer")
        let inv = 1 / Float(replicas.count)
        withExtendedLifetime((replicas, dst)) {
            for (o, n) in spans {
                let acc = UnsafeMutablePointer<Float>.allocate(capacity: n)
                defer { acc.deallocate() }
                acc.update(from: first.pointer + o, count: n)
                for r in replicas.dropFirst() { Vec.add(r.pointer + o, into: acc, count: n) }
                for i in 0..<n { dst.pointer[o + i] = acc[i] * inv }
            }
        }
    }
}

import Foundation
import LTEModel
import LTENumerics
import LTEStore
import LTETraining

/// Decides which of a closing round's heads the server merges (DESIGN.md §8: "nothing a peer sends is
/// trusted beyond … its bounds; the merged weights are checked finite before they are committed").
///
/// A push that is finite can still be absurd: factors of 1e30 pass every per-value check and overflow
/// in the merge, so non-finite weights would be committed and sent to every node. Two screens, both a
/// deterministic function of what was pushed and the weights the round starts from (so any node that
/// ran them would leave out the same heads; replay needs only the heads that were merged):
///
/// 1. **Against the round.** Each head's update is measured cheaply (no product is formed) by
///    Σ over layers of ‖B−B⁰‖·‖A‖ + ‖B⁰‖·‖A−A⁰‖, a bound on ‖BA − B⁰A⁰‖ (B⁰A⁰ = 0 before a head's
///    first merge and under reset-B, so a head's first contribution is judged by ‖B‖·‖A‖, not by its
///    initial A), and its replicated tensors by ‖r − r_main‖. A head whose measure is over
///    `maxRatio` × the round's lower median is left out. Honest heads train the same steps from the same
///    weights, so their measures are within a small factor of each other.
/// 2. **Finiteness.** The merge of the heads left is bounded layer by layer (‖W‖∞ + s/N·Σ r·‖B‖∞‖A‖∞
///    …) and the replicated mean likewise; while a bound could overflow float32, the head with the
///    largest measure (the highest id among equals) is left out too. Honest rounds are bounded many
///    orders of magnitude below overflow, so they never lose a head here.
struct HeadUpdateScreen {
    struct Candidate {
        let head: Int
        let factors: FloatBuffer?
        let replicated: FloatBuffer
    }

    /// The heads to merge (ascending) and, for each head left out, why.
    struct Verdict {
        var merged: [Int]
        var excluded: [(head: Int, reason: String)]
    }

    let main: MainWeights
    /// A head whose measure exceeds this multiple of the round's lower median is left out.
    let maxRatio: Double
    /// Bounds on the merged weights under which float32 certainly stays finite (far below 3.4e38, so
    /// the rounding of any summation order cannot reach it).
    static let safeMagnitude = 1e36

    func screen(_ candidates: [Candidate]) -> Verdict {
        let sorted = candidates.sorted { $0.head < $1.head }
        let mainReplicated = main.packReplicated(main.model.params.pointer)
        let factorMeasure = sorted.map { c in c.factors.map { contributionBound($0, previous: previous(c.head)) } ?? 0 }
        let replicatedMeasure = sorted.map { distance($0.replicated, mainReplicated) }
        var keep = [Bool](repeating: true, count: sorted.count)
        var excluded: [(head: Int, reason: String)] = []
        for (name, measure) in [("update", factorMeasure), ("replicated change", replicatedMeasure)] {
            let median = lowerMedian(measure)
            guard median > 0, median.isFinite else { continue }
            for i in sorted.indices where keep[i] && !(measure[i] <= maxRatio * median) {
                keep[i] = false
                excluded.append((sorted[i].head, String(format: "%@ %.3g is %.3g× the round's median %.3g (limit %g×)",
                                                        name, measure[i], measure[i] / median, median, maxRatio)))
            }
        }
        while keep.contains(true), !mergeStaysFinite(sorted.indices.filter { keep[$0] }.map { sorted[$0] }) {
            // The kept head with the largest update (the highest id among equals) is the one left out.
            let worst = sorted.indices.filter { keep[$0] }.max { (factorMeasure[$0] + replicatedMeasure[$0], $0) < (factorMeasure[$1] + replicatedMeasure[$1], $1) }!
            keep[worst] = false
            excluded.append((sorted[worst].head, String(format: "merging it could make the weights non-finite (update %.3g)", factorMeasure[worst] + replicatedMeasure[worst])))
        }
        return Verdict(merged: sorted.indices.filter { keep[$0] }.map { sorted[$0].head },
                       excluded: excluded.sorted { $0.head < $1.head })
    }

    /// The kind of an exclusion `screen` gave, as a short fixed name (the metrics count exclusions by
    /// kind: the reasons themselves carry numbers, too many distinct values for a label).
    static func kind(ofReason reason: String) -> String {
        if reason.hasPrefix("update ") { return "update_ratio" }
        if reason.hasPrefix("replicated change ") { return "replicated_ratio" }
        if reason.hasPrefix("merging it could make the weights non-finite") { return "non_finite" }
        return "other"
    }

    /// The factors the head's contribution is measured against: its last merged (reset-less), none
    /// (reset-B, where V = 0).
    private func previous(_ head: Int) -> FloatBuffer? {
        main.lora?.merge == .resetless ? main.lastMerged[head] : nil
    }

    /// Σ over layers of ‖B−B⁰‖·‖A‖ + ‖B⁰‖·‖A−A⁰‖ ≥ ‖BA − B⁰A⁰‖ (Frobenius), in double precision.
    private func contributionBound(_ f: FloatBuffer, previous p: FloatBuffer?) -> Double {
        guard let layout = main.layout else { return 0 }
        var total = 0.0
        for s in layout.sites {
            let na = s.inFeatures * layout.rank, nb = s.outFeatures * layout.rank
            let a = norm(f.pointer + s.a, count: na), b = norm(f.pointer + s.b, count: nb)
            guard let p else { total += b * a; continue }
            let dB = norm(f.pointer + s.b, minus: p.pointer + s.b, count: nb), dA = norm(f.pointer + s.a, minus: p.pointer + s.a, count: na)
            total += dB * a + norm(p.pointer + s.b, count: nb) * dA
        }
        return total
    }

    /// Whether merging `heads` provably leaves every weight finite.
    private func mergeStaysFinite(_ heads: [Candidate]) -> Bool {
        var replicatedSum = 0.0
        for h in heads { replicatedSum += maxAbs(h.replicated.pointer, count: h.replicated.count) }
        guard replicatedSum < Self.safeMagnitude else { return false }
        guard let layout = main.layout, let lora = main.lora else { return true }
        let factor = abs(Double(lora.scale) / Double(main.totalHeads)), r = Double(layout.rank)
        for s in layout.sites {
            var bound = maxAbs(main.model.params.pointer + s.weight, count: s.inFeatures * s.outFeatures)
            for h in heads {
                guard let f = h.factors else { continue }
                let na = s.inFeatures * layout.rank, nb = s.outFeatures * layout.rank
                bound += factor * r * maxAbs(f.pointer + s.b, count: nb) * maxAbs(f.pointer + s.a, count: na)
                if let p = previous(h.head) {
                    bound += factor * r * maxAbs(p.pointer + s.b, count: nb) * maxAbs(p.pointer + s.a, count: na)
                }
            }
            guard bound < Self.safeMagnitude else { return false }
        }
        return true
    }

    private func lowerMedian(_ xs: [Double]) -> Double {
        guard !xs.isEmpty else { return 0 }
        return xs.sorted()[(xs.count - 1) / 2]
    }

    private func distance(_ x: FloatBuffer, _ y: FloatBuffer) -> Double { norm(x.pointer, minus: y.pointer, count: min(x.count, y.count)) }

    private func norm(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var s = 0.0
        for i in 0..<count { let v = Double(x[i]); s += v * v }
        return s.squareRoot()
    }

    private func norm(_ x: UnsafePointer<Float>, minus y: UnsafePointer<Float>, count: Int) -> Double {
        var s = 0.0
        for i in 0..<count { let v = Double(x[i]) - Double(y[i]); s += v * v }
        return s.squareRoot()
    }

    private func maxAbs(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(x[i])) }
        return Double(m)
    }
}

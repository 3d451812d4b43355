import LTEModel

/// LTE's settings a config leaves out, set from the model and the full-rank recipe (issue 17: the
/// study is experiments/sweep; README's "LTE's settings, one at a time" and "LTE on its defaults"
/// give its measurements). A setting tuned by hand on one corpus did not carry to another; these
/// scale with what the sweep showed them to follow:
///
///     lte.rank                      N·r ≥ the widest wrapped layer (the paper's rule of thumb), in
///                                   multiples of 8, at most the narrowest layer's input width
///     lte.learning_rate             headRateTimesScale × training.learning_rate / s, s = α/r: a
///                                   merge moves W by s × the factors' steps, so s·lr is what counts
///     lte.replicated_learning_rate  N × training.learning_rate: each head steps them with
///                                   AdamW on its own small batch and a merge averages N such
///                                   steps, keeping only their common part; at the full-rank rate
///                                   the replicated tensors (at vocab 4,096 most of the model)
///                                   fell behind on both corpora tried. At 4 heads and compare's
///                                   full budget, N× ended level with full rank on both corpora
///                                   (0.9996× char, 0.9991× BPE) where √N gave 1.010× and 1.027×;
///                                   measured at N = 4 only
///
/// Given values always win. The rule is applied once, when a config is read with the key absent;
/// RUN/config.json, the history's root commit and the server's welcome then hold the values used,
/// so a resumed run, every worker and a replay read them as given.
extension RunConfig {
    /// The lte keys the rule sets when a config leaves them out.
    public static let derivedLTEKeys = ["rank", "learning_rate", "replicated_learning_rate"]

    /// s·lr_head ÷ the full-rank learning rate.
    public static let headRateTimesScale: Float = 2
    /// The replicated tensors' learning rate ÷ the full-rank learning rate, for `heads` heads.
    public static func replicatedRateFactor(heads: Int) -> Float { Float(max(heads, 1)) }

    /// Sets the keys in `absent` (of `derivedLTEKeys`) from the model, lte.heads, lte.alpha and the
    /// training section's learning rate.
    mutating func deriveLTESettings(absent: Set<String>) {
        if absent.contains("rank") { lte.rank = Self.defaultRank(for: model, heads: lte.heads) }
        if absent.contains("learning_rate") { lte.learningRate = Self.headRateTimesScale * training.learningRate / lte.scale }
        if absent.contains("replicated_learning_rate") {
            lte.replicatedLearningRate = Self.replicatedRateFactor(heads: lte.heads) * training.learningRate
        }
    }

    /// The smallest multiple of 8 with heads × r ≥ the widest wrapped layer (max of the width and the
    /// FFN's), capped at the narrowest input width a head's A can span (`LoRAConfig.validate(for:)`).
    public static func defaultRank(for model: ModelConfig, heads: Int) -> Int {
        let widest = max(model.dim, model.ffnDim), narrowest = min(model.dim, model.ffnDim)
        let perHead = (widest + max(heads, 1) - 1) / max(heads, 1)
        return max(1, min(narrowest, (perHead + 7) / 8 * 8))
    }
}

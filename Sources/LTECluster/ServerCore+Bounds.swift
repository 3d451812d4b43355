import LTETraining

/// What the server lets a peer make it hold: the largest value a push may carry and the largest
/// request an honest worker can send (the socket's receive limit).
extension ServerCore {
    /// The bound on |values| in a push when none is given: 10⁴ × the model's own scale (its largest
    /// weight, the largest entry of an initial A, 1), far above what training reaches and far below
    /// what can overflow a merge.
    public static func defaultMaxAbsValue(_ main: MainWeights) -> Float {
        var scale: Float = 1
        let w = main.model.params
        for i in 0..<w.count { scale = max(scale, abs(w.pointer[i])) }
        if let layout = main.layout, let widest = layout.sites.map(\.inFeatures).max() {
            scale = max(scale, (Float(widest) / Float(layout.rank)).squareRoot())
        }
        return 1e4 * scale
    }

    /// The largest request an honest worker can send in this run: a clean leave of every head, which
    /// carries each head's factors and replicated tensors with both AdamW moments of each (three times
    /// a push), plus names, ids and a margin. The socket's receive limit, so a peer cannot make the
    /// server hold a frame of any other size before its MAC is checked.
    public var largestRequestBytes: Int {
        let floats = 3 * descriptor.totalHeads * ((main.layout?.count ?? 0) + main.replicatedCount)
        return floats * 4 + descriptor.totalHeads * 512 + (64 << 10)
    }
}

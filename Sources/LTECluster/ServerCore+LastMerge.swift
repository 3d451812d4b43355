import LTENumerics

extension ServerCore {
    /// A head's factors as its last merge left them, for a worker that takes the head without its
    /// previous worker's state (lock held). Reset-less: the factors merged (Vᵢ's). Reset-B: the last
    /// merged push with B set to zero, as every node that merged it holds the head — the A it trained,
    /// and a B whose product is already in W. Nil before the head's first merge.
    func factorsOfLastMerge(head h: Int) -> FloatBuffer? {
        guard descriptor.lte.merge == .resetB else { return main.lastMerged[h] }
        // A push waiting in the open round is not merged yet: the one before it is.
        guard let merged = open[h].map({ $0.replacedLatest }) ?? latestFactors[h], let layout = main.layout else { return nil }
        let out = FloatBuffer(count: merged.count)
        out.copy(from: merged)
        layout.zeroB(in: out.pointer)
        return out
    }
}

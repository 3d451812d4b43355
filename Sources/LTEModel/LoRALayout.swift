/// Where each adapted linear layer's factors sit in a head's buffer: for every site, A (r×in)
/// then B (out×r). Every head, and the copy of its factors at the last merge, share this layout.
public struct LoRALayout: Sendable {
    public struct Site: Sendable {
        public let site: LinearSite
        public let inFeatures: Int, outFeatures: Int
        public let a: Int, b: Int           // offsets of A and B
        /// Offset of the base weight W (out×in) in the model's parameter buffer.
        public let weight: Int
    }

    public let rank: Int
    public let sites: [Site]
    public let count: Int
    public let projections: Set<Projection>
    private let index: [Int]    // (layer·8 + projection) → position in `sites`, or −1

    public init(model c: ModelConfig, layout: ParameterLayout, rank r: Int, wrapLMHead: Bool) {
        var sites: [Site] = []
        var offset = 0
        var index = [Int](repeating: -1, count: (c.layers + 1) * 8)
        func add(_ layer: Int, _ p: Projection, _ inF: Int, _ outF: Int, weight: Int) {
            index[layer * 8 + p.rawValue] = sites.count
            sites.append(Site(site: LinearSite(layer: layer, projection: p), inFeatures: inF, outFeatures: outF,
                              a: offset, b: offset + r * inF, weight: weight))
            offset += r * (inF + outF)
        }
        for l in 0..<c.layers {
            let blk = layout.blocks[l]
            add(l, .q, c.dim, c.dim, weight: blk.wqkv)
            add(l, .k, c.dim, c.kvDim, weight: blk.wqkv + c.dim * c.dim)
            add(l, .v, c.dim, c.kvDim, weight: blk.wqkv + (c.dim + c.kvDim) * c.dim)
            add(l, .o, c.dim, c.dim, weight: blk.wo)
            add(l, .gate, c.dim, c.ffnDim, weight: blk.wGateUp)
            add(l, .up, c.dim, c.ffnDim, weight: blk.wGateUp + c.ffnDim * c.dim)
            add(l, .down, c.ffnDim, c.dim, weight: blk.wDown)
        }
        if wrapLMHead { add(0, .lmHead, c.dim, c.vocabSize, weight: layout.lmHead) }
        rank = r
        self.sites = sites
        count = offset
        self.index = index
        projections = Set(sites.map(\.site.projection))
    }

    @inline(__always)
    public func position(_ s: LinearSite) -> Int { index[s.layer * 8 + s.projection.rawValue] }

    @inline(__always)
    public func site(_ s: LinearSite) -> Site { sites[position(s)] }

    /// Sets every B in a head's flat factors to zero (reset-B: what a merge leaves of a head).
    public func zeroB(in factors: UnsafeMutablePointer<Float>) {
        for s in sites { (factors + s.b).update(repeating: 0, count: s.outFeatures * rank) }
    }

    /// Names of the model tensors the adapters wrap (frozen under LTE).
    public var wrappedTensorNames: Set<String> {
        Set(sites.map { $0.site.projection.modulePath(layer: $0.site.layer) + ".weight" })
    }
}

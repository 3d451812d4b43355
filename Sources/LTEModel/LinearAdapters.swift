/// The linear layers of the model, by role. Every one computes y = x Wᵀ with W stored [out, in].
public enum Projection: Int, CaseIterable, Sendable {
    case q, k, v, o, gate, up, down, lmHead

    /// The Hugging Face module path of this projection in block `layer`.
    public func modulePath(layer: Int) -> String {
        switch self {
        case .q: "model.layers.\(layer).self_attn.q_proj"
        case .k: "model.layers.\(layer).self_attn.k_proj"
        case .v: "model.layers.\(layer).self_attn.v_proj"
        case .o: "model.layers.\(layer).self_attn.o_proj"
        case .gate: "model.layers.\(layer).mlp.gate_proj"
        case .up: "model.layers.\(layer).mlp.up_proj"
        case .down: "model.layers.\(layer).mlp.down_proj"
        case .lmHead: "lm_head"
        }
    }
}

/// One linear layer of the model: block `layer`'s projection (layer is 0 for lm_head).
public struct LinearSite: Hashable, Sendable {
    public let layer: Int
    public let projection: Projection
    public init(layer: Int, projection: Projection) { self.layer = layer; self.projection = projection }
}

/// Extra trainable terms added to the model's linear layers (low-rank adapters, for LTE).
///
/// The model calls `forward` right after each base product it wraps and `backward` beside each
/// base input-gradient product. Whether the wrapped base weights also train is the model's choice
/// (`Transformer(config:trainable:)`): frozen ones get no gradient slot and no dW product.
public protocol LinearAdapters: AnyObject {
    func wraps(_ projection: Projection) -> Bool
    /// y (rows, ldy) += Δ(x), x (rows, ldx).
    func forward(_ site: LinearSite, x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int)
    /// dx (rows, lddx) += Δᵀ(dy); the adapter accumulates its own parameter gradients from x and dy.
    func backward(_ site: LinearSite, x: UnsafePointer<Float>, ldx: Int, dy: UnsafePointer<Float>, lddy: Int,
                  dx: UnsafeMutablePointer<Float>, lddx: Int, rows: Int)
}

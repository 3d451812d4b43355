import LTENumerics

/// Where a model reads the weights it does not train (the wrapped W of an LTE head).
///
/// `Transformer` asks for one tensor, or fused group (q|k|v, gate|up), right before the product that
/// uses it, and uses the pointer at once: an implementation may hand out the same scratch every time
/// (`LayerFold`), so a lane needs one layer of it, not a copy of the model.
public protocol FrozenWeights: AnyObject {
    /// The values of the frozen tensor (or fused group) at `offset` of the model's `ParameterLayout`,
    /// as the model multiplies by them; valid until the next call.
    func weights(at offset: Int) -> UnsafePointer<Float>
}

/// Frozen weights kept in some form a lane reads float32 values from, one tensor group at a time:
/// the main weights themselves (`FloatBuffer`) or their quantized form (`QuantizedWeights`).
public protocol FrozenWeightStore: AnyObject {
    /// Writes the `count` float32 values that start at `offset` of the model's layout into `y`.
    func read(offset: Int, count: Int, into y: UnsafeMutablePointer<Float>)
}

/// The main weights read in place: no copy, the pointer is into the buffer itself.
extension FloatBuffer: FrozenWeights, FrozenWeightStore {
    public func weights(at offset: Int) -> UnsafePointer<Float> { UnsafePointer(pointer + offset) }

    public func read(offset: Int, count: Int, into y: UnsafeMutablePointer<Float>) {
        y.update(from: pointer + offset, count: count)
    }
}

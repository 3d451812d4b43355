/// A named tensor as it crosses the wire: weights, LoRA factors, merged deltas.
///
/// The net layer knows nothing of models, so a tensor is just a name (Hugging Face / PEFT style,
/// chosen by the caller), a shape, an encoding and its payload. On the wire: name (UInt32 length +
/// UTF-8), rank (UInt32), dims (UInt64 each), encoding (UInt8), then for float32 `product(dims)`
/// little-endian float32 values (the count is implied by the shape, so there is no second length
/// that could disagree with it), for any other encoding a UInt64 byte length and the bytes, whose
/// meaning (and whether their length fits the shape) is the caller's to check.
public struct WireTensor: Equatable, Sendable {
    /// Deepest shape accepted; LTE tensors are rank 1 or 2, so 8 leaves room without inviting abuse.
    public static let maxRank = 8

    /// How the values are carried. 0 is float32; the other codes belong to the layer that makes the
    /// bytes (the cluster's push formats), so this layer needs no knowledge of quantization.
    public struct Encoding: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let float32 = Encoding(rawValue: 0)
    }

    public var name: String
    public var shape: [Int]
    public var encoding: Encoding
    /// The values, for `.float32` (else empty).
    public var values: [Float]
    /// The encoded payload, for any other encoding (else empty).
    public var bytes: [UInt8]

    public init(name: String, shape: [Int], values: [Float]) {
        self.name = name
        self.shape = shape
        self.encoding = .float32
        self.values = values
        self.bytes = []
    }

    /// A tensor carried as `bytes` in `encoding` (not float32).
    public init(name: String, shape: [Int], encoding: Encoding, bytes: [UInt8]) {
        precondition(encoding != .float32, "float32 tensors carry values")
        self.name = name
        self.shape = shape
        self.encoding = encoding
        self.values = []
        self.bytes = bytes
    }

    /// Bytes of payload on the wire.
    public var payloadByteCount: Int { encoding == .float32 ? 4 * values.count : bytes.count }

    /// Number of elements the shape describes, or nil when a dimension is negative or the product
    /// overflows `Int` (checked one factor at a time, so `[2^62, 2^62, 0]` is refused too: the
    /// encoder and decoder must agree on exactly which shapes exist).
    public static func elementCount(of shape: [Int]) -> Int? {
        var count = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            count = p
        }
        return count
    }

    /// Index of the first NaN or ±Inf value, if any.
    public func firstNonFiniteIndex() -> Int? {
        values.withUnsafeBufferPointer { v in
            // Branch-free scan in blocks keeps the common all-finite case fast on large tensors.
            var i = 0
            let n = v.count
            while i < n {
                let end = min(i + 4096, n)
                var bad = false
                for j in i..<end where !v[j].isFinite { bad = true }
                if bad { return (i..<end).first { !v[$0].isFinite } }
                i = end
            }
            return nil
        }
    }

    /// Throws `.nonFinite` naming the tensor and the first bad element. Kept separate from decoding:
    /// the codec carries any bit pattern faithfully; the server decides NaN/Inf pushes are refused.
    /// Encoded tensors are checked by whoever decodes them (this layer cannot read their values).
    public func validateFinite() throws {
        if let i = firstNonFiniteIndex() {
            throw WireError(.nonFinite, "tensor '\(WireText.quote(name))' element \(i) is \(values[i]) (NaN/Inf refused)")
        }
    }
}

extension Array where Element == WireTensor {
    /// Throws on the first tensor holding NaN or ±Inf.
    public func validateFinite() throws {
        for t in self { try t.validateFinite() }
    }

    /// The tensor with this name, if present (names are unique within a message).
    public subscript(named name: String) -> WireTensor? {
        first { $0.name == name }
    }
}

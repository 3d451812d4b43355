import LTEBase
import LTENet
import LTENumerics
import LTETraining

/// Names of the tensors the cluster sends, and their conversion from and to buffers. A head's
/// factors are a `FloatBuffer` everywhere in the cluster (pending pushes, the history, the heads
/// themselves); these conversions are the only place they become wire values and back.
///
///   main                  every parameter of the main model, flat (welcome only)
///   factors.<head>        a head's current A|B factors, flat in `LoRALayout` order; in a push and a
///                         round result in the run's `lte.push_format` (float32 values, or its bytes)
///   merged.<head>         a head's factors as of its last merge (welcome only)
///   replicated.<head>     a head's replicated tensors, packed (push): float32 values in f32, else
///                         their change since the last merge in the push format (`ReplicatedDelta`)
///   replicated            the round's mean of the replicated tensors (round result), the same way
///   outer.velocity        the outer optimizer's velocity m over the wrapped weights, packed
///                         (`OuterOptimizer.packedVelocity`; welcome only, `lte.outer nesterov`)
enum WireNames {
    static let main = "main"
    static let velocity = "outer.velocity"
    static let replicatedMean = "replicated"
    static func factors(_ h: Int) -> String { "factors.\(h)" }
    static func merged(_ h: Int) -> String { "merged.\(h)" }
    static func replicated(_ h: Int) -> String { "replicated.\(h)" }
    /// A frozen tensor in `lte.frozen_weights`' format, as the server requantized it (round result).
    static func frozen(_ tensorName: String) -> String { "frozen.\(tensorName)" }
}

extension WireTensor {
    init(name: String, buffer: FloatBuffer) {
        self.init(name: name, shape: [buffer.count], values: buffer.array)
    }

}

extension QuantizedFormat {
    /// The tensor encoding a push format travels as: float32 as plain values, the others as the
    /// bytes of `QuantizedTensor`'s layout. Codes are part of the wire format: never reuse one.
    var wireEncoding: WireTensor.Encoding {
        switch self {
        case .f32: .float32
        case .bf16: WireTensor.Encoding(rawValue: 1)
        case .int8: WireTensor.Encoding(rawValue: 4)   // Huffman-coded (2 was plain int8, before wire version 7)
        case .nf4: WireTensor.Encoding(rawValue: 3)
        }
    }
}

extension WireTensor {
    /// A head's factors as pushed (or sent back) in their format, int8 Huffman-coded (`wireBytes`).
    init(name: String, pushed: QuantizedTensor) {
        if pushed.format == .f32 {
            self.init(name: name, shape: [pushed.count], values: pushed.bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
        } else {
            self.init(name: name, shape: [pushed.count], encoding: pushed.format.wireEncoding, bytes: pushed.wireBytes)
        }
    }
}

extension WireTensor {
    /// Packed replicated tensors as a push in `format` carries them: their values in f32, else their
    /// change from `base` (the last merged values) in that format (`ReplicatedDelta`).
    init(name: String, replicated: FloatBuffer, base: FloatBuffer, format: QuantizedFormat) {
        if format == .f32 { self.init(name: name, buffer: replicated); return }
        let change = withExtendedLifetime((replicated, base)) {
            ReplicatedDelta(values: replicated.pointer, base: base.pointer, count: replicated.count, format: format)
        }
        self.init(name: name, pushed: change.quantized)
    }
}

extension Array where Element == WireTensor {
    /// Packed replicated tensors named `name`, `count` values as `format` carries them, as values:
    /// read (f32) or `base` plus the change (`ReplicatedDelta`).
    func replicated(_ name: String, count: Int, format: QuantizedFormat, base: FloatBuffer) throws -> [Float] {
        if format == .f32 { return try flat(name, count: count) }
        let change = ReplicatedDelta(received: try quantized(name, count: count, format: format))
        return withExtendedLifetime(base) { change.values(over: base.pointer).array }
    }

    /// The factors named `name`, `count` values in `format`: their bytes and the values they stand for.
    func pushedFactors(_ name: String, count: Int, format: QuantizedFormat) throws -> PushedFactors {
        PushedFactors(received: try quantized(name, count: count, format: format))
    }

    /// The tensor named `name`, `count` values in `format` (int8 in blocks of `blockSize`, by default
    /// a round's), as the bytes it carries.
    func quantized(_ name: String, count: Int, format: QuantizedFormat, blockSize: Int? = nil) throws -> QuantizedTensor {
        guard let t = first(where: { $0.name == name }) else { throw LTEError("message lacks tensor \(name)") }
        guard t.shape == [count] else { throw LTEError("tensor \(name) has shape \(t.shape), expected [\(count)]") }
        guard t.encoding == format.wireEncoding else {
            throw LTEError("tensor \(name) is encoded as \(t.encoding.rawValue), the run's lte.push_format \(format.rawValue) is \(format.wireEncoding.rawValue)")
        }
        let blockSize = blockSize ?? format.pushedBlockSize
        let received = format == .f32 ? QuantizedTensor(format: .f32, count: count, bytes: t.values.withUnsafeBytes { [UInt8]($0) })
                                      : QuantizedTensor(format: format, count: count, blockSize: blockSize, wireBytes: t.bytes)
        guard let q = received else {
            let plain = format.byteCount(values: count, blockSize: blockSize)
            throw LTEError(format == .int8 ? "tensor \(name) is not Huffman-coded int8 of \(count) values (\(plain) bytes in blocks of \(blockSize))"
                                           : "tensor \(name) has \(t.bytes.count) bytes, \(format.rawValue) needs \(plain) for \(count) values")
        }
        return q
    }

    /// The tensor named `name`, which must be flat with `count` values.
    func flat(_ name: String, count: Int) throws -> [Float] {
        guard let t = first(where: { $0.name == name }) else { throw LTEError("message lacks tensor \(name)") }
        guard t.shape == [count], t.values.count == count else {
            throw LTEError("tensor \(name) has shape \(t.shape), expected [\(count)]")
        }
        return t.values
    }

    /// The tensor named `name`, flat with `count` values, in a buffer of its own.
    func buffer(_ name: String, count: Int) throws -> FloatBuffer { FloatBuffer(try flat(name, count: count)) }

    func has(_ name: String) -> Bool { contains { $0.name == name } }
}

extension PushedFactors {
    /// The first value that is NaN or ±Inf once dequantized (a NaN scale poisons a merge as surely
    /// as a NaN value), if any.
    var firstNonFiniteIndex: Int? {
        withExtendedLifetime(values) { (0..<values.count).first { !values.pointer[$0].isFinite } }
    }
}

import LTEBase
import LTENet
import LTENumerics

/// Names of the tensors the cluster sends, and their conversion from and to buffers. A head's
/// factors are a `FloatBuffer` everywhere in the cluster (pending pushes, the history, the heads
/// themselves); these conversions are the only place they become wire values and back.
///
///   main                  every parameter of the main model, flat (welcome only)
///   factors.<head>        a head's current A|B factors, flat in `LoRALayout` order
///   merged.<head>         a head's factors as of its last merge (welcome only)
///   replicated.<head>     a head's replicated tensors, packed (push)
///   replicated            the round's mean of the replicated tensors (round result)
enum WireNames {
    static let main = "main"
    static let replicatedMean = "replicated"
    static func factors(_ h: Int) -> String { "factors.\(h)" }
    static func merged(_ h: Int) -> String { "merged.\(h)" }
    static func replicated(_ h: Int) -> String { "replicated.\(h)" }
}

extension WireTensor {
    init(name: String, buffer: FloatBuffer) {
        self.init(name: name, shape: [buffer.count], values: buffer.array)
    }

}

extension Array where Element == WireTensor {
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

import Foundation
import LTEBase

/// One float32 tensor: its shape and its values in row-major order.
public struct SafeTensor: Equatable, Sendable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "SafeTensor: shape \(shape) does not hold \(values.count) values")
        self.shape = shape
        self.values = values
    }
}

/// A safetensors file (the Hugging Face checkpoint format), float32 only.
///
///     u64 LE     N, the header length
///     N bytes    JSON: {"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [...],
///                "data_offsets": [begin, end]}, ...}, padded with spaces to a multiple of 8
///     the rest   tensor data, little-endian, back to back, offsets relative to the end of the header
///
/// Written exactly as the reference implementation writes it (metadata first, tensors sorted by
/// name, compact JSON, space padding), so a file from here and one from `safetensors.torch.save_file`
/// are byte-identical for the same tensors. Reading validates everything a hostile file could get
/// wrong before touching the data (see `SafeTensorsHeader`).
public struct SafeTensorsFile: Equatable, Sendable {
    public var tensors: [String: SafeTensor]
    public var metadata: [String: String]

    public init(tensors: [String: SafeTensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Tensor names in file order (sorted by UTF-8 bytes).
    public var names: [String] { tensors.keys.sorted(by: SafeTensorsHeader.precedes) }

    public subscript(name: String) -> SafeTensor? { tensors[name] }

    // MARK: reading

    /// Reads and validates a file; every problem is an `LTEError` naming the file.
    public init(contentsOf url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw LTEError("safetensors file \(url.path) does not exist")
        }
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw LTEError("safetensors file \(url.path) cannot be read: \(error.localizedDescription)")
        }
        try self.init(bytes: data, source: url.path)
    }

    /// Parses a whole file held in memory; `source` names it in error messages.
    public init(bytes data: Data, source: String) throws {
        let header = try SafeTensorsHeader.parse(data, source: source)
        var tensors: [String: SafeTensor] = [:]
        data.withUnsafeBytes { raw in
            for entry in header.entries {
                let count = entry.byteCount / 4
                let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    if count > 0 {
                        UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(
                            from: raw.baseAddress! + header.dataStart + entry.begin, byteCount: entry.byteCount)
                    }
                    initialized = count
                }
                #if _endian(big)
                let host = values.map { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) }
                #else
                let host = values
                #endif
                tensors[entry.name] = SafeTensor(shape: entry.shape, values: host)
            }
        }
        self.init(tensors: tensors, metadata: header.metadata)
    }

    // MARK: writing

    /// A float32 tensor in memory owned elsewhere (e.g. a slice of a model's parameter buffer), to be
    /// written without an intermediate copy. The pointer must stay valid for the duration of the write.
    public struct TensorView {
        public var name: String
        public var shape: [Int]
        public var data: UnsafeBufferPointer<Float>

        public init(name: String, shape: [Int], data: UnsafeBufferPointer<Float>) {
            self.name = name
            self.shape = shape
            self.data = data
        }
    }

    /// The file's bytes.
    public func encoded() throws -> Data {
        let order = names
        let header = try SafeTensorsHeader.encode(
            order.map { (name: $0, shape: tensors[$0]!.shape, count: tensors[$0]!.values.count) }, metadata: metadata)
        var out = header
        for name in order { tensors[name]!.values.withUnsafeBytes { out.append(contentsOf: $0) } }
        return out
    }

    public func write(to url: URL) throws {
        try Self.write(try encoded(), to: url)
    }

    /// The bytes of a file holding these tensors (any order given; written sorted by name).
    public static func encode(_ views: [TensorView], metadata: [String: String] = [:]) throws -> Data {
        let sorted = views.sorted { SafeTensorsHeader.precedes($0.name, $1.name) }
        var out = try SafeTensorsHeader.encode(sorted.map { ($0.name, $0.shape, $0.data.count) }, metadata: metadata)
        for view in sorted { out.append(contentsOf: UnsafeRawBufferPointer(view.data)) }
        return out
    }

    /// Writes tensors straight from memory owned elsewhere.
    public static func write(_ views: [TensorView], metadata: [String: String] = [:], to url: URL) throws {
        try write(try encode(views, metadata: metadata), to: url)
    }

    private static func write(_ data: Data, to url: URL) throws {
        do { try data.write(to: url, options: .atomic) } catch {
            throw LTEError("cannot write safetensors file \(url.path): \(error.localizedDescription)")
        }
    }
}

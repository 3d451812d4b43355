import Foundation
import LTEBase

/// The JSON header of a safetensors file: writing it byte-for-byte like the reference (serde_json,
/// compact, metadata first), and reading it with every check the reference makes, so a corrupt or
/// hostile file fails with a clear message instead of reading out of bounds.
enum SafeTensorsHeader {
    /// The reference implementation's limit; anything larger is not a real header.
    static let maxHeaderBytes = 100_000_000

    /// One tensor's entry, as validated from a file. Offsets are relative to `dataStart`.
    struct Entry {
        let name: String
        let shape: [Int]
        let begin: Int
        let end: Int
        var byteCount: Int { end - begin }
    }

    struct Parsed {
        let entries: [Entry]         // sorted by offset
        let metadata: [String: String]
        let dataStart: Int           // 8 + N
    }

    /// Names are ordered by their UTF-8 bytes, as Rust orders `String`s.
    static func precedes(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    // MARK: writing

    /// u64 length + padded header for tensors given in file order, each `count` float32 values.
    static func encode(_ tensors: [(name: String, shape: [Int], count: Int)], metadata: [String: String]) throws -> Data {
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += "\"__metadata__\":{"
            json += metadata.keys.sorted(by: precedes).map { "\(quoted($0)):\(quoted(metadata[$0]!))" }.joined(separator: ",")
            json += "}"
            first = false
        }
        var seen = Set<String>()
        var offset = 0
        for tensor in tensors {
            guard !tensor.name.isEmpty, tensor.name != "__metadata__", seen.insert(tensor.name).inserted else {
                throw LTEError("safetensors: tensor name \(tensor.name.debugDescription) is empty, reserved or repeated")
            }
            guard tensor.shape.allSatisfy({ $0 >= 0 }), tensor.shape.reduce(1, *) == tensor.count else {
                throw LTEError("safetensors: tensor \(tensor.name) has shape \(tensor.shape) but \(tensor.count) values")
            }
            let end = offset + 4 * tensor.count
            if !first { json += "," }
            first = false
            json += "\(quoted(tensor.name)):{\"dtype\":\"F32\",\"shape\":[\(tensor.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(end)]}"
            offset = end
        }
        json += "}"
        var header = Array(json.utf8)
        header += [UInt8](repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8)
        var out = Data(capacity: 8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        return out
    }

    /// A JSON string literal escaped as serde_json escapes it: quote, backslash and control characters.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    // MARK: reading

    /// Validates length, JSON, dtypes, shapes and offsets (in range, contiguous from 0, covering the
    /// data section exactly, sized as product(shape) × 4).
    static func parse(_ data: Data, source: String) throws -> Parsed {
        func fail(_ problem: String) -> LTEError { LTEError("safetensors file \(source): \(problem)") }
        guard data.count >= 8 else {
            throw fail("only \(data.count) bytes, too short for the 8-byte header length (truncated?)")
        }
        let declared = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard declared <= UInt64(maxHeaderBytes) else {
            throw fail("declares a \(declared)-byte header, over the 100 MB limit (not a safetensors file?)")
        }
        let headerLength = Int(declared)
        guard 8 + headerLength <= data.count else {
            throw fail("declares a \(headerLength)-byte header but only \(data.count - 8) bytes follow (truncated?)")
        }
        let raw: RawHeader
        do {
            raw = try JSONDecoder().decode(RawHeader.self, from: data.subdata(in: data.startIndex + 8 ..< data.startIndex + 8 + headerLength))
        } catch let problem as HeaderProblem {
            throw fail("header \(problem.message)")
        } catch {
            throw fail("header is not a valid JSON object")
        }
        let dataSize = data.count - 8 - headerLength
        var entries: [Entry] = []
        for (name, info) in raw.tensors {
            guard info.dtype == "F32" else {
                throw fail("tensor \(name) has dtype \(info.dtype); only F32 is supported")
            }
            guard info.shape.allSatisfy({ $0 >= 0 }), info.dataOffsets.count == 2 else {
                throw fail("tensor \(name) has a negative dimension or data_offsets that are not [begin, end]")
            }
            var elements = 1
            for dimension in info.shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
                guard !overflow else { throw fail("tensor \(name) has shape \(info.shape), too large") }
                elements = product
            }
            let (begin, end) = (info.dataOffsets[0], info.dataOffsets[1])
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw fail("tensor \(name) has data_offsets [\(begin), \(end)] outside the \(dataSize)-byte data section")
            }
            let (bytes, overflow) = elements.multipliedReportingOverflow(by: 4)
            guard !overflow, end - begin == bytes else {
                throw fail("tensor \(name) has data_offsets [\(begin), \(end)] (\(end - begin) bytes) but shape \(info.shape) of F32 needs \(elements) × 4")
            }
            entries.append(Entry(name: name, shape: info.shape, begin: begin, end: end))
        }
        entries.sort { ($0.begin, $0.end, $0.name.utf8.count) < ($1.begin, $1.end, $1.name.utf8.count) }
        var expected = 0
        for entry in entries {
            guard entry.begin == expected else {
                throw fail(entry.begin < expected
                    ? "tensor \(entry.name) at data_offsets [\(entry.begin), \(entry.end)] overlaps the tensor before it"
                    : "gap in the data section before tensor \(entry.name) (bytes \(expected)..<\(entry.begin) belong to no tensor)")
            }
            expected = entry.end
        }
        guard expected == dataSize else {
            throw fail("tensors cover \(expected) bytes but the data section holds \(dataSize) (truncated or trailing garbage)")
        }
        return Parsed(entries: entries, metadata: raw.metadata, dataStart: 8 + headerLength)
    }

    private struct HeaderProblem: Error { let message: String }

    private struct TensorInfo: Decodable {
        let dtype: String
        let shape: [Int]
        let dataOffsets: [Int]
        enum CodingKeys: String, CodingKey { case dtype, shape, dataOffsets = "data_offsets" }
    }

    private struct Key: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    /// The header object: "__metadata__" (string → string) and one TensorInfo per other key.
    private struct RawHeader: Decodable {
        var tensors: [(String, TensorInfo)] = []
        var metadata: [String: String] = [:]

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            for key in container.allKeys {
                if key.stringValue == "__metadata__" {
                    guard let map = try? container.decode([String: String].self, forKey: key) else {
                        throw HeaderProblem(message: "__metadata__ is not an object of strings")
                    }
                    metadata = map
                } else {
                    guard let info = try? container.decode(TensorInfo.self, forKey: key) else {
                        throw HeaderProblem(message: "entry \(key.stringValue) is not {\"dtype\", \"shape\": [ints], \"data_offsets\": [begin, end]}")
                    }
                    tensors.append((key.stringValue, info))
                }
            }
        }
    }
}

import Foundation
import LTEBase
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEStore

final class SafeTensorsTests: XCTestCase {
    private func temporaryFile(_ name: String = "model.safetensors") throws -> URL {
        try makeTemporaryDirectory().appendingPathComponent(name)
    }

    /// u64 LE length + header bytes + data, as a file would hold them.
    private func file(header: String, data: [UInt8] = []) -> [UInt8] {
        let h = Array(header.utf8)
        return (0..<8).map { UInt8(truncatingIfNeeded: UInt64(h.count) >> (8 * UInt64($0))) } + h + data
    }

    private func floatBytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern.littleEndian >> (8 * UInt32($0))) } }
    }

    private func assertRejects(_ bytes: [UInt8], _ problem: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let url = try temporaryFile()
        try Data(bytes).write(to: url)
        do {
            _ = try SafeTensorsFile(contentsOf: url)
            XCTFail("expected rejection: \(problem)", file: file, line: line)
        } catch let error as LTEError {
            XCTAssertTrue(error.message.contains(url.path), error.message, file: file, line: line)
            XCTAssertTrue(error.message.contains(problem), "\"\(error.message)\" lacks \"\(problem)\"", file: file, line: line)
        }
    }

    // MARK: byte layout (the reference implementation's own test vectors)

    func testLayoutMatchesReferenceWithPadding() throws {
        let values: [Float] = [0, 1, 2, 3, 4, 5]
        let bytes = [UInt8](try SafeTensorsFile(tensors: ["attn0": SafeTensor(shape: [1, 1, 2, 3], values: values)]).encoded())
        let header = #"{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}"# + String(repeating: " ", count: 7)
        XCTAssertEqual(header.utf8.count, 72)
        XCTAssertEqual(bytes, file(header: header, data: floatBytes(values)))
        XCTAssertEqual(Array(bytes.suffix(24)), [0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64])
    }

    func testLayoutOfEmptyFilesWithAndWithoutMetadata() throws {
        XCTAssertEqual([UInt8](try SafeTensorsFile().encoded()), [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32])
        XCTAssertEqual([UInt8](try SafeTensorsFile(metadata: ["framework": "pt"]).encoded()),
                       file(header: #"{"__metadata__":{"framework":"pt"}}"# + "     "))
    }

    func testTensorsAreWrittenSortedByNameWithEscapedNamesAndSortedMetadata() throws {
        let st = SafeTensorsFile(
            tensors: ["model.norm.weight": SafeTensor(shape: [2], values: [1, 2]),
                      "lm_head.weight": SafeTensor(shape: [1, 2], values: [3, 4]),
                      "odd\"name\n": SafeTensor(shape: [], values: [5])],
            metadata: ["format": "pt", "alpha": "a/b"])
        let header = #"{"__metadata__":{"alpha":"a/b","format":"pt"},"lm_head.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"#
            + #""model.norm.weight":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"odd\"name\n":{"dtype":"F32","shape":[],"data_offsets":[16,20]}}"#
        let padded = header + String(repeating: " ", count: (8 - header.utf8.count % 8) % 8)
        XCTAssertEqual([UInt8](try st.encoded()), file(header: padded, data: floatBytes([3, 4, 1, 2, 5])))
        XCTAssertEqual(st.names, ["lm_head.weight", "model.norm.weight", "odd\"name\n"])
    }

    // MARK: round trip

    func testRoundTripThroughAFile() throws {
        var rng = SeededGenerator(seed: 11)
        var tensors: [String: SafeTensor] = [:]
        for (i, shape) in [[3, 5], [7], [], [0, 4], [2, 3, 4]].enumerated() {
            let count = shape.reduce(1, *)
            tensors["layer.\(i).weight"] = SafeTensor(shape: shape, values: (0..<count).map { _ in rng.nextNormal() })
        }
        tensors["special"] = SafeTensor(shape: [4], values: [.infinity, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude])
        let original = SafeTensorsFile(tensors: tensors, metadata: ["format": "pt", "step": "120"])
        let url = try temporaryFile()
        try original.write(to: url)
        let read = try SafeTensorsFile(contentsOf: url)
        XCTAssertEqual(read, original)
        XCTAssertEqual(read["special"]!.values[1].sign, .minus)
        XCTAssertEqual(try Data(contentsOf: url).count % 8, try read.encoded().count % 8)
        XCTAssertEqual(try Data(contentsOf: url), try read.encoded())
    }

    func testWritingFromBorrowedMemoryMatchesWritingArrays() throws {
        let parameters = FloatBuffer((0..<20).map { Float($0) * 0.5 })
        let views = [
            SafeTensorsFile.TensorView(name: "b", shape: [2, 4], data: UnsafeBufferPointer(start: parameters.pointer + 12, count: 8)),
            SafeTensorsFile.TensorView(name: "a", shape: [3, 4], data: UnsafeBufferPointer(start: parameters.pointer, count: 12)),
        ]
        let url = try temporaryFile()
        try SafeTensorsFile.write(views, metadata: ["k": "v"], to: url)
        let expected = SafeTensorsFile(tensors: ["a": SafeTensor(shape: [3, 4], values: Array(parameters.array[0..<12])),
                                                 "b": SafeTensor(shape: [2, 4], values: Array(parameters.array[12..<20]))],
                                       metadata: ["k": "v"])
        XCTAssertEqual(try Data(contentsOf: url), try expected.encoded())
        XCTAssertEqual(try SafeTensorsFile(contentsOf: url), expected)
        let mismatched = [SafeTensorsFile.TensorView(name: "c", shape: [5], data: UnsafeBufferPointer(start: parameters.pointer, count: 4))]
        XCTAssertThrowsError(try SafeTensorsFile.encode(mismatched))
        let duplicate = [views[0], views[0]]
        XCTAssertThrowsError(try SafeTensorsFile.encode(duplicate))
    }

    // MARK: rejections

    func testRejectsTruncatedFiles() throws {
        let good = [UInt8](try SafeTensorsFile(tensors: ["w": SafeTensor(shape: [2, 2], values: [1, 2, 3, 4])]).encoded())
        try assertRejects(Array(good.prefix(5)), "too short")
        try assertRejects(Array(good.prefix(20)), "only 12 bytes follow")
        try assertRejects(Array(good.dropLast(4)), "outside the 12-byte data section")
        try assertRejects(good + [0, 0, 0, 0], "data section holds 20")
        let url = try temporaryFile("missing.safetensors")
        XCTAssertThrowsError(try SafeTensorsFile(contentsOf: url)) { XCTAssertTrue("\($0)".contains("missing.safetensors")) }
    }

    func testRejectsBadHeaders() throws {
        var huge = file(header: "{}")
        huge.replaceSubrange(0..<8, with: [0, 0, 0, 0, 1, 0, 0, 0])
        try assertRejects(huge, "100 MB limit")
        try assertRejects(file(header: #"{"w": {"dtype": "F32", "#), "not a valid JSON object")
        try assertRejects(file(header: "[1, 2]"), "not a valid JSON object")
        try assertRejects(file(header: #"{"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0]), "entry w is not")
        try assertRejects(file(header: #"{"w": {"dtype": "F32", "shape": [1]}}"#, data: [0, 0, 0, 0]), "entry w is not")
        try assertRejects(file(header: #"{"__metadata__": {"a": 1}}"#), "__metadata__ is not an object of strings")
        try assertRejects(file(header: #"{"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0]),
                          "tensor w has dtype BF16; only F32 is supported")
    }

    func testRejectsBadOffsets() throws {
        let eight = [UInt8](repeating: 0, count: 8)
        try assertRejects(file(header: #"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}"#, data: eight),
                          "data_offsets [0, 16] outside the 8-byte data section")
        try assertRejects(file(header: #"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [4, 0]}}"#, data: eight), "outside")
        try assertRejects(file(header: #"{"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}"#, data: eight), "negative dimension")
        try assertRejects(file(header: #"{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#, data: eight), "shape [3] of F32 needs 3 × 4")
        try assertRejects(file(header: #"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#, data: eight), "gap in the data section before tensor w")
        try assertRejects(file(header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#, data: eight),
                          "tensor b at data_offsets [4, 8] overlaps")
        try assertRejects(file(header: #"{"w": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 8]}}"#, data: eight), "too large")
    }

    func testAcceptsHeadersInAnyOrderWithUnpaddedLength() throws {
        let bytes = file(header: #"{"b":{"data_offsets":[4,8],"shape":[1],"dtype":"F32"},"a":{"shape":[1],"dtype":"F32","data_offsets":[0,4]}}"#,
                         data: floatBytes([1.5, -2]))
        let url = try temporaryFile()
        try Data(bytes).write(to: url)
        let read = try SafeTensorsFile(contentsOf: url)
        XCTAssertEqual(read.tensors, ["a": SafeTensor(shape: [1], values: [1.5]), "b": SafeTensor(shape: [1], values: [-2])])
        XCTAssertEqual(read.metadata, [:])
        let sliced = (Data([9, 9, 9]) + Data(bytes)).dropFirst(3)
        XCTAssertEqual(try SafeTensorsFile(bytes: sliced, source: "slice"), read)
    }
}

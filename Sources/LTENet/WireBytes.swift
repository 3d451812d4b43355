import Foundation

/// Appends little-endian fields to one growing buffer. Encoding builds the whole frame in place
/// (header, body, trailer) so a multi-megabyte push is copied once, from the tensors into the frame.
struct ByteWriter {
    var data: Data

    init(capacity: Int) {
        data = Data()
        data.reserveCapacity(capacity)
    }

    mutating func u8(_ v: UInt8) { data.append(v) }

    mutating func int<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) }
    }

    mutating func f32(_ v: Float) { int(v.bitPattern) }

    mutating func raw(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        data.append(base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
    }

    mutating func floats(_ values: [Float]) {
        #if _endian(little)
        values.withUnsafeBytes { raw($0) }
        #else
        for v in values { f32(v) }
        #endif
    }
}

/// Reads little-endian fields from a frame with a bounds check before every access: each `take`
/// proves `count <= remaining` first, so a lying length can only produce a `WireError`, never a read
/// past the end. Counts are checked against the bytes left *before* anything is allocated, so a
/// frame cannot make the decoder reserve more memory than the frame itself occupies.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset: Int
    let end: Int
    let maxStringBytes: Int

    init(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int, maxStringBytes: Int) {
        self.bytes = bytes
        self.offset = start
        self.end = end
        self.maxStringBytes = maxStringBytes
    }

    var remaining: Int { end - offset }

    mutating func take(_ count: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= remaining else {
            throw WireError(.truncated, "\(what()) needs \(count) bytes at offset \(offset), only \(remaining) left")
        }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        offset += count
        return slice
    }

    mutating func int<T: FixedWidthInteger>(_ type: T.Type, _ what: @autoclosure () -> String) throws -> T {
        let b = try take(MemoryLayout<T>.size, what())
        return T(littleEndian: b.loadUnaligned(as: T.self))
    }

    mutating func f32(_ what: @autoclosure () -> String) throws -> Float {
        Float(bitPattern: try int(UInt32.self, what()))
    }

    /// A non-negative count or quantity stored as UInt64, refused if it does not fit `Int`.
    mutating func count64(_ what: @autoclosure () -> String) throws -> Int {
        let v = try int(UInt64.self, what())
        guard v <= UInt64(Int.max) else { throw WireError(.invalidValue, "\(what()) \(v) is out of range") }
        return Int(v)
    }

    /// A UInt32 element count for a list whose elements take at least `minElementBytes` each.
    mutating func listCount(_ what: @autoclosure () -> String, minElementBytes: Int) throws -> Int {
        let n = Int(try int(UInt32.self, "\(what()) count"))
        guard n <= remaining / max(minElementBytes, 1) else {
            throw WireError(.truncated, "\(what()) claims \(n) entries but only \(remaining) bytes are left")
        }
        return n
    }

    mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let n = Int(try int(UInt32.self, "\(what()) length"))
        guard n <= maxStringBytes else {
            throw WireError(.tooLarge, "\(what()) is \(n) bytes, limit \(maxStringBytes)")
        }
        let b = try take(n, what())
        guard let s = String(validating: b, as: UTF8.self) else {
            throw WireError(.invalidString, "\(what()) is not valid UTF-8")
        }
        return s
    }

    mutating func blob(_ what: @autoclosure () -> String) throws -> Data {
        let n = Int(try int(UInt32.self, "\(what()) length"))
        return Data(try take(n, what()))
    }

    mutating func digest(_ what: @autoclosure () -> String) throws -> Data {
        Data(try take(32, what()))
    }

    mutating func floats(_ n: Int, _ what: @autoclosure () -> String) throws -> [Float] {
        let (byteCount, overflow) = n.multipliedReportingOverflow(by: 4)
        guard !overflow else { throw WireError(.invalidTensor, "\(what()) element count \(n) overflows") }
        let b = try take(byteCount, what())
        // No capacity-0 array through unsafeUninitializedCapacity: it writes the count into the
        // runtime's one shared empty-array storage, which ThreadSanitizer reports (rightly) as a
        // race between two threads decoding empty lists at once.
        guard n > 0 else { return [] }
        return [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            #if _endian(little)
            if n > 0 { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: b) }
            #else
            for i in 0..<n {
                buffer[i] = Float(bitPattern: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            }
            #endif
            initialized = n
        }
    }

    /// Refuses bytes left over after the last field: a canonical frame has exactly one parse.
    func finish(_ what: String) throws {
        if remaining != 0 {
            throw WireError(.trailingBytes, "\(remaining) unexpected bytes after the \(what) body")
        }
    }
}

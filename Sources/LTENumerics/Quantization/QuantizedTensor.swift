/// A float32 tensor held in a `QuantizedFormat`, as the bytes every node stores, sends and hashes.
///
/// Byte layout (little-endian), for `count` values in blocks of 64 (`QuantizedFormat.blockSize`; int8
/// also in blocks of another `blockSize`, as rounds carry it):
///
///   f32    count × float32
///   bf16   count × uint16 (the float32's upper half, rounded to nearest even)
///   int8   blocks × float32 absmax m_b | count × int8 round(x / m_b · 127)
///   nf4    float32 offset | scaleBlocks × float32 c_j | blocks × int8 q_b | ⌈count/2⌉ bytes of codes
///          (value 2k in the low nibble, 2k+1 in the high one). The block maxima m_b are stored as
///          m̂_b = offset + q_b/127 · c_j, with offset their mean and c_j the largest |m_b − offset| in
///          scale block j (256 blocks): QLoRA's double quantization, 8 bits per block scale. Values
///          are coded against m̂_b, the scale a reader will see.
///
/// Quantizing runs blocks in parallel; each block's bytes depend on its values alone (and, for nf4,
/// on the mean of the maxima, summed in one fixed order), so the bytes are the same at any thread count.
public struct QuantizedTensor: Equatable, Sendable {
    public let format: QuantizedFormat
    public let count: Int
    /// Values that share one int8 scale (nf4's blocks are always `QuantizedFormat.blockSize`).
    public let blockSize: Int
    public let bytes: [UInt8]

    /// Takes bytes read from a file or a message; their length must match the format and count.
    public init?(format: QuantizedFormat, count: Int, bytes: [UInt8], blockSize: Int = QuantizedFormat.blockSize) {
        guard count >= 0, Self.allows(format, blockSize), bytes.count == format.byteCount(values: count, blockSize: blockSize) else { return nil }
        self.format = format; self.count = count; self.blockSize = blockSize; self.bytes = bytes
    }

    /// Quantizes `count` finite values.
    public init(quantizing x: UnsafePointer<Float>, count: Int, format: QuantizedFormat, blockSize: Int = QuantizedFormat.blockSize) {
        precondition(Self.allows(format, blockSize), "\(format.rawValue) has no blocks of \(blockSize)")
        self.format = format
        self.count = count
        self.blockSize = blockSize
        var out = [UInt8](repeating: 0, count: format.byteCount(values: count, blockSize: blockSize))
        out.withUnsafeMutableBytes { raw in
            switch format {
            case .f32: raw.baseAddress!.copyMemory(from: x, byteCount: 4 * count)
            case .bf16: Self.encodeBF16(x, count: count, into: raw.baseAddress!.assumingMemoryBound(to: UInt16.self))
            case .int8: Self.encodeInt8(x, count: count, blockSize: blockSize, into: raw.baseAddress!)
            case .nf4: Self.encodeNF4(x, count: count, into: raw.baseAddress!)
            }
        }
        bytes = out
    }

    public init(quantizing values: [Float], format: QuantizedFormat, blockSize: Int = QuantizedFormat.blockSize) {
        self = values.withUnsafeBufferPointer { QuantizedTensor(quantizing: $0.baseAddress!, count: values.count, format: format, blockSize: blockSize) }
    }

    /// int8 takes any positive block size; the other formats only their own.
    private static func allows(_ format: QuantizedFormat, _ blockSize: Int) -> Bool {
        format == .int8 ? blockSize > 0 : blockSize == QuantizedFormat.blockSize
    }

    /// The float32 values the bytes stand for, into `y` (`count` values).
    public func dequantize(into y: UnsafeMutablePointer<Float>) {
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress!
            switch format {
            case .f32: UnsafeMutableRawPointer(y).copyMemory(from: base, byteCount: 4 * count)
            case .bf16:
                let h = base.assumingMemoryBound(to: UInt16.self)
                for i in 0..<count { y[i] = Float(bitPattern: UInt32(h[i]) << 16) }
            case .int8: Self.decodeInt8(base, count: count, blockSize: blockSize, into: y)
            case .nf4: Self.decodeNF4(base, count: count, into: y)
            }
        }
    }

    public var values: [Float] {
        var y = [Float](repeating: 0, count: count)
        y.withUnsafeMutableBufferPointer { dequantize(into: $0.baseAddress!) }
        return y
    }

    // MARK: - Formats

    private static func blocks(_ count: Int, of size: Int = QuantizedFormat.blockSize) -> Int { (count + size - 1) / size }

    /// Round to nearest, ties to even, of the float32's upper 16 bits (NaN stays a quiet NaN).
    @inline(__always)
    static func bf16(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(bits >> 16) | 0x0040 }
        return UInt16((bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }

    private static func encodeBF16(_ x: UnsafePointer<Float>, count: Int, into h: UnsafeMutablePointer<UInt16>) {
        for i in 0..<count { h[i] = bf16(x[i]) }
    }

    /// The absolute maximum of block b of x.
    @inline(__always)
    private static func absmax(_ x: UnsafePointer<Float>, count: Int, block b: Int, size: Int = QuantizedFormat.blockSize) -> Float {
        let start = b * size, end = min(count, start + size)
        var m: Float = 0
        for i in start..<end { m = max(m, abs(x[i])) }
        return m
    }

    /// Runs `body(b)` for every block b, split over the process's threads in contiguous chunks.
    private static func forEachBlock(_ blocks: Int, _ body: (Int) -> Void) {
        let chunk = 256
        Parallel.forEach((blocks + chunk - 1) / chunk) { c in
            for b in (c * chunk)..<min(blocks, (c + 1) * chunk) { body(b) }
        }
    }

    private static func encodeInt8(_ x: UnsafePointer<Float>, count: Int, blockSize: Int, into raw: UnsafeMutableRawPointer) {
        let nb = blocks(count, of: blockSize)
        let scales = raw.assumingMemoryBound(to: Float.self)
        let codes = (raw + 4 * nb).assumingMemoryBound(to: Int8.self)
        forEachBlock(nb) { b in
            let m = absmax(x, count: count, block: b, size: blockSize)
            scales[b] = m
            let start = b * blockSize, end = min(count, start + blockSize)
            let inv: Float = m > 0 ? 127 / m : 0
            for i in start..<end { codes[i] = Int8(max(-127, min(127, (x[i] * inv).rounded(.toNearestOrEven)))) }
        }
    }

    private static func decodeInt8(_ raw: UnsafeRawPointer, count: Int, blockSize: Int, into y: UnsafeMutablePointer<Float>) {
        let nb = blocks(count, of: blockSize)
        let scales = raw.assumingMemoryBound(to: Float.self)
        let codes = (raw + 4 * nb).assumingMemoryBound(to: Int8.self)
        for b in 0..<nb {
            let step = scales[b] / 127
            let start = b * blockSize, end = min(count, start + blockSize)
            for i in start..<end { y[i] = Float(codes[i]) * step }
        }
    }

    /// Where the parts of an nf4 tensor start in its bytes.
    private struct NF4Layout {
        let blocks: Int, scaleBlocks: Int
        init(count: Int) {
            blocks = QuantizedTensor.blocks(count)
            scaleBlocks = (blocks + QuantizedFormat.scaleBlockSize - 1) / QuantizedFormat.scaleBlockSize
        }
        var scaleOfScales: Int { 4 }
        var blockScales: Int { 4 + 4 * scaleBlocks }
        var codes: Int { blockScales + blocks }
    }

    /// m̂_b, the block scale a reader sees, from the stored offset, c_j and q_b.
    @inline(__always)
    private static func blockScale(offset: Float, c: Float, q: Int8) -> Float { offset + Float(q) / 127 * c }

    private static func encodeNF4(_ x: UnsafePointer<Float>, count: Int, into raw: UnsafeMutableRawPointer) {
        let l = NF4Layout(count: count)
        // The blocks' maxima, their mean (in double, in block order), and each scale block's spread.
        var maxima = [Float](repeating: 0, count: l.blocks)
        maxima.withUnsafeMutableBufferPointer { m in forEachBlock(l.blocks) { m[$0] = absmax(x, count: count, block: $0) } }
        let offset = l.blocks == 0 ? 0 : Float(maxima.reduce(0.0) { $0 + Double($1) } / Double(l.blocks))
        raw.storeBytes(of: offset, as: Float.self)
        let cs = (raw + l.scaleOfScales).assumingMemoryBound(to: Float.self)
        let qs = (raw + l.blockScales).assumingMemoryBound(to: Int8.self)
        for j in 0..<l.scaleBlocks {
            let range = (j * QuantizedFormat.scaleBlockSize)..<min(l.blocks, (j + 1) * QuantizedFormat.scaleBlockSize)
            let c = range.reduce(Float(0)) { max($0, abs(maxima[$1] - offset)) }
            cs[j] = c
            let inv: Float = c > 0 ? 127 / c : 0
            for b in range { qs[b] = Int8(max(-127, min(127, ((maxima[b] - offset) * inv).rounded(.toNearestOrEven)))) }
        }
        let codes = (raw + l.codes).assumingMemoryBound(to: UInt8.self)
        NormalFloat4.midpoints.withUnsafeBufferPointer { mid in
            forEachBlock(l.blocks) { b in
                let scale = blockScale(offset: offset, c: cs[b / QuantizedFormat.scaleBlockSize], q: qs[b])
                let inv: Float = scale > 0 ? 1 / scale : 0
                let start = b * QuantizedFormat.blockSize, end = min(count, start + QuantizedFormat.blockSize)
                // Blocks have an even size, so a block's codes fill whole bytes (the last may be half).
                var i = start
                while i < end {
                    let lo = NormalFloat4.code(x[i] * inv, midpoints: mid.baseAddress!)
                    let hi = i + 1 < end ? NormalFloat4.code(x[i + 1] * inv, midpoints: mid.baseAddress!) : 0
                    codes[i / 2] = lo | (hi << 4)
                    i += 2
                }
            }
        }
    }

    /// Each byte of codes as its two code-book values (the low nibble's first), unscaled: a block
    /// decodes with one 8-byte load and one two-lane multiply per byte, no per-value branch. The same
    /// products as value × scale one at a time, so the same bits (`decodeNF4Naive`).
    private static let nf4Pairs: [SIMD2<Float>] = (0..<256).map { SIMD2(NormalFloat4.values[$0 & 0x0F], NormalFloat4.values[$0 >> 4]) }

    private static func decodeNF4(_ raw: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>) {
        let l = NF4Layout(count: count)
        let offset = raw.load(as: Float.self)
        let cs = (raw + l.scaleOfScales).assumingMemoryBound(to: Float.self)
        let qs = (raw + l.blockScales).assumingMemoryBound(to: Int8.self)
        let codes = (raw + l.codes).assumingMemoryBound(to: UInt8.self)
        let fullBlocks = count / QuantizedFormat.blockSize, half = QuantizedFormat.blockSize / 2
        nf4Pairs.withUnsafeBufferPointer { table in
            let pairs = table.baseAddress!
            for b in 0..<fullBlocks {
                let scale = blockScale(offset: offset, c: cs[b / QuantizedFormat.scaleBlockSize], q: qs[b])
                let bytes = codes + b * half, out = y + b * QuantizedFormat.blockSize
                for k in 0..<half {
                    let v = pairs[Int(bytes[k])] * scale
                    out[2 * k] = v[0]
                    out[2 * k + 1] = v[1]
                }
            }
        }
        // The ragged last block, if any, value by value.
        if fullBlocks < l.blocks { decodeNF4Naive(raw, count: count, into: y, blocks: fullBlocks..<l.blocks) }
    }

    /// The definition, value by value: y_i = NF4[code_i] · m̂_b. The reference `decodeNF4` must equal.
    static func decodeNF4Naive(_ raw: UnsafeRawPointer, count: Int, into y: UnsafeMutablePointer<Float>, blocks: Range<Int>? = nil) {
        let l = NF4Layout(count: count)
        let offset = raw.load(as: Float.self)
        let cs = (raw + l.scaleOfScales).assumingMemoryBound(to: Float.self)
        let qs = (raw + l.blockScales).assumingMemoryBound(to: Int8.self)
        let codes = (raw + l.codes).assumingMemoryBound(to: UInt8.self)
        NormalFloat4.values.withUnsafeBufferPointer { table in
            let t = table.baseAddress!
            for b in blocks ?? 0..<l.blocks {
                let scale = blockScale(offset: offset, c: cs[b / QuantizedFormat.scaleBlockSize], q: qs[b])
                let start = b * QuantizedFormat.blockSize, end = min(count, start + QuantizedFormat.blockSize)
                for i in start..<end {
                    let byte = codes[i / 2]
                    y[i] = t[Int(i % 2 == 0 ? byte & 0x0F : byte >> 4)] * scale
                }
            }
        }
    }
}

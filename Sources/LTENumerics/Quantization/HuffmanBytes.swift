/// Canonical Huffman coding of a byte string (one code for all its bytes, order 0): how int8 factors
/// cross the wire (DESIGN.md §8). int8 codes of factors are bell-shaped around 0 — about 7.5 bits of
/// information a byte at blocks of 256 — so coding them takes what absmax quantization leaves.
/// Lossless: the receiver gets the very bytes, and so every node the very values.
///
/// Layout (little-endian):
///
///   u32 count of bytes | 128 bytes: the code length of byte value v (0 = absent, 1…15) in the low
///   nibble of byte v/2 for even v, the high one for odd v | the codes, most significant bit first,
///   the last byte padded with zero bits
///
/// Codes are canonical (DEFLATE's rule): shorter codes first, equal lengths in byte order, so the
/// lengths alone define them. The decoder refuses anything the encoder would not write: a count
/// other than the one expected, lengths that over-subscribe the code space, a code the lengths leave
/// unused, bits missing or left over, non-zero padding.
public enum HuffmanBytes {
    public static let maxCodeLength = 15
    static let headerSize = 4 + 128

    // MARK: - Encoding

    /// `bytes`, coded.
    public static func encode(_ bytes: [UInt8]) -> [UInt8] {
        let h = histogram(bytes), lengths = codeLengths(h)
        let codes = canonicalCodes(lengths)
        var out = header(count: bytes.count, lengths: lengths)
        out.reserveCapacity(out.count + Int((bitCount(h, lengths) + 7) / 8))
        var accumulator: UInt64 = 0, pending = 0
        for b in bytes {
            let length = Int(lengths[Int(b)])
            accumulator = accumulator << UInt64(length) | UInt64(codes[Int(b)])
            pending += length
            while pending >= 8 {
                pending -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt64(pending)))
            }
        }
        if pending > 0 { out.append(UInt8(truncatingIfNeeded: accumulator << UInt64(8 - pending))) }
        return out
    }

    /// The length `encode(bytes)` would have, without coding them.
    public static func encodedCount(_ bytes: [UInt8]) -> Int {
        let h = histogram(bytes)
        return headerSize + Int((bitCount(h, codeLengths(h)) + 7) / 8)
    }

    static func histogram(_ bytes: [UInt8]) -> [Int] {
        var h = [Int](repeating: 0, count: 256)
        for b in bytes { h[Int(b)] += 1 }
        return h
    }

    private static func bitCount(_ histogram: [Int], _ lengths: [UInt8]) -> Int64 {
        (0..<256).reduce(Int64(0)) { $0 + Int64(histogram[$1]) * Int64(lengths[$1]) }
    }

    /// Huffman's code lengths for `frequencies`, at most `maxCodeLength` bits: where the tree would be
    /// deeper, the frequencies are halved (rounding up, so none present vanishes) and the tree built
    /// again, flattening the rarest codes. A lone byte value gets a 1-bit code. Ties are broken by
    /// node number, so the lengths are a function of the frequencies.
    static func codeLengths(_ frequencies: [Int]) -> [UInt8] {
        var f = frequencies
        while true {
            let lengths = unlimitedLengths(f)
            if lengths.allSatisfy({ $0 <= maxCodeLength }) { return lengths.map { UInt8($0) } }
            f = f.map { $0 == 0 ? 0 : ($0 + 1) / 2 }
        }
    }

    static func unlimitedLengths(_ f: [Int]) -> [Int] {
        let present = (0..<256).filter { f[$0] > 0 }
        var lengths = [Int](repeating: 0, count: 256)
        if present.count == 1 { lengths[present[0]] = 1 }
        guard present.count > 1 else { return lengths }
        // Nodes 0..<256 are the byte values; merged nodes follow. Two queues (leaves sorted by
        // weight, merged nodes in the order made, which is by weight too) give the tree in linear time.
        var weight = f + [Int](repeating: 0, count: present.count - 1)
        var parent = [Int](repeating: -1, count: weight.count)
        let leaves = present.sorted { (f[$0], $0) < (f[$1], $1) }
        var merged: [Int] = [], nextLeaf = 0, nextMerged = 0, node = 256
        func lightest() -> Int {
            if nextMerged < merged.count, nextLeaf == leaves.count || weight[merged[nextMerged]] < weight[leaves[nextLeaf]] {
                nextMerged += 1; return merged[nextMerged - 1]
            }
            nextLeaf += 1; return leaves[nextLeaf - 1]
        }
        for _ in 0..<(present.count - 1) {
            let a = lightest(), b = lightest()
            weight[node] = weight[a] + weight[b]
            parent[a] = node; parent[b] = node
            merged.append(node); node += 1
        }
        for v in present {
            var depth = 0, n = v
            while parent[n] >= 0 { depth += 1; n = parent[n] }
            lengths[v] = depth
        }
        return lengths
    }

    /// Canonical codes for `lengths`: the code of v, right-aligned.
    static func canonicalCodes(_ lengths: [UInt8]) -> [UInt32] {
        var perLength = [Int](repeating: 0, count: maxCodeLength + 1)
        for l in lengths where l > 0 { perLength[Int(l)] += 1 }
        var next = [UInt32](repeating: 0, count: maxCodeLength + 2)
        for l in 1...maxCodeLength { next[l + 1] = (next[l] + UInt32(perLength[l])) << 1 }
        var codes = [UInt32](repeating: 0, count: 256)
        for v in 0..<256 where lengths[v] > 0 {
            codes[v] = next[Int(lengths[v])]
            next[Int(lengths[v])] += 1
        }
        return codes
    }

    private static func header(count: Int, lengths: [UInt8]) -> [UInt8] {
        var out = withUnsafeBytes(of: UInt32(count).littleEndian) { Array($0) }
        for i in 0..<128 { out.append(lengths[2 * i] | lengths[2 * i + 1] << 4) }
        return out
    }

    // MARK: - Decoding

    /// The bytes `coded` stands for, which must be `expectedCount` of them; nil if `coded` is not
    /// what `encode` writes for some byte string of that length.
    public static func decode(_ coded: [UInt8], expectedCount: Int) -> [UInt8]? {
        guard coded.count >= headerSize, expectedCount >= 0,
              coded.withUnsafeBytes({ UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }) == expectedCount else { return nil }
        var lengths = [UInt8](repeating: 0, count: 256)
        for i in 0..<128 { lengths[2 * i] = coded[4 + i] & 0x0F; lengths[2 * i + 1] = coded[4 + i] >> 4 }
        guard let table = DecodingTable(lengths) else { return expectedCount == 0 && coded.count == headerSize ? [] : nil }
        let payloadBits = Int64(coded.count - headerSize) * 8
        // Every code is at least one bit: more bytes than bits cannot be what the encoder wrote.
        guard Int64(expectedCount) <= payloadBits else { return nil }
        var out = [UInt8](repeating: 0, count: expectedCount)
        let width = table.width
        var position: Int64 = 0          // bits consumed
        var accumulator: UInt64 = 0, held = 0, nextByte = headerSize
        for i in 0..<expectedCount {
            while held < width {         // past the end, zero bits: a code that needs them fails below
                accumulator = accumulator << 8 | UInt64(nextByte < coded.count ? coded[nextByte] : 0)
                nextByte += 1; held += 8
            }
            let entry = table.entries[Int((accumulator >> UInt64(held - width)) & table.mask)]
            let length = Int(entry & 0xF)
            guard length > 0 else { return nil }
            position += Int64(length)
            guard position <= payloadBits else { return nil }
            held -= length
            out[i] = UInt8(entry >> 4)
        }
        // Exactly the bytes the bits need, padded with zeros.
        guard (position + 7) / 8 == payloadBits / 8 else { return nil }
        let padding = Int(payloadBits - position)
        guard padding == 0 || coded[coded.count - 1] & UInt8((1 << padding) - 1) == 0 else { return nil }
        return out
    }

    /// For each `width`-bit window, the byte value whose code it starts with and the code's length
    /// (value << 4 | length; 0 where no code starts so).
    struct DecodingTable {
        let width: Int
        let mask: UInt64
        let entries: [UInt16]

        /// nil when no byte value has a code or the lengths over-subscribe the code space.
        init?(_ lengths: [UInt8]) {
            let longest = Int(lengths.max() ?? 0)
            guard longest > 0 else { return nil }
            // Kraft: Σ 2^(longest − l) ≤ 2^longest.
            let used = lengths.reduce(0) { $1 == 0 ? $0 : $0 + (1 << (longest - Int($1))) }
            guard used <= 1 << longest else { return nil }
            width = longest
            mask = (1 << UInt64(longest)) - 1
            var e = [UInt16](repeating: 0, count: 1 << longest)
            let codes = HuffmanBytes.canonicalCodes(lengths)
            for v in 0..<256 where lengths[v] > 0 {
                let l = Int(lengths[v]), first = Int(codes[v]) << (longest - l)
                for k in first..<(first + (1 << (longest - l))) { e[k] = UInt16(v) << 4 | UInt16(l) }
            }
            entries = e
        }
    }
}

extension QuantizedTensor {
    /// The bytes a round carries for this tensor: int8's Huffman-coded (`HuffmanBytes`), the other
    /// formats' as they are (nf4's 4-bit pairs and bf16's halves gain little from an order-0 code).
    public var wireBytes: [UInt8] { format == .int8 ? HuffmanBytes.encode(bytes) : bytes }

    /// `wireBytes.count`, without coding.
    public var wireByteCount: Int { format == .int8 ? HuffmanBytes.encodedCount(bytes) : bytes.count }

    /// A tensor from the bytes a round carried, or nil if they are not what `wireBytes` writes for
    /// `count` values of `format` in blocks of `blockSize`.
    public init?(format: QuantizedFormat, count: Int, blockSize: Int, wireBytes: [UInt8]) {
        guard count >= 0, blockSize > 0 else { return nil }
        let expected = format.byteCount(values: count, blockSize: blockSize)
        guard let bytes = format == .int8 ? HuffmanBytes.decode(wireBytes, expectedCount: expected) : wireBytes else { return nil }
        self.init(format: format, count: count, bytes: bytes, blockSize: blockSize)
    }
}

import Foundation
import LTEBase

/// Writes a token stream whose length is unknown until it ends into `train.bin` and `val.bin`, split
/// at the first (1 − valFraction) of the tokens, with memory bounded by one batch of ids.
///
/// Every token goes to `train.bin` as it comes. At the end the split index is known: nanoGPT's
/// `int(n × (1 − valFraction))`, or for BPE the first word start at or after it, so that `val.bin` is
/// exactly the encoding of its own text (a word cut in two would encode differently on its own).
/// The tail is then copied into `val.bin` and cut off `train.bin`. Word starts are kept as one bit per
/// token in a temporary file beside the shards, not in memory.
final class SplitShardWriter {
    let directory: URL
    private let train: TokenShardWriter
    private let vocabSize: Int
    private let wordStartsURL: URL?
    private var wordStartBits: FileHandle?
    private var bitBuffer: [UInt8] = []
    private var pendingByte: UInt8 = 0
    /// Tokens written so far.
    private(set) var count = 0

    /// `splitsAnywhere`: every token boundary may be the split (byte and char tokenizers).
    init(directory: URL, vocabSize: Int, splitsAnywhere: Bool) throws {
        self.directory = directory
        self.vocabSize = vocabSize
        train = try TokenShardWriter(url: directory.appendingPathComponent(TokenDataset.trainFile), vocabSize: vocabSize)
        if splitsAnywhere {
            wordStartsURL = nil
        } else {
            let url = directory.appendingPathComponent(Self.wordStartsFile)
            guard FileManager.default.createFile(atPath: url.path, contents: nil), let handle = FileHandle(forWritingAtPath: url.path) else {
                throw LTEError("cannot create \(url.path)")
            }
            wordStartsURL = url
            wordStartBits = handle
        }
    }

    /// The temporary file of word-start bits.
    static let wordStartsFile = ".word-starts.tmp"

    /// Appends ids; `wordStarts` lists (in increasing order) which of them start a word.
    func append(_ ids: [Int32], wordStarts: [Int]) throws {
        try train.append(ids)
        if wordStartBits != nil {
            var next = 0
            for i in 0..<ids.count {
                let bit = count + i
                if next < wordStarts.count, wordStarts[next] == i {
                    pendingByte |= 1 << UInt8(bit & 7)
                    next += 1
                }
                if bit & 7 == 7 { bitBuffer.append(pendingByte); pendingByte = 0 }
            }
            if bitBuffer.count >= 1 << 16 { try flushBits() }
        }
        count += ids.count
    }

    /// Closes the stream, writes `val.bin`, cuts `train.bin`; returns (train, val) token counts.
    func finish(valFraction: Double) throws -> (train: Int, val: Int) {
        try train.close()
        let target = Int(Double(count) * (1 - valFraction))   // nanoGPT: data[:int(n*0.9)]
        var split = target
        if wordStartBits != nil {
            if count & 7 != 0 { bitBuffer.append(pendingByte) }
            try flushBits()
            try wordStartBits?.close()
            wordStartBits = nil
            split = try firstWordStart(atOrAfter: target)
        }
        removeTemporaryFile()
        guard split >= 1, split < count else {
            throw LTEError("input of \(count) tokens is too short to split into train and validation sets")
        }
        let width = train.bytesPerToken
        let val = try TokenShardWriter(url: directory.appendingPathComponent(TokenDataset.valFile), vocabSize: vocabSize)
        guard let reader = FileHandle(forReadingAtPath: train.url.path) else { throw LTEError("cannot reopen \(train.url.path)") }
        defer { try? reader.close() }
        let splitOffset = UInt64(TokenShard.headerSize + split * width)
        do {
            try reader.seek(toOffset: splitOffset)
            while let data = try reader.read(upToCount: 1 << 20), !data.isEmpty {
                let ids: [Int32] = data.withUnsafeBytes { raw in
                    (0..<(raw.count / width)).map { i in
                        width == 2 ? Int32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                                   : Int32(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                    }
                }
                try val.append(ids)
            }
            try val.close()
            let writer = try FileHandle(forWritingTo: train.url)
            try writer.truncate(atOffset: splitOffset)
            try writer.close()
        } catch let error as LTEError {
            throw error
        } catch {
            throw LTEError("cannot split \(train.url.path) into train and validation shards: \(error.localizedDescription)")
        }
        return (split, count - split)
    }

    /// Deletes the temporary word-start file (also after an error).
    func removeTemporaryFile() {
        try? wordStartBits?.close()
        wordStartBits = nil
        if let url = wordStartsURL { try? FileManager.default.removeItem(at: url) }
    }

    private func flushBits() throws {
        guard let handle = wordStartBits, !bitBuffer.isEmpty else { return }
        do { try handle.write(contentsOf: bitBuffer) } catch {
            throw LTEError("cannot write \(wordStartsURL!.path): \(error.localizedDescription)")
        }
        bitBuffer.removeAll(keepingCapacity: true)
    }

    /// The index of the first token at or after `index` that starts a word, or `count` if none.
    private func firstWordStart(atOrAfter index: Int) throws -> Int {
        guard let url = wordStartsURL, let handle = FileHandle(forReadingAtPath: url.path) else {
            throw LTEError("cannot read back \(directory.appendingPathComponent(Self.wordStartsFile).path)")
        }
        defer { try? handle.close() }
        var byteIndex = index / 8
        try handle.seek(toOffset: UInt64(byteIndex))
        while let data = try handle.read(upToCount: 1 << 16), !data.isEmpty {
            for byte in data {
                for bit in 0..<8 where byte & (1 << UInt8(bit)) != 0 {
                    let token = byteIndex * 8 + bit
                    if token >= index && token < count { return token }
                }
                byteIndex += 1
            }
        }
        return count
    }
}

import Foundation
import LTEBase

/// Streams token ids into a shard file (format in `TokenShard`): header first, then appends in
/// fixed-size chunks, so a corpus larger than memory can be written piece by piece.
public final class TokenShardWriter {
    public let url: URL
    public let vocabSize: Int
    public let bytesPerToken: Int
    /// Tokens written so far.
    public private(set) var count = 0
    private var handle: FileHandle?
    private var scratch: [UInt8] = []

    /// Creates (or truncates) the file and writes the header.
    public init(url: URL, vocabSize: Int) throws {
        guard vocabSize >= 1 && vocabSize <= Int(Int32.max) + 1 else {
            throw LTEError("token shard \(url.path): vocabulary size \(vocabSize) is out of range 1...2^31")
        }
        self.url = url
        self.vocabSize = vocabSize
        self.bytesPerToken = TokenShard.bytesPerToken(vocabSize: vocabSize)
        guard FileManager.default.createFile(atPath: url.path, contents: nil),
              let handle = FileHandle(forWritingAtPath: url.path) else {
            throw LTEError("cannot create token shard \(url.path)")
        }
        self.handle = handle
        var header = TokenShard.magic
        for value in [TokenShard.version, UInt32(bytesPerToken)] {
            withUnsafeBytes(of: value.littleEndian) { header.append(contentsOf: $0) }
        }
        try write(header)
    }

    deinit { try? handle?.close() }

    /// Appends tokens; an id outside the vocabulary is an error and nothing of that call is written.
    public func append(_ tokens: UnsafeBufferPointer<Int32>) throws {
        for i in 0..<tokens.count where tokens[i] < 0 || Int(tokens[i]) >= vocabSize {
            throw LTEError("token shard \(url.path): token \(tokens[i]) at index \(count + i) is outside the vocabulary of \(vocabSize)")
        }
        let chunk = 1 << 16
        var start = 0
        while start < tokens.count {
            let end = min(start + chunk, tokens.count)
            scratch.removeAll(keepingCapacity: true)
            scratch.reserveCapacity((end - start) * bytesPerToken)
            for i in start..<end {
                let id = tokens[i]
                if bytesPerToken == 2 {
                    let v = UInt16(id)
                    scratch.append(UInt8(truncatingIfNeeded: v)); scratch.append(UInt8(truncatingIfNeeded: v >> 8))
                } else {
                    withUnsafeBytes(of: UInt32(id).littleEndian) { scratch.append(contentsOf: $0) }
                }
            }
            try write(scratch)
            start = end
        }
        count += tokens.count
    }

    public func append(_ tokens: [Int32]) throws {
        try tokens.withUnsafeBufferPointer { try append($0) }
    }

    /// Flushes and closes the file; further appends are errors.
    public func close() throws {
        guard let handle else { return }
        self.handle = nil
        do { try handle.close() } catch {
            throw LTEError("cannot close token shard \(url.path): \(error.localizedDescription)")
        }
    }

    private func write(_ bytes: [UInt8]) throws {
        guard let handle else { throw LTEError("token shard \(url.path) is already closed") }
        do { try handle.write(contentsOf: bytes) } catch {
            throw LTEError("cannot write token shard \(url.path): \(error.localizedDescription)")
        }
    }
}

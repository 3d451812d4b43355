import Foundation
import LTEBase
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The text `lte data prepare` reads, as one byte stream read block by block, so a corpus larger
/// than memory never has to fit in it.
///
/// Inputs are files and directories. A directory contributes every regular file below it, in sorted
/// path order (byte order of the path relative to the directory), skipping hidden names (".git", …),
/// empty files and binary files (a NUL byte in the first 8 KiB, as git and grep decide). Files named
/// directly are taken as they are. Between two files a newline is inserted when the first does not
/// end with one, so words never fuse across files.
public struct CorpusStream: Sendable {
    enum Storage: Sendable {
        case files([URL])
        case memory([UInt8])
    }

    let storage: Storage
    /// Files found in directories but skipped as binary.
    public let skippedBinaries: [URL]
    /// Bytes in all files (the newlines inserted between files are not counted).
    public let fileBytes: Int

    /// Text already in memory.
    public init(bytes: [UInt8]) {
        storage = .memory(bytes)
        skippedBinaries = []
        fileBytes = bytes.count
    }

    /// The files of these inputs, checked to exist and be readable; nothing is read yet.
    public init(inputs: [URL]) throws {
        guard !inputs.isEmpty else { throw LTEError("no input files given") }
        let fm = FileManager.default
        var files: [URL] = [], skipped: [URL] = [], total = 0
        for input in inputs {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: input.path, isDirectory: &isDirectory) else {
                throw LTEError("input file \(input.path) does not exist")
            }
            if isDirectory.boolValue {
                let found = try Self.textFiles(under: input)
                files += found.text
                skipped += found.binary
                total += found.bytes
                if found.text.isEmpty { throw LTEError("input directory \(input.path) holds no non-empty text files") }
            } else {
                let size = Self.size(of: input)
                guard size > 0 else { throw LTEError("input file \(input.path) is empty") }
                guard access(input.path, R_OK) == 0 else { throw LTEError("cannot read input file \(input.path): permission denied") }
                files.append(input)
                total += size
            }
        }
        storage = .files(files)
        skippedBinaries = skipped
        fileBytes = total
    }

    /// The files read, in order.
    public var files: [URL] {
        if case .files(let files) = storage { return files }
        return []
    }

    /// Calls `body` with consecutive blocks of the stream (each at most `blockSize` bytes, the buffer
    /// reused between calls) and the number of file bytes read so far; stops after `limit` bytes.
    public func forEachBlock(blockSize: Int, limit: Int = .max,
                             _ body: (UnsafeBufferPointer<UInt8>, _ bytesRead: Int) throws -> Void) throws {
        precondition(blockSize > 0)
        switch storage {
        case .memory(let bytes):
            try bytes.withUnsafeBufferPointer { all in
                var start = 0
                let end = min(all.count, limit)
                while start < end {
                    let next = min(start + blockSize, end)
                    try body(UnsafeBufferPointer(rebasing: all[start..<next]), next)
                    start = next
                }
            }
        case .files(let files):
            var buffer = [UInt8](repeating: 0, count: blockSize)
            var delivered = 0, fileBytesRead = 0
            var lastByte: UInt8? = nil
            for url in files where delivered < limit {
                let fd = open(url.path, O_RDONLY)
                guard fd >= 0 else { throw LTEError("cannot read input file \(url.path): \(String(cString: strerror(errno)))") }
                defer { close(fd) }
                var startOfFile = true
                while delivered < limit {
                    let room = min(blockSize, limit - delivered)
                    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, room) }
                    guard n >= 0 else { throw LTEError("cannot read input file \(url.path): \(String(cString: strerror(errno)))") }
                    if n == 0 { break }
                    if startOfFile, let last = lastByte, last != UInt8(ascii: "\n") {
                        let newline: [UInt8] = [UInt8(ascii: "\n")]
                        try newline.withUnsafeBufferPointer { try body($0, fileBytesRead) }
                        delivered += 1
                    }
                    startOfFile = false
                    fileBytesRead += n
                    delivered += n
                    lastByte = buffer[n - 1]
                    try buffer.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[0..<n]), fileBytesRead) }
                }
            }
        }
    }

    private static func size(of url: URL) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    /// Regular non-empty files below `directory`, sorted, split into text and binary.
    private static func textFiles(under directory: URL) throws -> (text: [URL], binary: [URL], bytes: Int) {
        let fm = FileManager.default
        guard let enumerator = fm.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey],
                                             options: [.skipsHiddenFiles]) else {
            throw LTEError("cannot list input directory \(directory.path)")
        }
        var candidates: [(relative: String, url: URL)] = []
        let base = directory.standardizedFileURL.path
        for case let url as URL in enumerator {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true else { continue }
            var relative = url.standardizedFileURL.path
            if relative.hasPrefix(base) { relative.removeFirst(base.count) }
            candidates.append((relative, url))
        }
        candidates.sort { Array($0.relative.utf8).lexicographicallyPrecedes(Array($1.relative.utf8)) }
        var text: [URL] = [], binary: [URL] = [], bytes = 0
        for (_, url) in candidates {
            let size = size(of: url)
            if size == 0 { continue }
            if looksBinary(url) { binary.append(url) } else { text.append(url); bytes += size }
        }
        return (text, binary, bytes)
    }

    /// A NUL byte in the first 8 KiB, or an unreadable file.
    private static func looksBinary(_ url: URL) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: url.path) else { return true }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 8192)) ?? Data()
        return head.contains(0)
    }
}

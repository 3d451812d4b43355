import Foundation

/// The fixed 20-byte frame header, little-endian:
///
///     offset 0  magic "LTE1"   (4 bytes)   — refuses anything that is not an LTE frame up front
///     offset 4  version        UInt16      — bumped on any incompatible change
///     offset 6  message type   UInt16      — `MessageType`
///     offset 8  flags          UInt32      — `FrameFlags`; unknown bits are refused
///     offset 12 body length    UInt64      — must equal the frame size minus header and trailer
///
/// followed by the body and a 32-byte trailer (HMAC-SHA256 or SHA-256 of header ‖ body).
public struct FrameHeader: Equatable, Sendable {
    public static let magic: [UInt8] = Array("LTE1".utf8)
    /// 2: rounds count merges (round k is the k-th merge, as in the history; see `PushMessage.round`),
    /// and the run's end is its own error code (`ErrorCode.runFinished`).
    /// 3: a hello carries the time it was sent (`HelloMessage.sentAt`), so a captured one goes stale.
    /// 4: tensors carry an encoding (float32, or bytes of a push format), and a push carries the
    /// worker's train and wait times.
    /// 5: open membership — hello carries `maxHeads` and a signature, welcome the heads handed out
    /// and their optimizer steps, push a signature, and a new `leave` message (type 8).
    /// 6: welcome and round result carry the hash of the frozen weights quantized
    /// (`lte.frozen_weights`), which workers check; a round result answers each pusher without its
    /// own heads' factors (it merges the bytes it pushed), so a version-5 worker would miss them.
    /// 7: int8 factors and replicated changes travel in blocks of 256, Huffman-coded (encoding 4),
    /// where version 6 sent blocks of 64 as they are (encoding 2).
    public static let currentVersion: UInt16 = 7
    public static let byteCount = 20

    public var version: UInt16
    public var type: MessageType
    public var flags: FrameFlags
    public var bodyLength: UInt64

    public init(version: UInt16 = FrameHeader.currentVersion, type: MessageType, flags: FrameFlags, bodyLength: UInt64) {
        self.version = version
        self.type = type
        self.flags = flags
        self.bodyLength = bodyLength
    }

    func write(to w: inout ByteWriter) {
        for b in Self.magic { w.u8(b) }
        w.int(version)
        w.int(type.rawValue)
        w.int(flags.rawValue)
        w.int(bodyLength)
    }

    /// Parses and checks the header fields that need no other context (magic, version, type, flags).
    static func read(_ bytes: UnsafeRawBufferPointer) throws -> FrameHeader {
        let prefix = min(bytes.count, magic.count)
        guard bytes.prefix(prefix).elementsEqual(magic.prefix(prefix)) else {
            let seen = bytes.prefix(4).map { String(format: "%02x", $0) }.joined()
            throw WireError(.badMagic, "frame starts with 0x\(seen), not \"LTE1\"")
        }
        guard bytes.count >= byteCount else {
            throw WireError(.truncated, "frame is \(bytes.count) bytes, shorter than the \(byteCount)-byte header")
        }
        var r = ByteReader(bytes, from: magic.count, to: byteCount, maxStringBytes: 0)
        let version = try r.int(UInt16.self, "version")
        guard version == currentVersion else {
            throw WireError(.unsupportedVersion, "wire version \(version); this build speaks version \(currentVersion)")
        }
        let rawType = try r.int(UInt16.self, "message type")
        guard let type = MessageType(rawValue: rawType) else {
            throw WireError(.unknownType, "unknown message type \(rawType)")
        }
        let rawFlags = try r.int(UInt32.self, "flags")
        let flags = FrameFlags(rawValue: rawFlags)
        guard flags.isSubset(of: .known) else {
            throw WireError(.unknownFlags, "unknown flag bits 0x\(String(rawFlags & ~FrameFlags.known.rawValue, radix: 16))")
        }
        let bodyLength = try r.int(UInt64.self, "body length")
        return FrameHeader(version: version, type: type, flags: flags, bodyLength: bodyLength)
    }
}

/// Frame flag bits.
public struct FrameFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The trailer is an HMAC under the shared secret (else a plain SHA-256 checksum).
    public static let authenticated = FrameFlags(rawValue: 1)

    public static let known: FrameFlags = [.authenticated]
}

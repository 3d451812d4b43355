import Foundation

/// Turns `WireMessage`s into frames and back (DESIGN.md §4: every message versioned and authenticated).
///
/// Frame = 20-byte `FrameHeader` ‖ body ‖ 32-byte trailer. The decoder trusts nothing: it checks the
/// size limit before hashing, the header, that the declared body length is exactly what the frame
/// holds, then the trailer (constant-time), and only then parses the body — an unauthenticated body
/// is never parsed when a secret is configured. Every field read is bounds-checked and every count
/// checked against the bytes left, so any input yields a message or a `WireError`, never a crash.
///
/// Encoding is canonical (fixed field order, sorted status fields, no padding), and the encoder
/// refuses exactly what the decoder refuses, so `encode(decode(frame)) == frame` for every accepted
/// frame — the fuzz test relies on it.
public struct WireCodec: Sendable {
    public let authenticator: Authenticator
    /// Largest whole frame accepted or produced, header and trailer included.
    public let maxMessageBytes: Int
    /// Largest string field (ids, commit ids, error text, tensor names), in UTF-8 bytes.
    public let maxStringBytes: Int
    /// A worker's identity: signs its hello, push and leave (`MessageSignature`).
    public let signer: IdentityKey?
    /// A server's identities: a hello, push or leave must be signed by its worker's known key.
    public let verifier: (any IdentityVerifier)?

    public init(secret: SharedSecret? = nil, maxMessageBytes: Int = 1 << 30, maxStringBytes: Int = 1 << 16,
                signer: IdentityKey? = nil, verifier: (any IdentityVerifier)? = nil) {
        self.authenticator = Authenticator(secret: secret)
        self.signer = signer
        self.verifier = verifier
        // Clamped so no setting can make a length computation overflow or trap.
        self.maxMessageBytes = max(maxMessageBytes, Self.overhead)
        self.maxStringBytes = min(max(maxStringBytes, 0), Int(UInt32.max))
    }

    static let overhead = FrameHeader.byteCount + Authenticator.trailerBytes

    // MARK: encode

    public func encode(_ message: WireMessage) throws -> Data {
        let payload = message.tensorPayloadBytes
        guard payload <= maxMessageBytes - Self.overhead else {
            throw WireError(.tooLarge, "\(message.type) carries \(payload) tensor bytes, over the \(maxMessageBytes)-byte message limit")
        }
        var w = ByteWriter(capacity: Self.overhead + payload + 4096)
        let flags: FrameFlags = authenticator.authenticates ? .authenticated : []
        FrameHeader(type: message.type, flags: flags, bodyLength: 0).write(to: &w)
        try writeBody(message, to: &w)
        let bodyLength = w.data.count - FrameHeader.byteCount
        guard w.data.count + Authenticator.trailerBytes <= maxMessageBytes else {
            throw WireError(.tooLarge, "\(message.type) frame is \(w.data.count + Authenticator.trailerBytes) bytes, over the \(maxMessageBytes)-byte limit")
        }
        withUnsafeBytes(of: UInt64(bodyLength).littleEndian) { length in
            w.data.replaceSubrange(12..<20, with: length)
        }
        w.data.append(authenticator.trailer(for: w.data))
        return w.data
    }

    // MARK: decode

    /// Decodes and fully validates one frame.
    public func decode(_ frame: Data) throws -> WireMessage {
        try frame.withUnsafeBytes { try decode(bytes: $0) }
    }

    public func decode(bytes: UnsafeRawBufferPointer) throws -> WireMessage {
        guard bytes.count <= maxMessageBytes else {
            throw WireError(.tooLarge, "frame is \(bytes.count) bytes, over the \(maxMessageBytes)-byte limit")
        }
        let header = try FrameHeader.read(bytes)
        let available = bytes.count - Self.overhead
        guard available >= 0 else {
            throw WireError(.truncated, "frame is \(bytes.count) bytes, shorter than header plus the \(Authenticator.trailerBytes)-byte trailer")
        }
        guard header.bodyLength <= UInt64(maxMessageBytes) else {
            throw WireError(.tooLarge, "body length \(header.bodyLength) is over the \(maxMessageBytes)-byte limit")
        }
        let bodyLength = Int(header.bodyLength)
        guard bodyLength <= available else {
            throw WireError(.truncated, "body declares \(bodyLength) bytes but the frame holds \(available)")
        }
        guard bodyLength == available else {
            throw WireError(.lengthMismatch, "body declares \(bodyLength) bytes but the frame holds \(available)")
        }
        try checkTrailer(header, bytes)
        var r = ByteReader(bytes, from: FrameHeader.byteCount, to: FrameHeader.byteCount + bodyLength,
                           maxStringBytes: maxStringBytes)
        let message = try readBody(header.type, from: &r)
        try r.finish("\(header.type)")
        return message
    }

    /// Parses only the header (magic, version, type, flags): what a log line needs about a frame
    /// that failed to decode. Checks nothing else.
    public static func peekHeader(_ frame: Data) throws -> FrameHeader {
        try frame.withUnsafeBytes { try FrameHeader.read($0) }
    }

    private func checkTrailer(_ header: FrameHeader, _ bytes: UnsafeRawBufferPointer) throws {
        let signed = header.flags.contains(.authenticated)
        if authenticator.authenticates && !signed {
            throw WireError(.authentication, "frame carries a checksum, not an HMAC, but this node requires authentication")
        }
        if !authenticator.authenticates && signed {
            throw WireError(.authentication, "frame carries an HMAC but no shared secret is configured here")
        }
        let covered = UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count - Authenticator.trailerBytes)])
        let trailer = UnsafeRawBufferPointer(rebasing: bytes[(bytes.count - Authenticator.trailerBytes)...])
        guard authenticator.isValid(trailer: trailer, for: covered) else {
            throw signed
                ? WireError(.badMAC, "\(header.type) frame MAC does not verify (wrong secret or tampered)")
                : WireError(.badChecksum, "\(header.type) frame checksum does not match (corrupted)")
        }
    }
}

extension WireMessage {
    /// Bytes of float data carried, the part of a frame that can be large.
    var tensorPayloadBytes: Int {
        let tensors: [WireTensor]
        switch self {
        case .welcome(let m): tensors = m.tensors
        case .push(let m): tensors = m.tensors
        case .roundResult(let m): tensors = m.tensors
        case .leave(let m): tensors = m.tensors
        default: return 0
        }
        var total = 0
        for t in tensors {
            if t.values.count > Int.max / 4 { return Int.max }
            let (sum, overflow) = total.addingReportingOverflow(t.payloadByteCount)
            if overflow { return Int.max }
            total = sum
        }
        return total
    }
}

extension ErrorMessage {
    /// The reply a server sends for a frame it refused: a code a program can branch on, the
    /// decoder's one-line reason for the person reading the worker's log.
    public init(refusing error: WireError) {
        let code: ErrorCode
        switch error.kind {
        case .badMAC, .authentication, .replayed: code = .unauthorized
        case .tooLarge: code = .tooLarge
        case .nonFinite: code = .nonFinite
        default: code = .malformed
        }
        self.init(code: code, message: error.message)
    }
}

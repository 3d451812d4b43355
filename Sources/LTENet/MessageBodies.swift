import Foundation
import LTEBase

// Body layouts, one per message type, little-endian, no padding:
//
//   string  = UInt32 byte length ‖ UTF-8          ints    = UInt32 count ‖ UInt32 each (head ids)
//   blob    = UInt32 byte length ‖ bytes          floats  = UInt32 count ‖ float32 each
//   digest  = 32 bytes                            tensors = UInt32 count ‖ WireTensor each
//   digest? = UInt8 0 (none) | UInt8 1 ‖ digest
//   round, tokens = UInt64 (≤ Int.max)            nonce   = UInt64
//
//   steps   = UInt32 count ‖ UInt64 each (parallel to a head list)
//   signature = blob of 0 or 64 bytes (Ed25519, `MessageSignature`), always the last field
//
//   hello        workerId, headIds, configFingerprint(digest), nonce, sentAt (UInt64 ms since 1970), maxHeads(UInt32), signature
//   welcome      runId, round, baseCommit, configJSON(blob), tensors, headIds, optimizerSteps(steps), frozenHash(digest?)
//   push         workerId, round, baseCommit, headIds, headLosses(floats), tokens, nonce,
//                trainMicroseconds, previousWaitMicroseconds (UInt64 each), tensors, signature
//   leave        workerId, round, headIds, optimizerSteps(steps), nonce, tensors, signature
//   roundResult  round, commitId, weightsHash(digest), headsMerged, tensors, frozenHash(digest?)
//   statusRequest (empty)
//   status       round, headsIn, lossesIn(floats), headsMissing, UInt32 n ‖ n × (key, value)
//                with keys in strictly increasing UTF-8 byte order
//   error        UInt16 code, message
//
// Each writer validates what its reader validates, so the codec never emits a frame it would refuse.

extension WireCodec {
    func writeBody(_ message: WireMessage, to w: inout ByteWriter) throws {
        switch message {
        case .hello(let m):
            try string(m.workerId, "hello worker id", &w)
            try heads(m.headIds, "hello head ids", &w)
            try digest(m.configFingerprint, "hello config fingerprint", &w)
            w.int(m.nonce)
            w.int(m.sentAt)
            guard (0...Int(UInt32.max)).contains(m.maxHeads) else { throw WireError(.invalidValue, "hello max heads \(m.maxHeads) out of range") }
            w.int(UInt32(m.maxHeads))
            try writeSignature(m.signature, .hello, to: &w)
        case .welcome(let m):
            try string(m.runId, "welcome run id", &w)
            try quantity(m.round, "welcome round", &w)
            try string(m.baseCommit, "welcome base commit", &w)
            guard m.configJSON.count <= Int(UInt32.max) else {
                throw WireError(.tooLarge, "welcome config JSON is \(m.configJSON.count) bytes")
            }
            w.int(UInt32(m.configJSON.count))
            m.configJSON.withUnsafeBytes { w.raw($0) }
            try tensors(m.tensors, "welcome", &w)
            try heads(m.headIds, "welcome head ids", &w)
            try steps(m.optimizerSteps, to: m.headIds, "welcome optimizer steps", &w)
            optionalDigest(m.frozenHash, &w)
        case .push(let m):
            try string(m.workerId, "push worker id", &w)
            try quantity(m.round, "push round", &w)
            try string(m.baseCommit, "push base commit", &w)
            try heads(m.headIds, "push head ids", &w)
            try parallel(m.headLosses, to: m.headIds, "push head losses", &w)
            try quantity(m.tokens, "push tokens", &w)
            w.int(m.nonce)
            try quantity(m.trainMicroseconds, "push train time", &w)
            try quantity(m.previousWaitMicroseconds, "push wait time", &w)
            try tensors(m.tensors, "push", &w)
            try writeSignature(m.signature, .push, to: &w)
        case .leave(let m):
            try string(m.workerId, "leave worker id", &w)
            try quantity(m.round, "leave round", &w)
            try heads(m.headIds, "leave head ids", &w)
            try steps(m.optimizerSteps, to: m.headIds, "leave optimizer steps", &w)
            w.int(m.nonce)
            try tensors(m.tensors, "leave", &w)
            try writeSignature(m.signature, .leave, to: &w)
        case .roundResult(let m):
            try quantity(m.round, "round result round", &w)
            try string(m.commitId, "round result commit id", &w)
            m.weightsHash.bytes.withUnsafeBytes { w.raw($0) }
            try heads(m.headsMerged, "round result heads merged", &w)
            try tensors(m.tensors, "round result", &w)
            optionalDigest(m.frozenHash, &w)
        case .statusRequest:
            break
        case .status(let m):
            try quantity(m.round, "status round", &w)
            try heads(m.headsIn, "status heads in", &w)
            try parallel(m.lossesIn, to: m.headsIn, "status losses", &w)
            try heads(m.headsMissing, "status heads missing", &w)
            w.int(UInt32(m.fields.count))
            for key in m.fields.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
                try string(key, "status field name", &w)
                try string(m.fields[key]!, "status field '\(WireText.quote(key))'", &w)
            }
        case .error(let m):
            w.int(m.code.rawValue)
            try string(m.message, "error message", &w)
        }
    }

    func readBody(_ type: MessageType, from r: inout ByteReader) throws -> WireMessage {
        switch type {
        case .hello:
            let workerId = try r.string("hello worker id")
            let headIds = try readHeads(&r, "hello head ids")
            let fingerprint = try r.digest("hello config fingerprint")
            let nonce = try r.int(UInt64.self, "hello nonce")
            let sentAt = try r.int(UInt64.self, "hello sent at")
            let maxHeads = Int(try r.int(UInt32.self, "hello max heads"))
            return .hello(HelloMessage(workerId: workerId, headIds: headIds, configFingerprint: fingerprint, nonce: nonce, sentAt: sentAt,
                                       maxHeads: maxHeads, signature: try readSignature(.hello, worker: workerId, from: &r)))
        case .welcome:
            let runId = try r.string("welcome run id")
            let round = try r.count64("welcome round")
            let baseCommit = try r.string("welcome base commit")
            let configJSON = try r.blob("welcome config JSON")
            let tensors = try readTensors(&r, "welcome")
            let headIds = try readHeads(&r, "welcome head ids")
            let steps = try readSteps(&r, to: headIds, "welcome optimizer steps")
            return .welcome(WelcomeMessage(runId: runId, round: round, baseCommit: baseCommit, configJSON: configJSON, tensors: tensors,
                                           headIds: headIds, optimizerSteps: steps, frozenHash: try readOptionalDigest(&r, "welcome frozen hash")))
        case .leave:
            let workerId = try r.string("leave worker id")
            let round = try r.count64("leave round")
            let headIds = try readHeads(&r, "leave head ids")
            let steps = try readSteps(&r, to: headIds, "leave optimizer steps")
            let nonce = try r.int(UInt64.self, "leave nonce")
            let tensors = try readTensors(&r, "leave")
            return .leave(LeaveMessage(workerId: workerId, round: round, headIds: headIds, optimizerSteps: steps, nonce: nonce,
                                       tensors: tensors, signature: try readSignature(.leave, worker: workerId, from: &r)))
        case .push:
            let workerId = try r.string("push worker id")
            let round = try r.count64("push round")
            let baseCommit = try r.string("push base commit")
            let headIds = try readHeads(&r, "push head ids")
            let losses = try readParallel(&r, to: headIds, "push head losses")
            let tokens = try r.count64("push tokens")
            let nonce = try r.int(UInt64.self, "push nonce")
            let train = try r.count64("push train time")
            let wait = try r.count64("push wait time")
            let tensors = try readTensors(&r, "push")
            return .push(PushMessage(
                workerId: workerId, round: round, baseCommit: baseCommit, headIds: headIds, headLosses: losses,
                tokens: tokens, nonce: nonce, trainMicroseconds: train, previousWaitMicroseconds: wait,
                tensors: tensors, signature: try readSignature(.push, worker: workerId, from: &r)))
        case .roundResult:
            return .roundResult(RoundResultMessage(
                round: try r.count64("round result round"),
                commitId: try r.string("round result commit id"),
                weightsHash: WeightsDigest(bytes: try r.digest("round result weights hash"))!,
                headsMerged: try readHeads(&r, "round result heads merged"),
                tensors: try readTensors(&r, "round result"),
                frozenHash: try readOptionalDigest(&r, "round result frozen hash")))
        case .statusRequest:
            return .statusRequest
        case .status:
            let round = try r.count64("status round")
            let headsIn = try readHeads(&r, "status heads in")
            let losses = try readParallel(&r, to: headsIn, "status losses")
            let missing = try readHeads(&r, "status heads missing")
            let n = try r.listCount("status fields", minElementBytes: 8)
            var fields: [String: String] = [:]
            var previous: String? = nil
            for i in 0..<n {
                let key = try r.string("status field \(i) name")
                if let p = previous, !p.utf8.lexicographicallyPrecedes(key.utf8) {
                    throw WireError(.invalidValue, "status field '\(WireText.quote(key))' is out of order or repeated")
                }
                guard fields[key] == nil else { throw WireError(.invalidValue, "status field '\(WireText.quote(key))' repeated") }
                fields[key] = try r.string("status field '\(WireText.quote(key))'")
                previous = key
            }
            return .status(StatusMessage(round: round, headsIn: headsIn, lossesIn: losses, headsMissing: missing, fields: fields))
        case .error:
            return .error(ErrorMessage(
                code: ErrorCode(rawValue: try r.int(UInt16.self, "error code")),
                message: try r.string("error message")))
        }
    }

    // MARK: field writers (validating)

    private func string(_ s: String, _ what: String, _ w: inout ByteWriter) throws {
        let n = s.utf8.count
        guard n <= maxStringBytes else { throw WireError(.tooLarge, "\(what) is \(n) bytes, limit \(maxStringBytes)") }
        w.int(UInt32(n))
        var s = s
        s.withUTF8 { w.raw(UnsafeRawBufferPointer($0)) }
    }

    private func quantity(_ v: Int, _ what: String, _ w: inout ByteWriter) throws {
        guard v >= 0 else { throw WireError(.invalidValue, "\(what) \(v) is negative") }
        w.int(UInt64(v))
    }

    private func digest(_ d: Data, _ what: String, _ w: inout ByteWriter) throws {
        guard d.count == 32 else { throw WireError(.invalidValue, "\(what) is \(d.count) bytes, must be 32") }
        d.withUnsafeBytes { w.raw($0) }
    }

    private func optionalDigest(_ d: WeightsDigest?, _ w: inout ByteWriter) {
        guard let d else { w.u8(0); return }
        w.u8(1)
        d.bytes.withUnsafeBytes { w.raw($0) }
    }

    private func readOptionalDigest(_ r: inout ByteReader, _ what: String) throws -> WeightsDigest? {
        switch try r.int(UInt8.self, what) {
        case 0: return nil
        case 1: return WeightsDigest(bytes: try r.digest(what))!
        case let flag: throw WireError(.invalidValue, "\(what): presence byte \(flag), expected 0 or 1")
        }
    }

    private func heads(_ ids: [Int], _ what: String, _ w: inout ByteWriter) throws {
        try Self.checkHeads(ids, what)
        w.int(UInt32(ids.count))
        for id in ids { w.int(UInt32(id)) }
    }

    private func parallel(_ values: [Float], to heads: [Int], _ what: String, _ w: inout ByteWriter) throws {
        guard values.count == heads.count else {
            throw WireError(.invalidValue, "\(what): \(values.count) values for \(heads.count) heads")
        }
        w.int(UInt32(values.count))
        w.floats(values)
    }

    private func steps(_ values: [Int], to heads: [Int], _ what: String, _ w: inout ByteWriter) throws {
        guard values.count == heads.count else { throw WireError(.invalidValue, "\(what): \(values.count) values for \(heads.count) heads") }
        w.int(UInt32(values.count))
        for v in values { try quantity(v, what, &w) }
    }

    private func tensors(_ ts: [WireTensor], _ what: String, _ w: inout ByteWriter) throws {
        guard ts.count <= Int(UInt32.max) else { throw WireError(.tooLarge, "\(what): \(ts.count) tensors") }
        var names = Set<String>()
        w.int(UInt32(ts.count))
        for t in ts {
            try string(t.name, "\(what) tensor name", &w)
            guard names.insert(t.name).inserted else {
                throw WireError(.invalidTensor, "\(what): tensor '\(WireText.quote(t.name))' appears twice")
            }
            guard t.shape.count <= WireTensor.maxRank else {
                throw WireError(.invalidTensor, "\(what): tensor '\(WireText.quote(t.name))' has rank \(t.shape.count), limit \(WireTensor.maxRank)")
            }
            guard let n = WireTensor.elementCount(of: t.shape), t.encoding != .float32 || n == t.values.count else {
                throw WireError(.invalidTensor, "\(what): tensor '\(WireText.quote(t.name))' shape \(t.shape) does not hold \(t.values.count) values")
            }
            guard t.encoding == .float32 ? t.bytes.isEmpty : t.values.isEmpty else {
                throw WireError(.invalidTensor, "\(what): tensor '\(WireText.quote(t.name))' carries both values and bytes")
            }
            w.int(UInt32(t.shape.count))
            for d in t.shape { w.int(UInt64(d)) }
            w.u8(t.encoding.rawValue)
            if t.encoding == .float32 {
                w.floats(t.values)
            } else {
                w.int(UInt64(t.bytes.count))
                t.bytes.withUnsafeBytes { w.raw($0) }
            }
        }
    }

    // MARK: field readers

    static func checkHeads(_ ids: [Int], _ what: String) throws {
        guard ids.count <= Int(UInt32.max) else { throw WireError(.tooLarge, "\(what): \(ids.count) ids") }
        var seen = Set<Int>()
        for id in ids {
            guard id >= 0, id <= Int(UInt32.max) else { throw WireError(.invalidValue, "\(what): head id \(id) out of range") }
            guard seen.insert(id).inserted else { throw WireError(.invalidValue, "\(what): head \(id) listed twice") }
        }
    }

    private func readHeads(_ r: inout ByteReader, _ what: String) throws -> [Int] {
        let n = try r.listCount(what, minElementBytes: 4)
        var ids: [Int] = []
        ids.reserveCapacity(n)
        for _ in 0..<n { ids.append(Int(try r.int(UInt32.self, what))) }
        try Self.checkHeads(ids, what)
        return ids
    }

    private func readParallel(_ r: inout ByteReader, to heads: [Int], _ what: String) throws -> [Float] {
        let n = try r.listCount(what, minElementBytes: 4)
        guard n == heads.count else { throw WireError(.invalidValue, "\(what): \(n) values for \(heads.count) heads") }
        return try r.floats(n, what)
    }

    private func readSteps(_ r: inout ByteReader, to heads: [Int], _ what: String) throws -> [Int] {
        let n = try r.listCount(what, minElementBytes: 8)
        guard n == heads.count else { throw WireError(.invalidValue, "\(what): \(n) values for \(heads.count) heads") }
        return try (0..<n).map { _ in try r.count64(what) }
    }

    private func readTensors(_ r: inout ByteReader, _ what: String) throws -> [WireTensor] {
        let n = try r.listCount("\(what) tensors", minElementBytes: 8)
        var out: [WireTensor] = []
        out.reserveCapacity(n)
        var names = Set<String>()
        for i in 0..<n {
            let name = try r.string("\(what) tensor \(i) name")
            guard names.insert(name).inserted else {
                throw WireError(.invalidTensor, "\(what): tensor '\(WireText.quote(name))' appears twice")
            }
            let rank = try r.int(UInt32.self, "tensor '\(WireText.quote(name))' rank")
            guard rank <= WireTensor.maxRank else {
                throw WireError(.invalidTensor, "tensor '\(WireText.quote(name))' has rank \(rank), limit \(WireTensor.maxRank)")
            }
            var shape: [Int] = []
            for k in 0..<Int(rank) { shape.append(try r.count64("tensor '\(WireText.quote(name))' dim \(k)")) }
            guard let count = WireTensor.elementCount(of: shape) else {
                throw WireError(.invalidTensor, "tensor '\(WireText.quote(name))' shape \(shape) overflows")
            }
            let encoding = WireTensor.Encoding(rawValue: try r.int(UInt8.self, "tensor '\(WireText.quote(name))' encoding"))
            if encoding != .float32 {
                let n = try r.count64("tensor '\(WireText.quote(name))' byte length")
                out.append(WireTensor(name: name, shape: shape, encoding: encoding, bytes: Array(try r.take(n, "tensor '\(WireText.quote(name))' bytes"))))
                continue
            }
            guard count <= r.remaining / 4 else {
                throw WireError(.truncated, "tensor '\(WireText.quote(name))' shape \(shape) needs \(count) floats, only \(r.remaining) bytes left")
            }
            out.append(WireTensor(name: name, shape: shape, values: try r.floats(count, "tensor '\(WireText.quote(name))' values")))
        }
        return out
    }
}

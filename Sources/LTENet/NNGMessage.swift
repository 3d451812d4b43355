import CNNG
import Foundation

/// Moving bytes between `Data` and `nng_msg` with one copy each way at most.
///
/// Sending copies the frame once into a message nng then owns. Receiving copies nothing: the
/// returned `Data` points into the message body and frees the message when the `Data` goes away,
/// so a 100 MB welcome is decoded straight out of nng's buffer.
enum NNGMessage {
    /// A new message holding a copy of `data`. The caller owns it until nng accepts it.
    static func make(_ data: Data, _ operation: @autoclosure () -> String) throws -> OpaquePointer {
        var msg: OpaquePointer? = nil
        try NNGError.check(nng_msg_alloc(&msg, data.count), "\(operation()): allocating \(data.count)-byte message")
        guard let msg else { throw NNGError(code: NNGError.code(NNG_ENOMEM), operation: operation()) }
        if data.count > 0 {
            data.withUnsafeBytes { src in
                nng_msg_body(msg)!.copyMemory(from: src.baseAddress!, byteCount: src.count)
            }
        }
        return msg
    }

    /// Takes ownership of `msg` and exposes its body as `Data` without copying.
    static func take(_ msg: OpaquePointer) -> Data {
        let count = nng_msg_len(msg)
        guard count > 0, let body = nng_msg_body(msg) else {
            nng_msg_free(msg)
            return Data()
        }
        let owner = MessageOwner(msg)
        return Data(bytesNoCopy: body, count: count, deallocator: .custom { _, _ in owner.free() })
    }
}

/// Holds an `nng_msg` for a `Data` deallocator (a raw pointer is not `Sendable`; this is, because
/// only the deallocator, called once, ever touches it).
private final class MessageOwner: @unchecked Sendable {
    let msg: OpaquePointer
    init(_ msg: OpaquePointer) { self.msg = msg }
    func free() { nng_msg_free(msg) }
}

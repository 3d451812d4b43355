import Foundation
import LTENet

/// A man in the middle for one worker: listens where the worker dials, forwards each request to the
/// server unchanged and the answer back, and keeps a copy of every frame the worker sent — what an
/// eavesdropper on an unencrypted link would capture and later replay — and of every answer.
final class RecordingProxy: @unchecked Sendable {
    let listen: String
    private let front: NNGReplySocket
    private let back: NNGRequestSocket
    private let lock = NSLock()
    private var frames: [Data] = []
    private var answers: [Data] = []
    private var stopped = false
    private var thread: Thread!

    init(listen: String, server: String) throws {
        self.listen = listen
        front = try NNGReplySocket(listen: listen, maxMessageBytes: 1 << 28, receiveTimeout: .milliseconds(200))
        back = try NNGRequestSocket(dial: server, maxMessageBytes: 1 << 28, sendTimeout: .seconds(30), receiveTimeout: nil)
        thread = Thread { [self] in forward() }
        thread.start()
    }

    /// The frames captured so far, in order.
    var captured: [Data] { lock.lock(); defer { lock.unlock() }; return frames }

    /// The answers forwarded so far, in order.
    var answered: [Data] { lock.lock(); defer { lock.unlock() }; return answers }

    /// The first captured frame of a message type.
    func first(_ type: MessageType) -> Data? {
        captured.first { (try? WireCodec.peekHeader($0).type) == type }
    }

    func stop() {
        lock.lock(); stopped = true; lock.unlock()
        front.close()
        back.close()
    }

    private var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopped }

    /// One request at a time, as a worker sends them.
    private func forward() {
        while !isStopped {
            guard let request = try? front.receive() else { continue }
            lock.lock(); frames.append(request); lock.unlock()
            guard let answer = try? back.request(request) else { continue }
            lock.lock(); answers.append(answer); lock.unlock()
            try? front.send(answer)
        }
    }
}

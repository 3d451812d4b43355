import Foundation

/// SIGINT / SIGTERM turned into a flag the main loop polls.
final class StopSignal: @unchecked Sendable {
    private let sources: [DispatchSourceSignal]
    private let flag = NSLock()
    private var value = false

    init() {
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            sources.append(s)
        }
        self.sources = sources
        for s in sources {
            s.setEventHandler { [weak self] in self?.set() }
            s.resume()
        }
    }

    private func set() { flag.lock(); value = true; flag.unlock() }
    var received: Bool { flag.lock(); defer { flag.unlock() }; return value }
}

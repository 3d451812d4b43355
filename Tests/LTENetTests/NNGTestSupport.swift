import Foundation
import LTENet
import XCTest

/// A value set from another thread and read after it finished.
final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: T
    init(_ value: T) { _value = value }
    func mutate(_ body: (inout T) -> Void) { lock.lock(); body(&_value); lock.unlock() }
    /// Reads under the lock. (There is no `value` getter: an optimized build may pass the array on
    /// without retaining it, so a reader still scanning it races a writer that then finds it unique
    /// and appends in place, as ThreadSanitizer saw.) Read what you need inside `body`.
    func read<R>(_ body: (T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return body(_value) }
}

/// Runs `body` on its own thread (blocking nng calls never run on the test's cooperative pool) and
/// returns a handle to wait for its result.
final class Background<T>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, Error>?

    init(_ body: @escaping () throws -> T) {
        let thread = Thread { [self] in
            result = Result { try body() }
            done.signal()
        }
        thread.start()
    }

    /// The body's result; fails the test (and throws) if it takes longer than `seconds`.
    func wait(seconds: Double = 10, file: StaticString = #filePath, line: UInt = #line) throws -> T {
        guard done.wait(timeout: .now() + seconds) == .success else {
            XCTFail("background work did not finish within \(seconds) s", file: file, line: line)
            throw CancellationError()
        }
        return try result!.get()
    }
}

enum NNGTestSupport {
    /// A TCP port that was free a moment ago (bound by nng on port 0, then released).
    static func freePort() throws -> Int {
        let probe = try NNGReplySocket(listen: "tcp://127.0.0.1:0", maxMessageBytes: 1024)
        defer { probe.close() }
        return try XCTUnwrap(probe.boundPort)
    }

    static func ipcURL() -> String {
        "ipc:///tmp/lte-net-test-\(UUID().uuidString.prefix(8)).ipc"
    }

    static func elapsed(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }
}

extension XCTestCase {
    /// Asserts `body` throws an `NNGError` satisfying `predicate`.
    func assertNNGError<T>(_ body: @autoclosure () throws -> T, _ what: String, _ predicate: (NNGError) -> Bool,
                           file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("expected \(what)", file: file, line: line)
        } catch let e as NNGError {
            XCTAssertTrue(predicate(e), "expected \(what), got \(e)", file: file, line: line)
        } catch {
            XCTFail("expected NNGError (\(what)), got \(error)", file: file, line: line)
        }
    }
}

import Dispatch

/// Splits independent work items over the process's worker threads (the model's own parallel loops,
/// beside OpenBLAS's pool). One thread runs the loop inline, with no dispatch overhead.
public enum Parallel {
    nonisolated(unsafe) public static var threads: Int = 1

    @inline(__always)
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if threads <= 1 || count <= 1 {
            for i in 0..<count { body(i) }
        } else {
            DispatchQueue.concurrentPerform(iterations: count, execute: body)
        }
    }
}

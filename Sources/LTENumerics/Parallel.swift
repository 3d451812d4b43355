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

    /// Splits 0..<count into one contiguous slab per thread, `body(start, length)`, each running on
    /// a one-thread BLAS: for products too thin (rank-r) to gain from OpenBLAS's own threads. One
    /// thread makes one call over the whole range.
    public static func slabs(_ count: Int, _ body: (_ start: Int, _ length: Int) -> Void) {
        let n = min(threads, count)
        guard n > 1 else { body(0, count); return }
        BLASThreads.set(1)
        DispatchQueue.concurrentPerform(iterations: n) { i in
            let start = count * i / n
            body(start, count * (i + 1) / n - start)
        }
        BLASThreads.set(threads)
    }
}

import CBLAS
import Foundation

/// OpenBLAS settings that only take effect from the environment, read once when the library loads
/// (before `main`). `lte` checks them at start and, when one is missing, runs itself again with it
/// set (`LTE.main`); a variable the user set is never overridden.
///
/// - `OPENBLAS_THREAD_TIMEOUT`: after a product, OpenBLAS's worker threads spin (yielding) for
///   2^28 cycles by default before they sleep. Between products the model runs its own parallel
///   loops and one-thread products on the same cores, and the spinning workers took 15 % of a
///   two-thread LTE step in `__schedule`; at 2^10 cycles they go to sleep almost at once
///   (bench-256, 2 threads: full-rank MFU 0.77 → 0.83, one LTE head 10.0k → 11.4k tokens/s).
/// - `OPENBLAS_CORETYPE`: Debian 12's OpenBLAS 0.3.21 does not recognise AMD Zen 4 and Zen 5 and falls
///   back to its Haswell (AVX2) kernels there, about half the sgemm rate of its SkylakeX (AVX-512)
///   kernels on the same core; where the CPU has the AVX-512 subsets those use, ask for them.
public enum BLASEnvironment {
    /// The kernel set in use ("Haswell", "SkylakeX", …).
    public static var kernels: String { BLASThreads.corename }

    /// The variables to add to `environment` before OpenBLAS loads (empty when nothing is missing).
    public static func missing(in environment: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        var add: [String: String] = [:]
        if environment["OPENBLAS_THREAD_TIMEOUT"] == nil && environment["GOTO_THREAD_TIMEOUT"] == nil {
            add["OPENBLAS_THREAD_TIMEOUT"] = "10"
        }
        if environment["OPENBLAS_CORETYPE"] == nil, ["Haswell", "Zen"].contains(kernels),
           Set(["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]).isSubset(of: cpuFlags()) {
            add["OPENBLAS_CORETYPE"] = "SkylakeX"
        }
        return add
    }

    /// The CPU's feature flags as Linux lists them (empty where /proc/cpuinfo is not there).
    static func cpuFlags() -> Set<String> {
        guard let handle = FileHandle(forReadingAtPath: "/proc/cpuinfo"),
              let data = try? handle.readToEnd() else { return [] }
        try? handle.close()
        let text = String(decoding: data, as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }
}

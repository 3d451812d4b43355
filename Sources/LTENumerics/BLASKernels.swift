import CBLAS
import Foundation

/// Which of OpenBLAS's kernel sets runs the matrix products.
///
/// A DYNAMIC_ARCH OpenBLAS picks its kernels once, when the library loads, from the CPU it
/// recognises or from `OPENBLAS_CORETYPE`. Debian 12's OpenBLAS 0.3.21 does not recognise AMD Zen 4 and
/// Zen 5 and falls back to its Haswell (AVX2) kernels there, which reach about half the sgemm rate of its
/// SkylakeX (AVX-512) kernels on the same core. Since the choice is made before `main`, the remedy is
/// to run the process again with the variable set: `lte` does that once at start (`preferredCoreType`).
public enum BLASKernels {
    /// The kernel set in use ("Haswell", "SkylakeX", …).
    public static var current: String { BLASThreads.corename }

    /// The kernel set to ask for instead of the current one, or nil when the current one is right:
    /// "SkylakeX" when the CPU has the AVX-512 subsets those kernels use but OpenBLAS fell back to
    /// an AVX2 set. Nothing is suggested when the user chose with OPENBLAS_CORETYPE.
    public static func preferredCoreType(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil else { return nil }
        guard ["Haswell", "Zen"].contains(current) else { return nil }
        let needed: Set<String> = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        return needed.isSubset(of: cpuFlags()) ? "SkylakeX" : nil
    }

    /// The CPU's feature flags as Linux lists them (empty where /proc/cpuinfo is not there).
    static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }
}

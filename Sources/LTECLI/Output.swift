import Foundation

/// Progress output: one line to stdout, written at once (not held in a pipe's buffer).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// 823552 → "823.6K", 12_345_678 → "12.35M".
func formatCount(_ n: Int) -> String {
    n >= 1_000_000 ? String(format: "%.2fM", Double(n) / 1e6) : n >= 1_000 ? String(format: "%.1fK", Double(n) / 1e3) : "\(n)"
}

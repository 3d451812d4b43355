import Foundation
import LTEBase

/// A directory written in full beside its destination and then swapped in with one rename, so a
/// reader (or a crash) sees the old directory or the new one, never a mixture. `Checkpoint.save`
/// does the same for checkpoints; Hugging Face exports and PEFT adapters use this.
public enum AtomicDirectory {
    public static func write(to url: URL, _ body: (URL) throws -> Void) throws {
        let fm = FileManager.default
        let parent = url.deletingLastPathComponent()
        do { try fm.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
            throw LTEError("cannot create directory \(parent.path): \(error.localizedDescription)")
        }
        let temporary = parent.appendingPathComponent("." + url.lastPathComponent + ".partial-" + UUID().uuidString)
        do { try fm.createDirectory(at: temporary, withIntermediateDirectories: false) } catch {
            throw LTEError("cannot create directory \(temporary.path): \(error.localizedDescription)")
        }
        do {
            try body(temporary)
            try DirectorySwap.replace(url, with: temporary)
        } catch {
            try? fm.removeItem(at: temporary)
            throw error
        }
    }
}

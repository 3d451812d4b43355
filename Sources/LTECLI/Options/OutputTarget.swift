import ArgumentParser
import Foundation
import LTEBase

/// Where a command with `--out` may write. Commands replace what is at `--out` as a whole (a
/// checkpoint, an export, a data directory), so before anything is written this refuses every place
/// whose contents lte did not make: a regular file (except the file a single-file format replaces),
/// a directory holding anything but the files lte writes into such a directory, and any directory
/// that is, or holds, a run directory. `--force` lifts the refusal; nothing above `--out` is ever
/// touched, since `--out` is resolved (`sub/..`, `.`, symlinks) before it is judged.
struct OutputTarget {
    /// The help of every command's `--force`.
    static let forceHelp = ArgumentHelp("Replace --out even when it holds files lte did not write or a run directory.")

    /// What the command writes there.
    enum Kind {
        /// A model directory: checkpoint, replay, Hugging Face export or import, PEFT adapter.
        case modelDirectory
        /// A prepared data directory (`lte data prepare`, `lte data synth`).
        case dataDirectory
        /// One file in a format whose first bytes say what it is (GGUF's "GGUF").
        case file(magic: String)
    }

    /// Names lte writes into the directories it makes; a directory holding only these (and its own
    /// leftovers, `.*.partial-*`) is one lte made and may be replaced.
    static let modelNames: Set<String> = [
        "model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "README.md",
        "optimizer.safetensors", "trainer_state.json", "replicas.safetensors", "lte_export.json", "adapter_config.json",
        "adapter_model.safetensors", "base",
    ]
    static let dataNames: Set<String> = ["train.bin", "val.bin", "tokenizer.json", "meta.json", "corpus.txt"]

    /// What marks a run directory (`lte train`, `lte server`, `lte launch`).
    static let runMarkers = ["history.git", "rounds.jsonl", "metrics.jsonl"]

    /// `--out` resolved, checked, ready to be written; throws the reason in one line otherwise.
    static func check(_ path: String, kind: Kind, force: Bool, flag: String = "--out") throws -> URL {
        let url = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath()
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return url }
        if url.path == "/" || url.path == fm.homeDirectoryForCurrentUser.standardizedFileURL.path {
            throw LTEError("\(flag) \(path) is \(url.path); write to a directory of its own")
        }
        let cwd = URL(fileURLWithPath: fm.currentDirectoryPath).standardizedFileURL.resolvingSymlinksInPath().path
        if cwd == url.path || cwd.hasPrefix(url.path + "/") {
            throw LTEError("\(flag) \(path) is \(cwd == url.path ? "the current directory" : "above the current directory"), which this would replace; write to a new directory, e.g. \(flag) out")
        }
        if force { return url }
        if !isDirectory.boolValue {
            if case .file(let magic) = kind, Self.begins(url, with: magic) { return url }
            throw LTEError("\(flag) \(path) is an existing file, which this would replace; choose another path (or pass --force)")
        }
        if case .file = kind {
            throw LTEError("\(flag) \(path) is a directory; give the path of the file to write")
        }
        if let run = try Self.runDirectory(in: url, depth: 2) {
            let what = run.path == url.path ? "is a run directory" : "holds the run directory \(run.path)"
            throw LTEError("\(flag) \(path) \(what), which this would delete; choose another path (or pass --force)")
        }
        let entries = (try? fm.contentsOfDirectory(atPath: url.path)) ?? []
        let known: Set<String>
        switch kind {
        case .modelDirectory: known = modelNames
        case .dataDirectory: known = dataNames
        case .file: known = []
        }
        let foreign = entries.filter { name in
            !(known.contains(name) || name.hasPrefix("head-") || (name.hasPrefix(".") && name.contains(".partial-")))
        }.sorted()
        if let first = foreign.first {
            let more = foreign.count > 1 ? " and \(foreign.count - 1) more" : ""
            throw LTEError("\(flag) \(path) is a directory lte did not write (it holds \(first)\(more)), which this would replace; choose an empty or new directory (or pass --force)")
        }
        return url
    }

    /// `url` itself or a directory below it (at most `depth` levels) that holds a run's files.
    private static func runDirectory(in url: URL, depth: Int) throws -> URL? {
        let fm = FileManager.default
        if runMarkers.contains(where: { fm.fileExists(atPath: url.appendingPathComponent($0).path) }) { return url }
        guard depth > 0 else { return nil }
        for name in (try? fm.contentsOfDirectory(atPath: url.path))?.sorted() ?? [] where !name.hasPrefix(".") {
            let child = url.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: child.path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            if let run = try runDirectory(in: child, depth: depth - 1) { return run }
        }
        return nil
    }

    private static func begins(_ url: URL, with magic: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: url.path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: magic.utf8.count)) ?? Data()
        return head == Data(magic.utf8)
    }
}

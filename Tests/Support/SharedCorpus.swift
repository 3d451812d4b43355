import Foundation
import XCTest

/// The package root, found from this file's path (Tests/Support/SharedCorpus.swift).
public let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// tinyshakespeare (karpathy/char-rnn), from `LTE_CORPUS` or the developers' shared folder beside the
/// checkout; never copied into it. Tests that need it skip without it.
public func tinyShakespeareURL() throws -> URL {
    let env = ProcessInfo.processInfo.environment["LTE_CORPUS"]
    let url = env.map { URL(fileURLWithPath: $0) }
        ?? packageRoot.appendingPathComponent("../shared/data/tinyshakespeare.txt").standardizedFileURL
    guard FileManager.default.fileExists(atPath: url.path) else {
        throw XCTSkip("tinyshakespeare not found at \(url.path) (set LTE_CORPUS to a local copy)")
    }
    return url
}

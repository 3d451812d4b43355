import Foundation
import LTENumerics
import XCTest

/// The package root, found from this file's path (Tests/LTETrainingTests/TestSupport.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// tinyshakespeare, shared beside the checkout rather than copied into it; tests skip without it.
func tinyShakespeareURL() throws -> URL {
    let url = packageRoot.appendingPathComponent("../shared/data/tinyshakespeare.txt").standardizedFileURL
    guard FileManager.default.fileExists(atPath: url.path) else {
        throw XCTSkip("tinyshakespeare not found at \(url.path)")
    }
    return url
}


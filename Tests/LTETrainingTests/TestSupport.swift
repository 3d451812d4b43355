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

extension XCTestCase {
    /// A fresh empty directory, removed when the test ends.
    func makeTemporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lte-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// Asserts that `body` throws an `LTEError` whose one-line message contains every fragment.
    func assertLTEError<T>(_ body: @autoclosure () throws -> T, contains fragments: String...,
                           file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("expected an LTEError containing \(fragments)", file: file, line: line)
        } catch let error as LTEError {
            for fragment in fragments {
                XCTAssertTrue(error.message.contains(fragment), "\"\(error.message)\" does not contain \"\(fragment)\"", file: file, line: line)
            }
            XCTAssertFalse(error.message.contains("\n"), "error message is not one line: \(error.message)", file: file, line: line)
        } catch {
            XCTFail("expected an LTEError, got \(error)", file: file, line: line)
        }
    }
}

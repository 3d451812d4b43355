import Foundation
import LTEBase
import XCTest

extension XCTestCase {
    /// A fresh empty directory under the system's temporary one, removed when the test ends.
    public func makeTemporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lte-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// Asserts that `body` throws an `LTEError` whose one-line message contains every fragment.
    public func assertLTEError<T>(_ body: @autoclosure () throws -> T, contains fragments: String...,
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

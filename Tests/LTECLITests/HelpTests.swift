import Foundation
import XCTest

/// Every command's --help carries example invocations, and options shared across commands are the
/// same options everywhere.
final class HelpTests: XCTestCase {
    static let commands: [[String]] = [
        [], ["data"], ["data", "prepare"], ["data", "synth"], ["train"], ["sample"], ["server"], ["worker"], ["launch"],
        ["status"], ["log"], ["show"], ["replay"], ["fsck"], ["export"], ["import"], ["logits"], ["bench"], ["bench", "step"],
    ]

    func testEveryCommandsHelpHasExamples() throws {
        for command in Self.commands {
            let help = try LTEBinary.succeed(command + ["--help"])
            XCTAssertTrue(help.stdout.contains("Examples:\n  lte "), "lte \(command.joined(separator: " ")) --help has no examples:\n\(help.stdout)")
        }
    }

    /// --help of `command`, its lines joined (ArgumentParser wraps them at the terminal's width).
    private func help(_ command: [String]) throws -> String {
        try LTEBinary.succeed(command + ["--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    func testEnumOptionsListTheirValues() throws {
        XCTAssertTrue(try help(["train"]).contains("values: full, lte, lora, lora-merge, fedavg"))
        XCTAssertTrue(try help(["bench", "step"]).contains("values: full, lte, lora, forward"))
        XCTAssertTrue(try help(["data", "synth"]).contains("values: char, byte, bpe"))
        XCTAssertTrue(try help(["data", "prepare"]).contains("char|byte|bpe|file"))
        let bad = try LTEBinary.run(["bench", "step", "--config", "configs/tiny.json", "--mode", "sideways"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("'full', 'lte', 'lora' or 'forward'"), bad.summary)
    }

    func testThreadsIsCheckedTheSameWayEverywhere() throws {
        for command in [["sample", "--checkpoint", "x", "--prompt", "a"], ["logits", "--checkpoint", "x", "--tokens", "1"],
                        ["replay", "--out", "x"], ["bench", "step", "--config", "configs/tiny.json"]] {
            let result = try LTEBinary.run(command + ["--threads", "0"])
            XCTAssertEqual(result.status, 64, result.summary)   // ArgumentParser's usage error, before any work
            XCTAssertTrue(result.stderr.contains("--threads must be at least 1"), result.summary)
        }
    }
}

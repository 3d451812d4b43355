import Foundation
import LTETestSupport
import XCTest

/// The scripts the README and the issues run by path (`experiments/bench --json FILE`, …) must stay
/// runnable that way: executable, with an interpreter line. A script once landed without its
/// executable bit, and `experiments/bench` failed with "Permission denied".
final class ExperimentScriptsTests: XCTestCase {
    func testEveryExperimentScriptRunsByPath() throws {
        let dir = packageRoot.appendingPathComponent("experiments")
        let fm = FileManager.default
        let scripts = try fm.contentsOfDirectory(atPath: dir.path).filter { name in
            var isDir: ObjCBool = false
            return !name.hasPrefix(".") && !name.contains(".") && fm.fileExists(atPath: dir.appendingPathComponent(name).path, isDirectory: &isDir) && !isDir.boolValue
        }
        for required in ["bench", "compare", "quickstart", "profile", "chaos", "hf-parity", "bpe-parity", "big-corpus", "wan", "elastic", "slurm"] {
            XCTAssertTrue(scripts.contains(required), "experiments/\(required) is missing")
        }
        for name in scripts {
            let path = dir.appendingPathComponent(name).path
            XCTAssertTrue(fm.isExecutableFile(atPath: path), "experiments/\(name) is not executable")
            let head = try String(contentsOfFile: path, encoding: .utf8).prefix(2)
            XCTAssertEqual(head, "#!", "experiments/\(name) has no interpreter line")
        }
    }
}

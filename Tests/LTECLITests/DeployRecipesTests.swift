import Foundation
import LTETestSupport
import XCTest

/// deploy/: the Kubernetes manifests parse and run `lte` with flags it has; the Slurm script parses
/// and uses flags `lte` has. (Neither scheduler runs here; this keeps the recipes from rotting.)
final class DeployRecipesTests: XCTestCase {
    private let deploy = packageRoot.appendingPathComponent("deploy")

    /// Every `--flag` in `command` (an `lte SUBCOMMAND …` list) appears in that subcommand's --help.
    private func assertFlagsExist(_ command: [String], _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(command.first, "lte", what, file: file, line: line)
        guard command.count > 1 else { return XCTFail("\(what): no subcommand", file: file, line: line) }
        let help = try LTEBinary.succeed([command[1], "--help"]).stdout
        for flag in command.dropFirst(2) where flag.hasPrefix("--") {
            XCTAssertTrue(help.contains(flag + " ") || help.contains(flag + "\n"), "\(what): lte \(command[1]) has no \(flag)", file: file, line: line)
        }
    }

    private func containers(_ object: Any) -> [[String: Any]] {
        guard let dict = object as? [String: Any] else { return [] }
        if let items = dict["items"] as? [Any] { return items.flatMap(containers) }
        let spec = ((dict["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]
        return spec?["containers"] as? [[String: Any]] ?? []
    }

    func testKubernetesManifestsParseAndRunLTEWithItsOwnFlags() throws {
        var kinds: [String] = []
        var commands: [[String]] = []
        for name in ["server.json", "workers.json"] {
            let data = try Data(contentsOf: deploy.appendingPathComponent("kubernetes/\(name)"))
            let object = try JSONSerialization.jsonObject(with: data)
            let dict = try XCTUnwrap(object as? [String: Any], name)
            kinds += ((dict["items"] as? [[String: Any]]) ?? [dict]).compactMap { $0["kind"] as? String }
            commands += containers(object).compactMap { $0["command"] as? [String] }
        }
        XCTAssertEqual(Set(kinds), ["Service", "StatefulSet", "Deployment"])
        XCTAssertEqual(commands.map { $0.dropFirst().first }, ["server", "worker"])
        for c in commands { try assertFlagsExist(c, "kubernetes \(c[1])") }
        let worker = try XCTUnwrap(commands.first { $0[1] == "worker" })
        XCTAssertEqual(worker[(worker.firstIndex(of: "--heads") ?? 0) + 1], "auto", "workers take heads from the server")
    }

    func testSlurmScriptParsesAndUsesLTEsFlags() throws {
        let script = deploy.appendingPathComponent("slurm/lte.sbatch")
        let bash = Process()
        bash.executableURL = URL(fileURLWithPath: "/bin/bash")
        bash.arguments = ["-n", script.path]
        try bash.run()
        bash.waitUntilExit()
        XCTAssertEqual(bash.terminationStatus, 0, "bash -n \(script.path)")
        let text = try String(contentsOf: script, encoding: .utf8)
        XCTAssertTrue(text.contains("--heads auto"))
        try assertFlagsExist(["lte", "server", "--listen", "--run", "--config", "--data", "--heads", "--rounds", "--secret-file", "--concurrency"], "slurm server")
        try assertFlagsExist(["lte", "worker", "--server", "--heads", "--max-heads", "--data", "--secret-file", "--id", "--connect-timeout"], "slurm worker")
    }
}

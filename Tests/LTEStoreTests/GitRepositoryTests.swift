import Foundation
import LTEBase
import LTENumerics
import LTETestSupport
import XCTest
@testable import LTEStore

/// The libgit2 wrapper on real repositories, checked against the `git` command line.
final class GitRepositoryTests: XCTestCase {
    func testBlobsTreesCommitsAndRefs() throws {
        let url = try makeTemporaryDirectory().appendingPathComponent("r.git")
        let repo = try GitRepository.createBare(at: url)
        let a = try repo.writeBlob(Data("alpha\n".utf8))
        XCTAssertEqual(a, try repo.writeBlob(Data("alpha\n".utf8)), "same bytes, same blob")
        let plain = url.deletingLastPathComponent().appendingPathComponent("alpha.txt")
        try Data("alpha\n".utf8).write(to: plain)
        XCTAssertEqual(a.hex, try git(url, "hash-object", plain.path).trimmingCharacters(in: .whitespacesAndNewlines))
        let b = try repo.writeBlob(Data([0, 1, 2, 255]))
        let files = ["config.json": a, "weights/model.safetensors": b, "heads/3.safetensors": a, "deep/er/x": b]
        let tree = try repo.writeTree(files)
        XCTAssertEqual(try repo.files(inTree: tree), files)
        XCTAssertEqual(try repo.blobID(at: "weights/model.safetensors", inTree: tree), b)
        XCTAssertNil(try repo.blobID(at: "weights/none", inTree: tree))
        XCTAssertEqual(try repo.readBlob(b), Data([0, 1, 2, 255]))
        assertLTEError(try repo.writeTree(["x": a, "x/y": b]), contains: "both a file and a directory")

        let root = try repo.commit(tree: tree, parents: [], message: "root\n", updating: "refs/heads/main", expected: nil)
        let side1 = try repo.commit(tree: tree, parents: [root], message: "side 1\n", updating: "refs/heads/s1", expected: nil)
        let side2 = try repo.commit(tree: tree, parents: [root], message: "side 2\n", updating: "refs/heads/s2", expected: nil)
        let merge = try repo.commit(tree: tree, parents: [root, side1, side2], message: "octopus\n",
                                    updating: "refs/heads/main", expected: root)
        let info = try repo.readCommit(merge)
        XCTAssertEqual(info.parents, [root, side1, side2])
        XCTAssertEqual(info.tree, tree)
        XCTAssertEqual(info.message, "octopus\n")
        XCTAssertLessThan(abs(info.time.timeIntervalSinceNow), 60)
        XCTAssertEqual(try repo.firstParentHistory(from: merge).map(\.id), [merge, root])
        XCTAssertEqual(try git(url, "rev-list", "--parents", "-n", "1", "main").split(separator: " ").count, 4)

        // The ref only moves from the value it is expected at.
        assertLTEError(try repo.commit(tree: tree, parents: [root], message: "stale\n", updating: "refs/heads/main", expected: root),
                             contains: "refs/heads/main", "expected at \(root.short)")
        assertLTEError(try repo.updateReference("refs/heads/s1", to: root, expected: nil, message: "x"), contains: "expected not to exist")
        XCTAssertEqual(try repo.referenceTarget("refs/heads/main"), merge)
        XCTAssertNil(try repo.referenceTarget("refs/heads/none"))
        XCTAssertEqual(try repo.references(matching: "refs/heads/s*").map(\.name), ["refs/heads/s1", "refs/heads/s2"])

        // Tags and revision strings.
        try repo.createTag("snapshot/one", target: root, message: "annotated\n")
        try repo.createTag("light", target: side1, message: nil)
        assertLTEError(try repo.createTag("light", target: side2, message: nil), contains: "light")
        XCTAssertEqual(try git(url, "cat-file", "-t", "snapshot/one").trimmingCharacters(in: .whitespacesAndNewlines), "tag")
        XCTAssertEqual(try repo.resolveCommit("snapshot/one"), root)
        XCTAssertEqual(try repo.resolveCommit("light"), side1)
        XCTAssertEqual(try repo.resolveCommit("main"), merge)
        XCTAssertEqual(try repo.resolveCommit("main^3"), side2)
        XCTAssertEqual(try repo.resolveCommit(merge.short), merge)
        XCTAssertEqual(try repo.resolveCommit(merge.hex), merge)
        XCTAssertNil(try repo.resolveCommit("no-such-thing"))
        XCTAssertNil(try repo.resolveCommit("deadbeef"))
        XCTAssertTrue(try repo.isDescendant(merge, of: side2))
        XCTAssertFalse(try repo.isDescendant(side1, of: side2))

        // Everything reads back; git agrees the repository is sound.
        let count = try repo.verifyAllObjects()
        XCTAssertEqual(count.objects, try repo.allObjectIDs().count)
        XCTAssertEqual(count.byType["commit"], 5, "four on refs, and the stale one whose ref move failed (dangling)")
        XCTAssertEqual(count.byType["tag"], 1)
        _ = try git(url, "fsck", "--strict", "--no-dangling")
        XCTAssertEqual(try git(url, "symbolic-ref", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines), "refs/heads/main")
    }

    func testCreateRefusesAnExistingRepositoryAndOpenNeedsOne() throws {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent("r.git")
        _ = try GitRepository.createBare(at: url)
        assertLTEError(try GitRepository.createBare(at: url), contains: "cannot create git repository at \(url.path)")
        assertLTEError(try GitRepository.open(at: dir.appendingPathComponent("none")), contains: "cannot open git repository")
    }

    /// Durability is not something a test can observe from inside the process, so this runs the
    /// probe below in a child process under strace and checks that every object file and the ref
    /// was fsynced before being moved into place, and its directory after (GIT_OPT_ENABLE_FSYNC_GITDIR
    /// honoured), then the ref the same way.
    func testCommitsAreFsyncedBeforeTheyReturn() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/strace") else { throw XCTSkip("strace is not installed") }
        let dir = try makeTemporaryDirectory()
        let log = dir.appendingPathComponent("strace.log")
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let r = try runProgram("/usr/bin/strace", ["-f", "-y", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2,link,linkat", "-o", log.path,
                                            exe, "LTEStoreTests.DurabilityProbe/testProbe"],
                        environment: ["LTE_DURABILITY_PROBE": dir.path])
        guard r.status == 0 else {
            if r.err.contains("ptrace") { throw XCTSkip("strace cannot trace here: \(r.err)") }
            return XCTFail("probe failed: \(r.out) \(r.err)")
        }
        let trace = try String(contentsOf: log, encoding: .utf8)
        let repo = dir.appendingPathComponent("probe.git").path
        let objects = try String(contentsOf: dir.appendingPathComponent("objects.txt"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(objects.count, 3, "blob, tree, commit")
        let lines = trace.split(separator: "\n").map(String.init)
        /// Index of the first line after `from` containing all the fragments.
        func find(_ fragments: String..., from: Int = 0) -> Int? {
            lines.indices.dropFirst(from).first { i in fragments.allSatisfy { lines[i].contains($0) } }
        }
        /// libgit2 moves a finished temporary file into place with link() (rename() as a fallback):
        /// the file must have been fsynced before, and its directory after.
        func checkDurable(_ final: String, _ what: String) {
            guard let move = find("\", \"\(final)\")") else { return XCTFail("\(what): no link/rename to \(final) in\n\(trace)") }
            let source = lines[move].components(separatedBy: "(\"").dropFirst().first?.components(separatedBy: "\"").first ?? "?"
            XCTAssertEqual(find("fsync(", "<\(source)>", ") = 0").map { $0 < move }, true, "\(what): \(source) not fsynced before it moved")
            let directory = (final as NSString).deletingLastPathComponent
            XCTAssertNotNil(find("fsync(", "<\(directory)>", ") = 0", from: move), "\(what): \(directory) not fsynced after the move")
        }
        for id in objects { checkDurable("\(repo)/objects/\(id.prefix(2))/\(id.dropFirst(2))", "object \(id)") }
        checkDurable("\(repo)/refs/heads/main", "ref main")
    }
}

/// Run by `testCommitsAreFsyncedBeforeTheyReturn` in a child process under strace: writes a blob,
/// a tree and a commit on `main` and lists their ids. Skipped when run any other way.
final class DurabilityProbe: XCTestCase {
    func testProbe() throws {
        guard let dir = ProcessInfo.processInfo.environment["LTE_DURABILITY_PROBE"] else {
            throw XCTSkip("runs only as the child of GitRepositoryTests.testCommitsAreFsyncedBeforeTheyReturn")
        }
        let repo = try GitRepository.createBare(at: URL(fileURLWithPath: dir).appendingPathComponent("probe.git"))
        let blob = try repo.writeBlob(Data("durable\n".utf8))
        let tree = try repo.writeTree(["round.json": blob])
        let commit = try repo.commit(tree: tree, parents: [], message: "probe\n", updating: "refs/heads/main", expected: nil)
        try [blob, tree, commit].map(\.hex).joined(separator: "\n")
            .write(to: URL(fileURLWithPath: dir).appendingPathComponent("objects.txt"), atomically: true, encoding: .utf8)
    }
}

import ArgumentParser
import Foundation
import LTEBase
import LTEStore

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "One round (or push) in detail.",
        discussion: """
            REV is a round number, a commit id (full or short), a tag such as snapshot/round-10, or main.

            Examples:
              lte show --run runs/launch 3
              lte show --run runs/launch snapshot/round-10
            """)
    @OptionGroup var runDir: RunHistoryOptions
    @Argument(help: "Round number, commit id, tag or branch.") var revision: String

    func run() throws {
        let c = try runDir.open().show(revision)
        print("commit \(c.commit)")
        if c.parents.count > 1 { print("merge  " + c.parents.map { String($0.prefix(10)) }.joined(separator: " ")) }
        print("date   \(historyTimeFormat.string(from: c.time))")
        if let r = c.round {
            print("round  \(r.round)\(r.snapshot ? " (snapshot: full weights)" : "")")
            if !r.heads.isEmpty {
                print("heads  \(r.heads.map(String.init).joined(separator: ",")) (summed in this order, rule \(r.merge.rule.rawValue), scale \(r.merge.scale), N = \(r.merge.totalHeads))")
                for l in r.losses { print(String(format: "  head %d  loss %.4f", l.head, l.loss)) }
                for p in r.pushes { print("  push \(p.commit.prefix(10)) from \(p.worker): heads \(p.heads.map(String.init).joined(separator: ","))") }
            }
            print("tokens \(r.tokens)  lr \(r.learningRate)\(r.bytes.map { "  bytes in \($0)" } ?? "")")
            print("weights sha256 \(r.weightsSHA256)")
            if let f = r.frozenWeights { print("frozen \(f.format.rawValue) sha256 \(f.sha256)  (the weights quantized, as workers hold them)") }
            for e in r.excluded ?? [] { print("  excluded head \(e.head) from \(e.worker): \(e.reason)") }
            // Notes: e.g. open membership's heads handed over, taken or freed since the round before, and why.
            for (key, value) in r.notes.sorted(by: { $0.key < $1.key }) { print("note   \(key): \(value)") }
        } else if let p = c.push {
            print("push   worker \(p.worker), round \(p.round), heads \(p.heads.map(String.init).joined(separator: ","))")
        }
        print("files  " + c.files.keys.sorted().joined(separator: " "))
    }
}

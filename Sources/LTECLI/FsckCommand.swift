import ArgumentParser
import Foundation
import LTEBase
import LTEStore

struct FsckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsck",
        abstract: "Read every object of the history and replay every round, checking every recorded weights hash.",
        discussion: """
            With lte.frozen_weights int8 or nf4, each round also records the hash of the frozen weights as the
            workers hold them quantized; fsck quantizes the replayed weights and checks that hash too.

            Examples:
              lte fsck --run runs/launch
              git --git-dir runs/launch/history.git fsck     # git's own check of the same repository
            """)
    @OptionGroup var runDir: RunHistoryOptions

    func run() throws {
        let began = ContinuousClock.now
        let r = try runDir.open().fsck()
        let frozen = r.frozenRounds > 0 ? " | \(r.frozenRounds) frozen-weights hashes matched" : ""
        say(String(format: "fsck: clean | %d objects (%@ bytes) read | %d rounds replayed and matched%@ | %d snapshots matched | lines %@ | %.1f s",
                   r.objects, formatCount(r.bytes), r.rounds, frozen, r.snapshots, r.lines.joined(separator: ", "), (ContinuousClock.now - began).seconds))
    }
}

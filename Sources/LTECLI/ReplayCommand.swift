import ArgumentParser
import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTEStore

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Rebuild the weights at a round from the nearest snapshot, check them against the recorded hash, and write a checkpoint.",
        discussion: """
            The checkpoint (model.safetensors + config.json) loads with `lte sample`, `lte logits` and transformers.
            With lte.frozen_weights int8 or nf4, the rebuilt weights quantized are also checked against the
            round's frozen-weights hash (what the workers computed against).

            Examples:
              lte replay --run runs/launch --to 3 --out ckpt/round-3
              lte replay --run runs/launch --to main --out ckpt/latest --threads 2
            """)
    @OptionGroup var runDir: RunHistoryOptions
    @Option(help: "Round number, commit id, tag or branch (default: main).") var to: String = "main"
    @Option(help: ArgumentHelp("Directory for model.safetensors + config.json.", valueName: "dir")) var out: String
    @Flag(help: OutputTarget.forceHelp) var force = false
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        threads.apply()
        let outURL = try OutputTarget.check(out, kind: .modelDirectory, force: force)
        let history = try runDir.open()
        let began = ContinuousClock.now
        let (weights, result) = try history.replay(to: to)
        let seconds = (ContinuousClock.now - began).seconds
        let model = try Transformer(config: history.modelConfig, trainable: { _ in false })
        model.params.copy(from: weights)
        try Checkpoint.save(model: model, to: outURL)
        let frozen = result.frozenWeights.map { " | frozen \($0.format.rawValue) weights \($0.sha256.hex) match" } ?? ""
        say(String(format: "replayed round %d (%@) from the snapshot of round %d: %d rounds in %.2f s (%.1f rounds/s) | weights %@ match the history%@ | wrote %@",
                   result.round, String(result.commit.prefix(10)), result.startRound, result.roundsApplied, seconds,
                   Double(result.roundsApplied) / max(seconds, 1e-9), result.weightsHash.hex, frozen, out))
    }
}

import Foundation
import LTEBase
import LTEData
import LTEModel
import LTENumerics
import LTEStore
import LTETraining

/// Everything a mode needs to set itself up: the effective config, the data, where the run lives.
struct TrainingSetup {
    let config: RunConfig
    let dataset: TokenDataset
    let runDirectory: URL
}

/// One mode's training as `lte train` drives it: the run the loop steps, and checkpointing.
/// Adding a mode means writing one of these and a case in `makeSession`.
/// The modes of `lte train --mode` (DESIGN.md §2) are each one of these; `makeSession` picks one.
protocol TrainingSession {
    var run: any TrainingRun { get }
    /// Parameters of the model being trained (for the start line).
    var parameterCount: Int { get }
    /// Tokens one step consumes, over all heads or replicas.
    var tokensPerStep: Int { get }
    /// Restores weights, optimizer state, counters and data position, so the next step is the one the
    /// original run would have taken; returns the saved state.
    func resume(from checkpoint: Checkpoint) throws -> TrainerState
    func save(to url: URL, state: TrainerState) throws
    /// The model the run produces (the merged model for the replicated modes).
    var finalModel: Transformer { get }
}

func makeSession(mode: TrainingMode, setup: TrainingSetup) throws -> any TrainingSession {
    switch mode {
    case .full: return try FullRankSession(setup)
    case .lte, .lora, .loraMerge, .fedavg: return try ReplicaSession(mode: mode, setup)
    }
}

/// Full-rank training of one model on one stream of batches (the baseline).
final class FullRankSession: TrainingSession {
    let model: Transformer
    let trainer: Trainer<BatchSampler>
    let tokenizer: any Tokenizer

    init(_ setup: TrainingSetup) throws {
        let m = setup.config.model, t = setup.config.training
        model = try Transformer(config: m)
        model.initialize(seed: t.seed)
        let sampler = try BatchSampler.forHead(0, of: 1, train: setup.dataset.train, batchSize: t.batchSize,
                                               contextLength: m.contextLength, seed: t.seed)
        let validation = try EvaluationBatches(tokens: setup.dataset.val, batches: max(1, t.evalIterations), batchSize: t.batchSize,
                                               contextLength: m.contextLength, seed: t.seed)
        trainer = Trainer(model: model, config: t, source: sampler, validation: { validation.source() })
        tokenizer = setup.dataset.tokenizer
    }

    var run: any TrainingRun { trainer }
    var finalModel: Transformer { model }
    var parameterCount: Int { model.layout.count }
    var tokensPerStep: Int { trainer.source.batchSize * trainer.source.contextLength }

    func resume(from checkpoint: Checkpoint) throws -> TrainerState {
        guard checkpoint.isResumable else {
            throw LTEError("checkpoint \(checkpoint.url.path) holds weights only (no \(Checkpoint.optimizerFile) or \(Checkpoint.stateFile)) and cannot be resumed")
        }
        try checkpoint.load(into: model)
        try checkpoint.loadOptimizer(into: trainer.optimizer, for: model)
        let state = try checkpoint.trainerState()
        guard trainer.optimizer.step == state.step else {
            throw LTEError("checkpoint \(checkpoint.url.path) is inconsistent: the optimizer took \(trainer.optimizer.step) steps, \(Checkpoint.stateFile) says \(state.step)")
        }
        trainer.source.skip(batches: state.step)
        trainer.tokensSeen = state.tokens
        return state
    }

    func save(to url: URL, state: TrainerState) throws {
        try Checkpoint.save(model: model, optimizer: trainer.optimizer, state: state, tokenizer: tokenizer, to: url)
    }
}

/// The replicated modes (lte, lora, lora-merge, fedavg), all heads in this process. The checkpoint
/// holds the model the run produces and, for resuming, the whole run: every head's factors,
/// correction and AdamWs, every replica, the main weights and a round in flight (`ReplicaRunState`).
final class ReplicaSession: TrainingSession {
    let mode: TrainingMode
    let trainer: ReplicaTrainer<BatchSampler>
    let tokenizer: any Tokenizer

    init(mode: TrainingMode, _ setup: TrainingSetup) throws {
        let m = setup.config.model, t = setup.config.training, lora = setup.config.lte
        let heads = mode.replicaCount(heads: lora.heads)
        let train = setup.dataset.train
        let validation = try EvaluationBatches(tokens: setup.dataset.val, batches: max(1, t.evalIterations), batchSize: t.batchSize,
                                               contextLength: m.contextLength, seed: t.seed)
        self.mode = mode
        trainer = try ReplicaTrainer(mode: mode, model: m, config: t, lora: lora,
                                     makeSource: { try BatchSampler.forHead($0, of: heads, train: train, batchSize: t.batchSize, contextLength: m.contextLength, seed: t.seed) },
                                     validation: { validation.source() })
        tokenizer = setup.dataset.tokenizer
    }

    var run: any TrainingRun { trainer }
    var finalModel: Transformer { trainer.syncEvery == nil ? trainer.replicas[0].model : trainer.main.model }
    var parameterCount: Int { trainer.main.model.layout.count }
    var tokensPerStep: Int { trainer.replicas.reduce(0) { $0 + $1.tokensPerStep } }

    func resume(from checkpoint: Checkpoint) throws -> TrainerState {
        guard checkpoint.holdsReplicas else {
            throw LTEError("checkpoint \(checkpoint.url.path) holds the trained model only (no \(Checkpoint.replicasFile): written by an lte older than resumable --mode \(mode.rawValue) runs), so this run cannot continue; pass --overwrite to start it again")
        }
        let state = try checkpoint.trainerState()
        try trainer.restore(try checkpoint.replicaState(), source: "checkpoint \(checkpoint.url.path) (\(Checkpoint.replicasFile))")
        // Each replica draws one batch per step from its own shard.
        for r in trainer.replicas { r.source.skip(batches: state.step) }
        return state
    }

    func save(to url: URL, state: TrainerState) throws {
        try Checkpoint.save(model: finalModel, state: state, tokenizer: tokenizer, replicas: trainer.runState(), to: url)
    }
}

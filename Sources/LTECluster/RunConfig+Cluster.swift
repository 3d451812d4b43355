import Crypto
import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTEStore
import LTETraining

/// The run config as the cluster uses it: the server sends it to every worker at the handshake
/// (`encoded()`), and workers build their heads from it, so a worker never trains with settings
/// the server does not merge with.
extension RunConfig {
    /// Heads in the whole run, over all workers (lte.heads).
    public var totalHeads: Int { lte.heads }
    public var mergeEvery: Int { lte.mergeEvery }

    /// Whether workers hold the float32 frozen weights and merge them (f32), or hold them quantized
    /// only (`lte.frozen_weights`) and take the server's requantized layers instead of a delta they
    /// could not apply.
    var workersHoldFrozenMaster: Bool { lte.frozenWeights == .f32 }

    /// The config a server's welcome carries.
    static func fromServer(_ data: Data) throws -> RunConfig {
        try decode(data, source: "the run config the server sent", derivingDefaults: false)
    }

    /// SHA-256 of what decides the bits of a run (model, training, lte, heads): a worker started
    /// with its own config refuses a server whose fingerprint differs, before any work is done.
    public var fingerprint: Data {
        var d = self
        d.rounds = nil
        d.training.iterations = 0
        d.training.threads = 1
        return (try? d.encoded()).map { Data(SHA256.hash(data: $0)) } ?? Data(count: 32)
    }
}

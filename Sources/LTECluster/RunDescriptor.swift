import Crypto
import Foundation
import LTEBase
import LTEModel
import LTENumerics
import LTEStore
import LTETraining

/// What a server tells every worker about the run at the handshake: the model, the optimisation
/// and LTE settings, the number of heads and rounds. Workers build their heads from this, so a
/// worker never trains with settings the server does not merge with.
public struct RunDescriptor: Codable, Equatable, Sendable {
    public var model: ModelConfig
    public var training: TrainingConfig
    public var lte: LoRAConfig
    public var totalHeads: Int
    /// Rounds to run; nil runs until stopped.
    public var rounds: Int?

    public init(model: ModelConfig, training: TrainingConfig, lte: LoRAConfig, totalHeads: Int, rounds: Int?) {
        self.model = model; self.training = training; self.lte = lte; self.totalHeads = totalHeads; self.rounds = rounds
    }

    enum CodingKeys: String, CodingKey {
        case model, training, lte, totalHeads = "total_heads", rounds
    }

    public var mergeEvery: Int { lte.mergeEvery }

    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return try e.encode(self)
    }

    public static func decode(_ data: Data) throws -> RunDescriptor {
        do { return try JSONDecoder().decode(RunDescriptor.self, from: data) } catch {
            throw LTEError("the server sent a run description this worker cannot read: \(error)")
        }
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


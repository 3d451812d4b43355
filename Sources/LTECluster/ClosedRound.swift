import LTEBase
import LTENumerics
import LTEStore

/// What the server knows of a round once it has merged it: what the committer writes to the
/// history and the observers (rounds.jsonl) report.
public struct ClosedRound {
    /// The merge's number: round k is the k-th merge (round 0 is the initial weights).
    public let round: Int
    public let heads: [Int]
    /// Worker name → the heads it contributed.
    public let workers: [String: [Int]]
    public let losses: [Int: Float]
    /// Tokens seen by all heads since the run began, this round included.
    public let tokens: Int
    public let learningRate: Float
    public let weightsHash: WeightsDigest
    public let mergeSeconds: Double
    public let roundSeconds: Double
    public let bytesIn: Int
    /// Each merged head's factors (adapter modes): the dequantized values pushed, as merged.
    public let factors: [Int: FloatBuffer]
    /// Heads pushed for the round but left out of its merge, and why (ascending head id).
    public var excluded: [RoundRecord.Exclusion] = []
    /// The longest local training of the round's workers, and the longest wait they reported for
    /// the round before (a wait is known only once its answer is applied, so it comes with the
    /// next push): the round as the workers lived it (DESIGN.md §8).
    public var workerTrainSeconds: Double = 0
    public var workerWaitSeconds: Double = 0
    /// Membership events since the last round (heads handed over, taken, freed, and why), for round.json.
    public var notes: [String: String] = [:]

    /// The mean of the merged heads' losses.
    public var meanLoss: Double {
        heads.map { Double(losses[$0]!) }.reduce(0, +) / Double(max(1, heads.count))
    }
}

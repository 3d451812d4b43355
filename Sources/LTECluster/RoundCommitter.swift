import LTENumerics

/// Where a server's rounds are made durable (DESIGN.md §5: "commits are durable before the answer
/// goes out"). `ServerCore` is given one at init and commits every round it closes before it
/// answers any worker. `HistoryRecorder` is the one the server uses: the run's git history.
public protocol RoundCommitter: AnyObject {
    /// Where the committed rounds stand: what a server started on them resumes from.
    var committedHead: CommittedHead { get }
    /// Writes `round` (the server's weights are already merged) durably; returns its commit id.
    /// Called with the server's lock held, so rounds are committed one at a time, in order.
    func commit(_ round: ClosedRound) throws -> String
}

/// The last committed round: a server resumes from here (round 0 and the root commit for a new run).
public struct CommittedHead {
    public let round: Int
    public let commit: String
    /// Each head's newest factors (a pending push if it has one, else its last merged), so a worker
    /// that rejoins resumes its heads rather than restarting them.
    public let latestFactors: [Int: FloatBuffer]
    /// Tokens seen by all heads up to this round.
    public let tokens: Int

    public init(round: Int, commit: String, latestFactors: [Int: FloatBuffer], tokens: Int) {
        self.round = round; self.commit = commit; self.latestFactors = latestFactors; self.tokens = tokens
    }
}

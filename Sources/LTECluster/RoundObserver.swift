/// Something that reports on a server's rounds without taking part in them (rounds.jsonl, progress).
/// `ServerCore` calls its observers in the order it was given them, with its lock held, so they must
/// return quickly and must not call back into the server.
public protocol RoundObserver: AnyObject {
    /// `round` is merged and committed as `commit`; its workers are about to be answered.
    func roundClosed(_ round: ClosedRound, commit: String)
    /// Every worker waiting on `round` has been answered (or the answer failed): `bytesOut` sent in
    /// all, `syncSeconds` from the merge's end to the last answer.
    func roundAnswered(_ round: Int, bytesOut: Int, syncSeconds: Double)
}

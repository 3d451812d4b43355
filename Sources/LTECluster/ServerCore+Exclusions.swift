import Foundation
import LTEBase
import LTENet
import LTEStore
import LTETraining

/// Heads left out of a round's merge (`HeadUpdateScreen`), and the answers their pushes get.
extension ServerCore {
    /// The answer to a push none of whose heads is in the round any more because each was left out
    /// of the merge (already logged when it was), or nil.
    func excludedAnswer(_ p: PushMessage, _ exclusions: [Int: RoundRecord.Exclusion]) -> WireMessage? {
        guard p.headIds.allSatisfy({ open[$0]?.worker != p.workerId }), let first = p.headIds.first(where: { exclusions[$0] != nil }) else { return nil }
        return .error(ErrorMessage(code: .outOfBounds, message: "push from \(p.workerId) for round \(p.round): head \(first) was left out of the merge: \(exclusions[first]!.reason)"))
    }

    /// Leaves out of the open round the heads `HeadUpdateScreen` refuses to merge (lock held): each
    /// is logged and kept with its reason for the round's record; its factors stop being the latest.
    func excludeOutliers() {
        let verdict = screen.screen(open.keys.sorted().map { h in HeadUpdateScreen.Candidate(head: h, factors: open[h]!.factors?.values, replicated: open[h]!.replicated) })
        for (head, reason) in verdict.excluded {
            let p = open.removeValue(forKey: head)!
            latestFactors[head] = p.replacedLatest
            tokensIn -= validation.tokensPerRound(heads: 1)
            openExclusions[head] = RoundRecord.Exclusion(head: head, worker: p.worker, reason: reason)
            log("refused: head \(head) from worker \(p.worker) left out of round \(openRound): \(reason)")
        }
    }

}

import Foundation
import LTEBase
import LTENet
import LTEStore
import LTETraining

/// Open membership on the server's side: clean leaves and expired leases (the bindings, handovers
/// and leases themselves are `Membership`'s).
extension ServerCore {
    /// A clean leave: the worker's heads' whole state is kept for the next worker to take them.
    func leave(_ l: LeaveMessage) -> WireMessage {
        let states: [Int: HeadTrainingState]
        do throws(MessageValidation.Refusal) { states = try validation.checkLeave(l) } catch { return refuse(error.code, error.message) }
        if let refused = admit("leave from \(l.workerId)", worker: l.workerId, round: l.round, nonce: l.nonce) { return refused }
        lock.lock(); defer { lock.unlock() }
        sweepMembership()
        do throws(MessageValidation.Refusal) { try membership.leave(worker: l.workerId, states: states, round: l.round) } catch {
            return refuse(error.code, error.message)
        }
        // Under overlap the state comes after the merge the worker had in flight, which its successor
        // then trains from a round early: the leave keeps the moments but not the bits.
        log("worker \(l.workerId) left at round \(l.round), handing over heads \(l.headIds)"
            + (descriptor.lte.overlap ? " (lte.overlap: their next worker starts a round ahead of the merge, so the run is not bit-identical to one without this leave)" : ""))
        lock.broadcast()
        return status()
    }

    /// Frees the heads of vanished or revoked workers (lock held); a worker whose push waits on the
    /// open round is alive however long the round takes.
    func sweepMembership() {
        let freed = membership.expire { name in self.open.values.contains { $0.worker == name } }
        if !freed.isEmpty { log("heads \(freed) freed: their worker vanished or was revoked") }
    }

    /// Whether the heads a run starts with have all been held at once (`Options.awaitHeads`; lock
    /// held). Until then a round closes only when every head is in, or at its quorum and timeout.
    func awaitedHeadsJoined() -> Bool {
        if !awaitedHeadsHeld && membership.heldCount >= options.awaitHeads { awaitedHeadsHeld = true }
        return awaitedHeadsHeld
    }

}

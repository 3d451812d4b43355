import Foundation
import LTEBase
import LTENet
import LTETraining

/// The worker's side of open membership: asking for heads (`--heads auto`) and leaving cleanly.
extension WorkerCore {
    /// Says hello for this worker's heads — or, with none yet and `maxHeads`, for free ones — and
    /// keeps asking for `waitForHeads` while the server has none free.
    func askForHeads(over exchange: Exchange) throws -> WireMessage {
        let deadline = ContinuousClock.now + waitForHeads
        while true {
            let reply = try exchange {
                .hello(HelloMessage(workerId: id, headIds: heads, configFingerprint: fingerprint ?? Data(count: 32), nonce: ReplayGuard.freshNonce(),
                                    maxHeads: heads.isEmpty ? maxHeads : 0))
            }
            if case .error(let e) = reply, e.code == .noFreeHead, ContinuousClock.now < deadline {
                Thread.sleep(forTimeInterval: 1)
                continue
            }
            return reply
        }
    }

    /// Leaves the run cleanly: hands every head's factors and optimizer moments, as they are after
    /// the round this worker holds, to the server, which gives them to the next worker to take the heads.
    public func leave(over exchange: Exchange) throws {
        guard let s = session else { return }
        var tensors: [WireTensor] = []
        var steps: [Int] = []
        for r in s.replicas {
            if let state = r.trainingState() {
                tensors += HeadStateNames.tensors(head: r.id, state)
                steps.append(state.optimizerStep)
            } else {
                steps.append(0)
            }
        }
        let reply = try exchange {
            .leave(LeaveMessage(workerId: id, round: s.main.round, headIds: heads, optimizerSteps: steps, nonce: ReplayGuard.freshNonce(),
                                tensors: tensors))
        }
        switch reply {
        case .status:
            log("worker \(id): left at round \(s.main.round), heads \(heads) handed over with their optimizer state"
                + (s.descriptor.lte.overlap ? " (lte.overlap: not bit-identical to a run without this leave)" : ""))
        case .error(let e):
            throw LTEError("the server refused the leave of worker \(id): \(e.message)")
        default:
            throw LTEError("the server answered a leave with \(reply.type)")
        }
    }

    /// Each head's whole training state, in `heads` order (adapter modes, once joined).
    public var headStates: [HeadTrainingState] { session?.replicas.compactMap { $0.trainingState() } ?? [] }
}

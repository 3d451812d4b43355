import Foundation
@testable import LTECluster
import LTEModel
import LTENet
import LTENumerics
import LTEStore
import LTETraining
import XCTest

/// A `ServerCore` on a real merge history in a temporary directory, driven by calling its handler
/// directly — the same entry point the network threads use — for a tiny model with two heads.
/// Honest pushes are made here: finite factors and replicated tensors of the run's exact shapes,
/// tagged with the round and base commit the server expects.
final class ServerHarness {
    static let model = ModelConfig(vocabSize: 32, dim: 16, layers: 2, heads: 2, ffnDim: 24, contextLength: 8)

    let dir: URL
    let core: ServerCore
    let recorder: HistoryRecorder
    let descriptor: RunConfig
    private let logLock = NSLock()
    private var logLines: [String] = []
    private var rng = SeededGenerator(seed: 11)

    private let ownsDirectory: Bool

    /// A new run in a temporary directory, or, with `restarting`, a server started again on that
    /// harness's run (which keeps owning the directory).
    /// `lte` adjusts the run's LTE settings (push format, overlap); `tuning` the server's options.
    init(quorum: Int, roundTimeout: Duration, rounds: Int? = nil, restarting previous: ServerHarness? = nil,
         leaseTimeout: Duration = .seconds(120), identities: (any IdentityVerifier)? = nil,
         lte adjust: (inout LoRAConfig) -> Void = { _ in }, tuning: (inout ServerCore.Options) -> Void = { _ in }) throws {
        ownsDirectory = previous == nil
        dir = previous?.dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("lte-server-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var training = TrainingConfig()
        training.batchSize = 2
        var lora = LoRAConfig()
        lora.heads = 2
        lora.rank = 2
        lora.alpha = 4
        lora.mergeEvery = 5
        adjust(&lora)
        training.seed = 1
        descriptor = RunConfig(model: Self.model, training: training, lte: lora, rounds: rounds)
        let main = try MainWeights(model: Self.model, lora: lora, totalHeads: 2, seed: training.seed)
        recorder = try HistoryRecorder.open(run: dir, main: main, descriptor: descriptor, configJSON: try descriptor.encoded(), tokenizer: nil,
                                            snapshotEvery: 10, say: { _ in })
        var options = ServerCore.Options(quorum: quorum, roundTimeout: roundTimeout, leaseTimeout: leaseTimeout, identities: identities)
        tuning(&options)
        core = ServerCore(descriptor: descriptor, options: options, main: main, runId: "test", committer: recorder)
        core.log = { [weak self] line in self?.appendLog(line) }
    }

    deinit { if ownsDirectory { try? FileManager.default.removeItem(at: dir) } }

    private func appendLog(_ line: String) { logLock.lock(); logLines.append(line); logLock.unlock() }
    var log: [String] { logLock.lock(); defer { logLock.unlock() }; return logLines }
    var history: MergeHistory { recorder.history }

    /// The base commit pushes for the open round must name.
    var base: String { core.headCommit }

    /// Tokens an honest worker reports for `heads` heads over one round.
    func tokens(heads: Int) -> Int { heads * descriptor.training.batchSize * Self.model.contextLength * descriptor.mergeEvery }

    /// A push an honest worker could send for the open round (the one after the server's), unless
    /// `round` says otherwise: small random factors, the main model's replicated tensors.
    func honestPush(worker: String, heads: [Int], round: Int? = nil, base: String? = nil) -> PushMessage {
        let factorCount = core.main.layout!.count
        var tensors: [WireTensor] = []
        let replicated = core.main.packReplicated(core.main.model.params.pointer).array
        for h in heads {
            let f = (0..<factorCount).map { _ in Float(rng.nextInt(below: 2001) - 1000) * 1e-5 }
            tensors.append(WireTensor(name: "factors.\(h)", shape: [factorCount], values: f))
            tensors.append(WireTensor(name: "replicated.\(h)", shape: [replicated.count], values: replicated))
        }
        return PushMessage(workerId: worker, round: round ?? core.round + 1, baseCommit: base ?? self.base, headIds: heads,
                           headLosses: heads.map { _ in 3.25 }, tokens: tokens(heads: heads.count),
                           nonce: ReplayGuard.freshNonce(), tensors: tensors)
    }

    /// Hands `message` to the server on a thread of its own (a push blocks until its round closes);
    /// `wait` then returns the answer, or nil if none came within the time given.
    func send(_ message: WireMessage, frameBytes: Int = 1000) -> Pending {
        let pending = Pending()
        let t = Thread { [core] in pending.finish(core.handle(message, frameBytes: frameBytes)) }
        t.start()
        return pending
    }

    /// Sends and waits: for messages that must be answered at once (refusals, hellos, status).
    func call(_ message: WireMessage, within seconds: Double = 10) -> WireMessage? {
        send(message).wait(seconds: seconds)
    }

    /// Both heads push for the open round; returns the round's result as each pusher saw it.
    @discardableResult
    func honestRound(file: StaticString = #filePath, line: UInt = #line) -> RoundResultMessage? {
        let a = send(.push(honestPush(worker: "a", heads: [0])))
        let b = send(.push(honestPush(worker: "b", heads: [1])))
        guard case .roundResult(let ra)? = a.wait(seconds: 30), case .roundResult(let rb)? = b.wait(seconds: 30) else {
            XCTFail("an honest round did not close:\n\(log.suffix(5).joined(separator: "\n"))", file: file, line: line)
            return nil
        }
        // Each is answered without its own head's factors (it holds the bytes it pushed): the rest is one round.
        XCTAssertEqual(Self.withoutFactors(ra), Self.withoutFactors(rb), file: file, line: line)
        XCTAssertFalse(ra.tensors.has("factors.0") || rb.tensors.has("factors.1"), "a pusher got its own factors back", file: file, line: line)
        return ra
    }

    /// A round result without any head's factors: what every pusher of the round is sent alike.
    static func withoutFactors(_ r: RoundResultMessage) -> RoundResultMessage {
        var r = r
        r.tensors.removeAll { $0.name.hasPrefix("factors.") }
        return r
    }

    /// Every file under the history directory with its size: any object or ref written shows here.
    func historyFiles() -> [String: Int] {
        var out: [String: Int] = [:]
        let root = MergeHistory.location(inRun: dir)
        guard let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.fileSizeKey]) else { return out }
        for case let url as URL in e {
            let size = (try? url.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? -1
            out[String(url.path.dropFirst(root.path.count))] = size
        }
        return out
    }

    /// Rounds on `main`, newest first, and the heads each merged.
    func rounds() throws -> [(round: Int, heads: [Int], tokens: Int)] {
        try history.log().map { ($0.round, $0.heads, $0.tokens) }
    }
}

/// The answer to a message handed to the server on another thread.
final class Pending: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var reply: WireMessage?

    func finish(_ reply: WireMessage) { self.reply = reply; done.signal() }

    func wait(seconds: Double) -> WireMessage? {
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        done.signal()   // later waits return at once
        return reply
    }
}

/// The refusal code of an answer, or nil when it is not a refusal.
func refusalCode(_ reply: WireMessage?) -> ErrorCode? {
    if case .error(let e)? = reply { return e.code }
    return nil
}

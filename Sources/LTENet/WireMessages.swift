import Foundation
import LTEBase

/// The message type number in the frame header. Numbers are part of the wire format: never reuse one.
public enum MessageType: UInt16, CaseIterable, Sendable {
    case hello = 1
    case welcome = 2
    case push = 3
    case roundResult = 4
    case statusRequest = 5
    case status = 6
    case error = 7
    // Open membership (wire version 3): a worker that leaves cleanly hands its heads' state back.
    case leave = 8
}

/// Every message of the LTE protocol (DESIGN.md §4). Workers send `hello`, `push` and
/// `statusRequest`; the server answers `welcome`, `roundResult`, `status` or `error`.
///
/// Rounds, everywhere in the protocol and the cluster: **round k is the k-th merge**, as in the
/// history and rounds.jsonl; round 0 is the initial weights (the history's root commit). A node "at
/// round k" holds the weights after merge k and the commit of round k; its heads train from there and
/// push *for* round k + 1, the merge they join. So `WelcomeMessage.round` and `StatusMessage.round`
/// are the last merged round, `PushMessage.round` the round being pushed for, and
/// `RoundResultMessage.round` the round its merge made.
public enum WireMessage: Equatable, Sendable {
    case hello(HelloMessage)
    case welcome(WelcomeMessage)
    case push(PushMessage)
    case roundResult(RoundResultMessage)
    case statusRequest
    case status(StatusMessage)
    case error(ErrorMessage)
    case leave(LeaveMessage)

    public var type: MessageType {
        switch self {
        case .hello: .hello
        case .welcome: .welcome
        case .push: .push
        case .roundResult: .roundResult
        case .statusRequest: .statusRequest
        case .status: .status
        case .error: .error
        case .leave: .leave
        }
    }
}

/// A worker introduces itself: which heads it owns and which config it was started with, so the
/// server can refuse a worker whose config differs before it trains on the wrong model.
public struct HelloMessage: Equatable, Sendable {
    public var workerId: String
    public var headIds: [Int]
    /// SHA-256 of the run config as the worker sees it (32 bytes).
    public var configFingerprint: Data
    /// Random per message; with the MAC it lets the server refuse a replayed hello.
    public var nonce: UInt64
    /// When it was sent, in milliseconds since 1970 (under the MAC): a hello names no round, so the
    /// server refuses one older than its freshness window (`FreshnessGuard`) however it was captured.
    public var sentAt: UInt64
    // --- open membership ---
    /// With no `headIds`: how many free heads the server may hand this worker (`--heads auto`).
    /// 0 with `headIds`: exactly those heads.
    public var maxHeads: Int
    /// Ed25519 signature by the worker's identity key (`MessageSignature`); empty without one.
    public var signature: Data

    public init(workerId: String, headIds: [Int], configFingerprint: Data, nonce: UInt64,
                sentAt: UInt64 = FreshnessGuard.nowMilliseconds(), maxHeads: Int = 0, signature: Data = Data()) {
        self.workerId = workerId
        self.headIds = headIds
        self.configFingerprint = configFingerprint
        self.nonce = nonce
        self.sentAt = sentAt
        self.maxHeads = maxHeads
        self.signature = signature
    }
}

/// The server's answer to `hello`: everything a worker needs to start training from the current
/// state — the main weights and its own heads' factors (so a restarted worker resumes, not restarts).
public struct WelcomeMessage: Equatable, Sendable {
    public var runId: String
    /// The last merged round: the weights sent are those after it.
    public var round: Int
    /// That round's commit (the root commit at round 0): the base of the worker's next push.
    public var baseCommit: String
    public var configJSON: Data
    public var tensors: [WireTensor]
    // --- open membership (wire version 3) ---
    /// The heads the worker now holds (those it asked for, or those the server handed it).
    public var headIds: [Int]
    /// Parallel to `headIds`: the AdamW step count of a head handed over cleanly, whose moments are
    /// in `tensors` (LTECluster's `HeadStateNames`); 0 for a head that starts its optimizer afresh.
    public var optimizerSteps: [Int]
    // --- frozen weights held quantized (wire version 6) ---
    /// The hash of the frozen weights quantized in `lte.frozen_weights` (LTEStore's
    /// `WeightsHash.sha256(frozen:)`), which a worker checks after quantizing the weights it was
    /// sent; nil when the run's frozen weights are float32.
    public var frozenHash: WeightsDigest?

    public init(runId: String, round: Int, baseCommit: String, configJSON: Data, tensors: [WireTensor],
                headIds: [Int] = [], optimizerSteps: [Int] = [], frozenHash: WeightsDigest? = nil) {
        self.frozenHash = frozenHash
        self.runId = runId
        self.round = round
        self.baseCommit = baseCommit
        self.configJSON = configJSON
        self.tensors = tensors
        self.headIds = headIds
        self.optimizerSteps = optimizerSteps.isEmpty ? headIds.map { _ in 0 } : optimizerSteps
    }
}

/// A worker's contribution to one round: its heads' (A, B) factors and replicated parameters,
/// tagged with the commit it trained from. Idempotent on (worker, head, round) at the server.
public struct PushMessage: Equatable, Sendable {
    public var workerId: String
    /// The round this push is for: the merge it joins. Its heads trained from the round before it,
    /// whose commit is `baseCommit`.
    public var round: Int
    /// The commit of the round the heads trained from (the server's head when the push was made).
    public var baseCommit: String
    public var headIds: [Int]
    /// Mean train loss of each head over the round, parallel to `headIds`.
    public var headLosses: [Float]
    /// Tokens seen by these heads during the round.
    public var tokens: Int
    public var nonce: UInt64
    /// How the worker lived its rounds (DESIGN.md §8, "measure on the worker's side"): this round's
    /// local training, and its wait for the previous round's merge — from the moment it had both
    /// pushed and finished training to the answer applied — which is known only now.
    public var trainMicroseconds: Int
    public var previousWaitMicroseconds: Int
    public var tensors: [WireTensor]
    /// Ed25519 signature by the worker's identity key (wire version 3); empty without one.
    public var signature: Data

    public init(workerId: String, round: Int, baseCommit: String, headIds: [Int], headLosses: [Float],
                tokens: Int, nonce: UInt64, trainMicroseconds: Int = 0, previousWaitMicroseconds: Int = 0, tensors: [WireTensor],
                signature: Data = Data()) {
        self.workerId = workerId
        self.round = round
        self.baseCommit = baseCommit
        self.headIds = headIds
        self.headLosses = headLosses
        self.tokens = tokens
        self.nonce = nonce
        self.trainMicroseconds = trainMicroseconds
        self.previousWaitMicroseconds = previousWaitMicroseconds
        self.tensors = tensors
        self.signature = signature
    }

    /// Refuses NaN/Inf losses or tensor values: one diverged head must not poison the merge.
    public func validateFinite() throws {
        for (head, loss) in zip(headIds, headLosses) where !loss.isFinite {
            throw WireError(.nonFinite, "push from '\(workerId)': head \(head) loss is \(loss)")
        }
        try tensors.validateFinite()
    }
}

/// How a round closed: the new main commit, the hash of the new weights, and the merged low-rank
/// delta every worker applies with the same code to reach the same bits (DESIGN.md §4).
public struct RoundResultMessage: Equatable, Sendable {
    /// The round this merge made (the push's `round`).
    public var round: Int
    public var commitId: String
    /// SHA-256 of the new main weights (DESIGN.md §2, "weights hash").
    public var weightsHash: WeightsDigest
    public var headsMerged: [Int]
    public var tensors: [WireTensor]
    /// The hash of the frozen weights after the merge, quantized in `lte.frozen_weights` (wire
    /// version 6), which a worker holding them quantized checks; nil when they are float32.
    public var frozenHash: WeightsDigest?

    public init(round: Int, commitId: String, weightsHash: WeightsDigest, headsMerged: [Int], tensors: [WireTensor],
                frozenHash: WeightsDigest? = nil) {
        self.frozenHash = frozenHash
        self.round = round
        self.commitId = commitId
        self.weightsHash = weightsHash
        self.headsMerged = headsMerged
        self.tensors = tensors
    }
}

/// What `lte` shows about a running server: the open round, who is in, who is missing.
public struct StatusMessage: Equatable, Sendable {
    /// The last merged round; the heads in are pushing for the next one.
    public var round: Int
    public var headsIn: [Int]
    /// Loss reported by each head in `headsIn`, parallel to it.
    public var lossesIn: [Float]
    public var headsMissing: [Int]
    /// Free-form extras (commit id, quorum, uptime…); encoded sorted by key, so it is canonical.
    public var fields: [String: String]

    public init(round: Int, headsIn: [Int], lossesIn: [Float], headsMissing: [Int], fields: [String: String] = [:]) {
        self.round = round
        self.headsIn = headsIn
        self.lossesIn = lossesIn
        self.headsMissing = headsMissing
        self.fields = fields
    }
}

/// A worker leaving cleanly (SIGTERM, Ctrl-C, its `--rounds` done) hands its heads back with their
/// whole training state — factors and both AdamW moments (LTECluster's `HeadStateNames`) — at the round it holds,
/// so the next worker to take them continues them bit for bit. The server answers `status`.
public struct LeaveMessage: Equatable, Sendable {
    public var workerId: String
    /// The round the worker is at: its heads' state is the one after that merge.
    public var round: Int
    public var headIds: [Int]
    /// Each head's AdamW step count, parallel to `headIds`.
    public var optimizerSteps: [Int]
    public var nonce: UInt64
    public var tensors: [WireTensor]
    public var signature: Data

    public init(workerId: String, round: Int, headIds: [Int], optimizerSteps: [Int], nonce: UInt64, tensors: [WireTensor],
                signature: Data = Data()) {
        self.workerId = workerId
        self.round = round
        self.headIds = headIds
        self.optimizerSteps = optimizerSteps
        self.nonce = nonce
        self.tensors = tensors
        self.signature = signature
    }
}

/// A refusal the peer can act on: a code for programs, a one-line message for people.
public struct ErrorMessage: Equatable, Sendable {
    public var code: ErrorCode
    public var message: String

    /// `message` is clamped to `WireText.maxErrorBytes`: a refusal must always fit in a frame.
    public init(code: ErrorCode, message: String) {
        self.code = code
        self.message = WireText.quote(message, maxBytes: WireText.maxErrorBytes)
    }
}

/// Error codes. A struct, not an enum, so a code from a newer peer still decodes.
public struct ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let malformed = ErrorCode(rawValue: 1)        // frame or body failed to decode
    public static let unauthorized = ErrorCode(rawValue: 2)     // bad MAC, replay, unknown worker
    public static let staleRound = ErrorCode(rawValue: 3)       // push for a round already closed
    public static let unknownHead = ErrorCode(rawValue: 4)      // head id not in the run
    public static let nonFinite = ErrorCode(rawValue: 5)        // NaN/Inf in losses or tensors
    public static let tooLarge = ErrorCode(rawValue: 6)
    public static let configMismatch = ErrorCode(rawValue: 7)   // hello's fingerprint differs
    public static let wrongShape = ErrorCode(rawValue: 8)       // tensor names/shapes not the run's
    public static let unexpected = ErrorCode(rawValue: 9)       // message type not valid here
    public static let internalError = ErrorCode(rawValue: 10)
    public static let runFinished = ErrorCode(rawValue: 11)     // the run's last round is merged: nothing left to push for
    public static let outOfBounds = ErrorCode(rawValue: 12)     // finite values beyond what the run's model allows
    public static let noFreeHead = ErrorCode(rawValue: 13)      // `--heads auto`: every head is held by a worker

    public var description: String {
        switch self {
        case .malformed: "malformed"
        case .unauthorized: "unauthorized"
        case .staleRound: "stale round"
        case .unknownHead: "unknown head"
        case .nonFinite: "non-finite"
        case .tooLarge: "too large"
        case .configMismatch: "config mismatch"
        case .wrongShape: "wrong shape"
        case .unexpected: "unexpected message"
        case .internalError: "internal error"
        case .runFinished: "run finished"
        case .outOfBounds: "out of bounds"
        case .noFreeHead: "no free head"
        default: "error \(rawValue)"
        }
    }
}

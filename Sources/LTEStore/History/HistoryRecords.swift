import Foundation
import LTEBase
import LTEModel
import LTENumerics

/// `history.json`, in every commit of a line: what replay needs to know about the run that never
/// changes (the model's shape, the adapters' shape, the number of heads), so a history replays on its
/// own, without the run's config file or the code that wrote it.
public struct HistoryManifest: Codable, Equatable, Sendable {
    public var format = 1
    public var model: ModelConfig
    /// nil: a run without adapters (FedAvg), whose rounds average every tensor.
    public var lora: LoRAConfig?
    /// N in the merge's s/N: the run's total head count, not the number present in a round.
    public var totalHeads: Int

    enum CodingKeys: String, CodingKey { case format, model, lora, totalHeads = "total_heads" }
}

/// What the parameter server knows about a round that the history cannot work out itself.
public struct RoundMetadata: Codable, Equatable, Sendable {
    public struct HeadLoss: Codable, Equatable, Sendable {
        public var head: Int
        /// Mean training loss of the head over its local steps this round.
        public var loss: Float
        public init(head: Int, loss: Float) { self.head = head; self.loss = loss }
    }

    /// Seconds spent in each phase of the round (any may be left out).
    public struct Timing: Codable, Equatable, Sendable {
        /// Unix time the round opened.
        public var started: Double?
        public var train: Double?
        public var wait: Double?
        public var merge: Double?
        public init(started: Double? = nil, train: Double? = nil, wait: Double? = nil, merge: Double? = nil) {
            self.started = started; self.train = train; self.wait = wait; self.merge = merge
        }
    }

    public var losses: [HeadLoss]
    /// Cumulative tokens seen by all heads after this round (DESIGN.md §2 accounting).
    public var tokens: Int
    public var learningRate: Float
    /// Bytes that crossed the network this round, both directions.
    public var bytes: Int?
    public var timing: Timing
    /// The order the heads were summed in by `LTEMerge.apply`; nil means ascending head id (what
    /// `MainWeights.merge` does). Replay sums in exactly this order, so it gets exactly these bits.
    public var headOrder: [Int]?
    public var notes: [String: String]
    /// Heads pushed for the round that the server left out of its merge, and why (nil: none).
    public var excluded: [RoundRecord.Exclusion]?

    public init(losses: [HeadLoss] = [], tokens: Int = 0, learningRate: Float = 0, bytes: Int? = nil,
                timing: Timing = Timing(), headOrder: [Int]? = nil, notes: [String: String] = [:],
                excluded: [RoundRecord.Exclusion]? = nil) {
        self.losses = losses; self.tokens = tokens; self.learningRate = learningRate; self.bytes = bytes
        self.timing = timing; self.headOrder = headOrder; self.notes = notes; self.excluded = excluded
    }

    enum CodingKeys: String, CodingKey {
        case losses, tokens, learningRate = "learning_rate", bytes, timing, headOrder = "head_order", notes, excluded
    }
}

/// `round.json`: one round as committed on a line (round 0 is the root).
public struct RoundRecord: Codable, Equatable, Sendable {
    public enum Rule: String, Codable, Sendable {
        case resetless, resetB = "reset-b"
        /// No adapters: the round only averages (FedAvg).
        case average
    }

    /// Everything `LTEMerge.apply` was called with besides the factors.
    public struct Merge: Codable, Equatable, Sendable {
        public var rule: Rule
        public var scale: Float
        /// `scale`'s exact bits: replay uses these, so no decimal round trip can change a bit.
        public var scaleBits: UInt32
        public var totalHeads: Int
        public var rank: Int
        /// `lte.outer` when it is not `none` (`OuterOptimizer`), with η and μ and their exact bits;
        /// all nil for the plain merge, so its rounds read and write as they always did.
        public var outer: LoRAConfig.OuterRule? = nil
        public var outerLearningRate: Float? = nil
        public var outerLearningRateBits: UInt32? = nil
        public var outerMomentum: Float? = nil
        public var outerMomentumBits: UInt32? = nil
        enum CodingKeys: String, CodingKey {
            case rule, scale, scaleBits = "scale_bits", totalHeads = "total_heads", rank
            case outer, outerLearningRate = "outer_learning_rate", outerLearningRateBits = "outer_learning_rate_bits"
            case outerMomentum = "outer_momentum", outerMomentumBits = "outer_momentum_bits"
        }
    }

    /// A head that was pushed for the round but left out of its merge (DESIGN.md §8: "the history
    /// records what was merged … excluded heads and why"). Replay needs none of it: the merged heads
    /// are `heads`; this says what the server refused to merge, e.g. an update far beyond the round's.
    public struct Exclusion: Codable, Equatable, Sendable {
        public var head: Int
        public var worker: String
        public var reason: String
        public init(head: Int, worker: String, reason: String) { self.head = head; self.worker = worker; self.reason = reason }
    }

    /// The frozen weights as a worker holding them quantized computes against (`lte.frozen_weights`):
    /// their format and `WeightsHash.sha256(frozen:)` over the weights after this round, quantized.
    public struct FrozenWeights: Codable, Equatable, Sendable {
        public var format: QuantizedFormat
        public var sha256: WeightsDigest
        public init(format: QuantizedFormat, sha256: WeightsDigest) { self.format = format; self.sha256 = sha256 }
    }

    /// A worker commit merged in this round.
    public struct Push: Codable, Equatable, Sendable {
        public var worker: String
        public var commit: String
        public var round: Int
        public var heads: [Int]
    }

    public var format = 1
    public var round: Int
    /// Heads merged, in summation order.
    public var heads: [Int]
    public var pushes: [Push]
    public var merge: Merge
    public var losses: [RoundMetadata.HeadLoss]
    public var tokens: Int
    public var learningRate: Float
    public var bytes: Int?
    public var timing: RoundMetadata.Timing
    public var notes: [String: String]
    /// `WeightsHash.sha256` of the weights after this round.
    public var weightsSHA256: WeightsDigest
    /// Whether this commit carries the full weights (`weights/model.safetensors`).
    public var snapshot: Bool
    /// Heads left out of this round's merge and why; absent (nil) when none were, so the rounds of
    /// histories written before this field read as they did and honest rounds' files are unchanged.
    public var excluded: [Exclusion]? = nil
    /// The second hash, over the quantized frozen weights; absent (nil) in runs whose frozen weights
    /// are float32 and in histories written before it, which read as they did.
    public var frozenWeights: FrozenWeights? = nil
    /// With `lte.outer nesterov`: SHA-256 of the outer optimizer's velocity m after this round
    /// (`MergeHistory.velocityHash`), which replay rebuilds along with the weights; nil otherwise.
    public var velocitySHA256: WeightsDigest? = nil

    public var meanLoss: Float? {
        losses.isEmpty ? nil : losses.reduce(0) { $0 + $1.loss } / Float(losses.count)
    }

    enum CodingKeys: String, CodingKey {
        case format, round, heads, pushes, merge, losses, tokens, learningRate = "learning_rate", bytes, timing, notes
        case weightsSHA256 = "weights_sha256", snapshot, excluded, frozenWeights = "frozen_weights"
        case velocitySHA256 = "outer_velocity_sha256"
    }
}

/// `push.json`: one worker push, on `refs/heads/workers/<worker>`.
public struct PushRecord: Codable, Equatable, Sendable {
    public var format = 1
    public var worker: String
    public var round: Int
    /// The main-line commit the worker trained from.
    public var base: String
    public var heads: [Int]
}

/// The history's JSON: sorted keys and indentation so files diff well in `git show`, non-finite
/// losses as strings rather than an encoding failure that would lose a round.
enum HistoryJSON {
    static func encode<T: Encodable>(_ value: T) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var data = try e.encode(value)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    static func decode<T: Decodable>(_ type: T.Type, from data: Data, source: String) throws -> T {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return try d.decode(type, from: data) } catch let error as DecodingError {
            func path(_ c: DecodingError.Context) -> String { c.codingPath.map(\.stringValue).joined(separator: ".") }
            switch error {
            case .keyNotFound(let key, let c): throw LTEError("\(source) is not valid: missing key \((c.codingPath + [key]).map(\.stringValue).joined(separator: "."))")
            case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
                throw LTEError("\(source) is not valid: bad value at \"\(path(c))\" (\(c.debugDescription))")
            @unknown default: throw LTEError("\(source) is not valid JSON")
            }
        }
    }
}

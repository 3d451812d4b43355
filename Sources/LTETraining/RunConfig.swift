import Foundation
import LTEBase
import LTEModel

/// A run's settings, in the one form every part of a run reads them: `lte train`, `lte server` and
/// `lte bench` load it from a JSON file, the server sends it to every worker, a checkpoint's
/// trainer_state.json and the merge history's root commit keep it. Its JSON has sections:
///
///     "model"     the decoder's shape, in Hugging Face `LlamaConfig` names (`ModelConfig`)
///     "training"  optimisation (`TrainingConfig`)
///     "lte"       the low-rank heads; lte.heads is the run's total number of heads (`LoRAConfig`)
///     "run"       {"rounds": N}: rounds a distributed run merges before it stops (absent: until stopped)
///
/// Absent keys take the defaults of their section's type (`ModelConfig.Defaults`, `TrainingConfig`'s
/// and `LoRAConfig`'s initial values); an absent model.vocab_size is taken from the data's tokenizer.
/// Unknown sections and keys are errors, not silently ignored: a typo in a hyperparameter should stop
/// the run. `decode` checks every value once; whoever holds a `RunConfig` may trust it.
public struct RunConfig: Codable, Equatable, Sendable {
    public var model: ModelConfig
    public var training: TrainingConfig
    public var lte: LoRAConfig
    /// Rounds a distributed run merges before it stops; nil runs until stopped. `lte train` ignores it.
    public var rounds: Int?

    public init(model: ModelConfig, training: TrainingConfig = TrainingConfig(), lte: LoRAConfig = LoRAConfig(), rounds: Int? = nil) {
        self.model = model; self.training = training; self.lte = lte; self.rounds = rounds
    }

    /// True while the config gives no model.vocab_size: whoever has the data sets it from the tokenizer.
    public var vocabFromData: Bool { model.vocabSize == ModelConfig.vocabularyFromData }

    // MARK: reading

    /// Reads the config file at `path`, applies `overrides` (`section.key=value`), and checks it.
    /// `derivingDefaults`: lte settings left out are derived (RunConfig+Defaults), as for a config a
    /// user wrote; false for a config a run recorded, where a missing key keeps the meaning it had
    /// when it was written (lte.learning_rate: the training rate; lte.rank: 16), so that a run
    /// recorded before the rule resumes as it would have.
    public static func load(contentsOf path: String, overrides: [String] = [], derivingDefaults: Bool = true) throws -> RunConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LTEError("config file \(path) does not exist or cannot be read")
        }
        return try decode(data, source: "config file \(path)", overrides: overrides, derivingDefaults: derivingDefaults)
    }

    /// Parses and checks a run config's JSON; `source` begins every error message ("config file X").
    public static func decode(_ data: Data, source: String, overrides: [String] = [], derivingDefaults: Bool = true) throws -> RunConfig {
        do { try StrictJSON.check(data) } catch let e as LTEError { throw LTEError("\(source) is not valid JSON: \(e.message)") }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw LTEError("\(source) is not a JSON object")
        }
        guard !overrides.isEmpty else { return try decode(root, source: source, derivingDefaults: derivingDefaults) }
        // An error the overrides bring in is theirs, not the file's: "--set training.beta1=2: …".
        let fileAlone = Result { try decode(root, source: source, derivingDefaults: derivingDefaults) }
        var overridden = root
        for o in overrides {
            do { try apply(override: o, to: &overridden) } catch let e as LTEError { throw LTEError("--set \(o) (over \(source)): \(e.message)") }
        }
        do {
            return try decode(overridden, source: source, derivingDefaults: derivingDefaults)
        } catch let e as LTEError {
            if case .failure = fileAlone { throw e }
            let message = e.message.hasPrefix(source + ": ") ? String(e.message.dropFirst(source.count + 2)) : e.message
            let blamed = overrides.filter { o in message.contains(String(o.prefix { $0 != "=" })) }
            throw LTEError("--set \((blamed.isEmpty ? overrides : blamed).joined(separator: " --set ")) (over \(source)): \(message)")
        }
    }

    /// Tells `init(from:)` to derive the lte settings left out.
    static let derivesDefaults = CodingUserInfoKey(rawValue: "lte.derivesDefaults")!

    private static func decode(_ root: [String: Any], source: String, derivingDefaults: Bool) throws -> RunConfig {
        do {
            let decoder = JSONDecoder()
            decoder.userInfo[derivesDefaults] = derivingDefaults
            let config = try decoder.decode(RunConfig.self, from: JSONSerialization.data(withJSONObject: root))
            try config.validate()
            return config
        } catch let e as LTEError {
            throw LTEError("\(source): \(e.message)")
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw LTEError("\(source): missing key \"\((ctx.codingPath + [key]).map(\.stringValue).joined(separator: "."))\"")
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.dataCorrupted(ctx), let DecodingError.valueNotFound(_, ctx) {
            throw LTEError("\(source): \(describe(ctx, in: root))")
        } catch let e as DecodingError {
            throw LTEError("\(source): cannot read the config (\(e.localizedDescription))")
        }
    }

    /// What a decoding failure means, named by the key's full path and the value found there (a null,
    /// or `wrong type for "training.iterations" (got 12.5: …)`).
    private static func describe(_ ctx: DecodingError.Context, in root: [String: Any]) -> String {
        let path = ctx.codingPath.map(\.stringValue).filter { !$0.isEmpty }
        let name = path.joined(separator: ".")
        var found: Any? = root
        for key in path { found = (found as? [String: Any])?[key] }
        switch found {
        case .some(is NSNull): return "\(name) is null; give it a value or remove the key to take the default"
        case .some(let value) where !path.isEmpty:
            let shown = (try? JSONSerialization.data(withJSONObject: value, options: .fragmentsAllowed)).map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
            return "wrong type for \"\(name)\" (got \(shown): \(ctx.debugDescription))"
        default:
            if path.isEmpty, let culprit = numberThatIsNotAWholeNumber(in: root) { return culprit }
            return path.isEmpty ? "cannot read the config: \(ctx.debugDescription)" : "wrong type for \"\(name)\""
        }
    }

    /// The decoder names no key when a number does not fit a whole-number field (12.5 or -1 for
    /// iterations or seed): find the key whose value, made a whole number ≥ 0, lets the config decode.
    private static func numberThatIsNotAWholeNumber(in root: [String: Any]) -> String? {
        for (section, value) in root.sorted(by: { $0.key < $1.key }) {
            guard let fields = value as? [String: Any] else { continue }
            for (key, field) in fields.sorted(by: { $0.key < $1.key }) {
                guard let number = field as? NSNumber, !(field is Bool) else { continue }
                let d = number.doubleValue
                guard d < 0 || d != d.rounded() else { continue }
                var trial = root, trialFields = fields
                trialFields[key] = Int(abs(d).rounded())
                trial[section] = trialFields
                guard let data = try? JSONSerialization.data(withJSONObject: trial),
                      (try? JSONDecoder().decode(RunConfig.self, from: data)) != nil else { continue }
                return "wrong type for \"\(section).\(key)\": expected a whole number\(d < 0 ? " ≥ 0" : "") (got \(number))"
            }
        }
        return nil
    }

    /// `training.learning_rate=3e-4` → root["training"]["learning_rate"] = 3e-4 (the value parsed as
    /// JSON, else taken as a string, so `lte.merge=reset-b` needs no quotes).
    static func apply(override: String, to root: inout [String: Any]) throws {
        let parts = override.split(separator: "=", maxSplits: 1).map(String.init)
        let path = parts.first?.split(separator: ".").map(String.init) ?? []
        guard parts.count == 2, path.count == 2 else {
            throw LTEError("override \"\(override)\" must look like section.key=value, e.g. training.learning_rate=3e-4")
        }
        let raw = parts[1]
        let value: Any = (try? JSONSerialization.jsonObject(with: Data(raw.utf8), options: .fragmentsAllowed)) ?? raw
        var section = root[path[0]] as? [String: Any] ?? [:]
        section[path[1]] = value
        root[path[0]] = section
    }

    /// Rejects values no run can take; the rank against the model is checked where the heads are made.
    public func validate() throws {
        var shape = model
        if vocabFromData { shape.vocabSize = 1 }   // the data decides it later; the rest is checked now
        try shape.validate()
        try training.validate()
        try lte.validate()
        if let rounds, rounds < 1 { throw LTEError("run.rounds must be at least 1 (got \(rounds))") }
    }

    // MARK: writing

    /// The config as JSON, every value spelled out (defaults filled in), keys sorted and indented:
    /// RUN/config.json, the history's root commit and the server's welcome hold exactly this, and
    /// `decode` reads it back to an equal config.
    public func encoded() throws -> Data {
        // Through JSONSerialization for its number format, the one config.json files have always had.
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(self))
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) + Data("\n".utf8)
    }

    // MARK: Codable

    enum Section: String, CodingKey, CaseIterable { case lte, model, run, training }
    enum RunKeys: String, CodingKey, CaseIterable { case rounds }

    /// The keys each section may hold.
    static let keys: [Section: [String]] = [
        .model: ModelConfig.keys, .training: TrainingConfig.keys, .lte: LoRAConfig.keys, .run: RunKeys.allCases.map(\.rawValue),
    ]

    public init(from decoder: Decoder) throws {
        try Self.refuseUnknownKeys(in: decoder)
        let c = try decoder.container(keyedBy: Section.self)
        model = try c.decode(ModelConfig.self, forKey: .model)
        training = try c.decodeIfPresent(TrainingConfig.self, forKey: .training) ?? TrainingConfig()
        lte = try c.decodeIfPresent(LoRAConfig.self, forKey: .lte) ?? LoRAConfig()
        rounds = try c.contains(.run) ? c.nestedContainer(keyedBy: RunKeys.self, forKey: .run).decodeIfPresent(Int.self, forKey: .rounds) : nil
        // The lte keys left out (or null) take values derived from the rest (RunConfig+Defaults).
        guard decoder.userInfo[Self.derivesDefaults] as? Bool ?? true else { return }
        var given: Set<String> = []
        if c.contains(.lte) {
            let section = try c.nestedContainer(keyedBy: AnyKey.self, forKey: .lte)
            given = Set(section.allKeys.filter { !((try? section.decodeNil(forKey: $0)) ?? false) }.map(\.stringValue))
        }
        deriveLTESettings(absent: Set(Self.derivedLTEKeys).subtracting(given))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Section.self)
        try c.encode(model, forKey: .model)
        try c.encode(training, forKey: .training)
        try c.encode(lte, forKey: .lte)
        if let rounds {
            var run = c.nestedContainer(keyedBy: RunKeys.self, forKey: .run)
            try run.encode(rounds, forKey: .rounds)
        }
    }

    /// Any JSON key, to list what an object holds.
    private struct AnyKey: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    private static func refuseUnknownKeys(in decoder: Decoder) throws {
        let root = try decoder.container(keyedBy: AnyKey.self)
        for name in root.allKeys.map(\.stringValue).sorted() {
            guard let section = Section(stringValue: name), let allowed = keys[section] else {
                throw LTEError("unknown section \"\(name)\" (expected: \(Section.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            let fields: KeyedDecodingContainer<AnyKey>
            do { fields = try root.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey(stringValue: name)) } catch DecodingError.typeMismatch {
                throw LTEError("section \"\(name)\" must be an object")
            }
            if let unknown = fields.allKeys.map(\.stringValue).sorted().first(where: { !allowed.contains($0) }) {
                throw LTEError("unknown key \"\(name).\(unknown)\"")
            }
        }
    }
}

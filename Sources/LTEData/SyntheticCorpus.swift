import LTENumerics

/// A seeded generator of English-like play text, for experiments that need a corpus with known,
/// learnable structure and no download.
///
/// The text imitates tinyshakespeare's layout — a speaker line `ALICE:`, one to three lines of speech,
/// a blank line — and its sentences come from a small grammar with real regularities a char-level
/// model can pick up at increasing depth: spelling of a ~150-word lexicon (skewed, Zipf-like, toward
/// common words), "a" vs "an" before vowels, subject–verb agreement (he sees / they see / I see),
/// do/does/did questions with the base verb, capitals after sentence ends, and replies that answer a
/// question with "Yes," or "No,". The same seed always gives the same bytes.
public enum SyntheticCorpus {
    public static let defaultBytes = 1_000_000

    /// Exactly `bytes` bytes of ASCII text (the last speech is cut off where the budget ends).
    public static func generate(seed: UInt64, bytes: Int = defaultBytes) -> String {
        var composer = Composer(seed: seed)
        composer.out.reserveCapacity(bytes + 512)
        while composer.out.count < bytes { composer.speech() }
        return String(decoding: composer.out.prefix(max(bytes, 0)), as: UTF8.self)
    }

    /// The same bytes as `generate`, handed to `write` a block at a time (whole speeches, about
    /// `block` bytes each), so a corpus larger than memory can go straight to a file.
    public static func stream(seed: UInt64, bytes: Int, block: Int = 1 << 22, write: ([UInt8]) throws -> Void) rethrows {
        var composer = Composer(seed: seed)
        var left = max(bytes, 0)
        while left > 0 {
            composer.out.removeAll(keepingCapacity: true)
            while composer.out.count < min(block, left) { composer.speech() }
            let take = min(composer.out.count, left)
            try write(Array(composer.out.prefix(take)))
            left -= take
        }
    }
}

/// The lexicon. Earlier entries are drawn more often.
private enum Lexicon {
    static let speakers = ["ALICE", "BORIS", "CLARA", "DUNCAN", "EDGAR", "FIONA", "GILES", "HELENA", "IAGO", "JULIET"]
    static let nouns: [(String, String)] = [
        ("king", "kings"), ("queen", "queens"), ("lord", "lords"), ("child", "children"), ("friend", "friends"),
        ("horse", "horses"), ("sword", "swords"), ("letter", "letters"), ("castle", "castles"), ("soldier", "soldiers"),
        ("crown", "crowns"), ("dog", "dogs"), ("ship", "ships"), ("bird", "birds"), ("enemy", "enemies"),
        ("servant", "servants"), ("man", "men"), ("woman", "women"), ("eagle", "eagles"), ("apple", "apples"),
        ("heart", "hearts"), ("house", "houses"), ("tree", "trees"), ("ring", "rings"), ("owl", "owls"),
    ]
    static let adjectives = [
        "old", "good", "young", "noble", "brave", "poor", "gentle", "proud", "dark", "humble", "little",
        "quiet", "cruel", "golden", "ancient", "sweet", "cold", "wise", "idle", "unkind",
    ]
    /// (third person singular, base, past)
    static let transitive: [(String, String, String)] = [
        ("loves", "love", "loved"), ("sees", "see", "saw"), ("knows", "know", "knew"), ("takes", "take", "took"),
        ("finds", "find", "found"), ("keeps", "keep", "kept"), ("fears", "fear", "feared"),
        ("follows", "follow", "followed"), ("carries", "carry", "carried"), ("watches", "watch", "watched"),
        ("remembers", "remember", "remembered"), ("betrays", "betray", "betrayed"), ("serves", "serve", "served"),
        ("forgives", "forgive", "forgave"), ("calls", "call", "called"),
    ]
    static let intransitive: [(String, String, String)] = [
        ("sleeps", "sleep", "slept"), ("waits", "wait", "waited"), ("weeps", "weep", "wept"), ("sings", "sing", "sang"),
        ("speaks", "speak", "spoke"), ("runs", "run", "ran"), ("dies", "die", "died"), ("returns", "return", "returned"),
    ]
    static let adverbs = ["alone", "again", "tonight", "well", "no more", "in silence", "for ever"]
    static let places = [
        "in the garden", "by the river", "at the gate", "in the castle", "under the tree", "before dawn",
        "at night", "in the field", "upon the hill", "by the sea", "in the tower", "within these walls",
    ]
    static let exclamations = ["Alas", "O", "Fie", "Good morrow", "Away", "Peace"]
    /// (subject, object, takes the third-person -s)
    static let pronouns: [(String, String, Bool)] = [
        ("I", "me", false), ("you", "you", false), ("he", "him", true), ("she", "her", true),
        ("we", "us", false), ("they", "them", false),
    ]
}

/// Builds the text word by word, taking care of spaces and capitals.
private struct Composer {
    var rng: SeededGenerator
    var out: [UInt8] = []
    private var needsSpace = false
    private var capitalize = true

    init(seed: UInt64) { rng = SeededGenerator(seed: seed, stream: 0x5EED) }

    // MARK: drawing

    /// An element skewed toward the front (the minimum of two uniform draws).
    mutating func common<T>(_ items: [T]) -> T {
        items[min(rng.nextInt(below: items.count), rng.nextInt(below: items.count))]
    }

    mutating func uniform<T>(_ items: [T]) -> T { items[rng.nextInt(below: items.count)] }

    mutating func chance(_ p: Float) -> Bool { rng.nextUniform() < p }

    // MARK: emitting

    mutating func word(_ w: String) {
        if needsSpace { out.append(UInt8(ascii: " ")) }
        var first = true
        for byte in w.utf8 {
            let upper = first && capitalize && byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")
            out.append(upper ? byte - 32 : byte)
            first = false
        }
        capitalize = false
        needsSpace = true
    }

    /// A mark that ends a sentence (capitalize what follows) or not.
    mutating func mark(_ m: UInt8, endsSentence: Bool = false) {
        out.append(m)
        if endsSentence { capitalize = true }
    }

    mutating func newline() {
        out.append(UInt8(ascii: "\n"))
        needsSpace = false
    }

    // MARK: grammar

    /// NAME:\n, one to three lines of one or two sentences, a blank line.
    mutating func speech() {
        let speaker = uniform(Lexicon.speakers)
        for byte in speaker.utf8 { out.append(byte) }
        out.append(UInt8(ascii: ":"))
        newline()
        capitalize = true
        let lines = 1 + min(rng.nextInt(below: 3), rng.nextInt(below: 3))
        var askedQuestion = false
        if lastSpeechAsked, chance(0.8) {
            word(chance(0.5) ? "yes" : "no"); mark(UInt8(ascii: ","))
            if chance(0.4) { word(uniform(Lexicon.speakers).capitalizedName); mark(UInt8(ascii: ",")) }
        }
        for _ in 0..<lines {
            let sentences = chance(0.35) ? 2 : 1
            for _ in 0..<sentences { askedQuestion = sentence() }
            newline()
            capitalize = true
        }
        newline()
        lastSpeechAsked = askedQuestion
    }
    private var lastSpeechAsked = false

    /// One sentence with its end mark; returns whether it was a question.
    mutating func sentence() -> Bool {
        let r = rng.nextUniform()
        if r < 0.10 {
            word(uniform(Lexicon.speakers).capitalizedName); mark(UInt8(ascii: ","))
            clause(past: false)
        } else if r < 0.25 {
            question(); mark(UInt8(ascii: "?"), endsSentence: true)
            return true
        } else if r < 0.32 {
            word(common(Lexicon.exclamations)); mark(UInt8(ascii: ","))
            nounPhrase(plural: chance(0.3))
            mark(UInt8(ascii: "!"), endsSentence: true)
            return false
        } else if r < 0.45 {
            clause(past: chance(0.4)); mark(UInt8(ascii: ","))
            word(chance(0.6) ? "and" : "but")
            clause(past: chance(0.4))
        } else {
            clause(past: chance(0.35))
        }
        mark(chance(0.15) ? UInt8(ascii: "!") : UInt8(ascii: "."), endsSentence: true)
        return false
    }

    /// Subject, a verb that agrees with it (or the past tense), an object or adverb, maybe a place.
    mutating func clause(past: Bool) {
        let thirdSingular = subject()
        if chance(0.7) {
            let verb = common(Lexicon.transitive)
            word(past ? verb.2 : (thirdSingular ? verb.0 : verb.1))
            object()
        } else {
            let verb = common(Lexicon.intransitive)
            word(past ? verb.2 : (thirdSingular ? verb.0 : verb.1))
            if chance(0.4) { word(common(Lexicon.adverbs)) }
        }
        if chance(0.3) { word(common(Lexicon.places)) }
    }

    /// Do/does/did + subject + base verb + object.
    mutating func question() {
        let tense = rng.nextInt(below: 3)
        let auxiliaryAt = out.count
        word("do")   // placeholder, fixed below once the subject's number is known
        let thirdSingular = subject()
        if tense == 2 {
            replaceAuxiliary(at: auxiliaryAt, with: "did")
        } else if thirdSingular {
            replaceAuxiliary(at: auxiliaryAt, with: "does")
        }
        word(common(Lexicon.transitive).1)
        object()
        if chance(0.25) { word(common(Lexicon.places)) }
    }

    private mutating func replaceAuxiliary(at index: Int, with auxiliary: String) {
        let start = out[index] == UInt8(ascii: " ") ? index + 1 : index
        let wasCapital = out[start] == UInt8(ascii: "D")
        var replacement = Array(auxiliary.utf8)
        if wasCapital { replacement[0] -= 32 }
        out.replaceSubrange(start..<start + 2, with: replacement)
    }

    /// A pronoun or a noun phrase; returns whether the verb takes the third-person -s.
    mutating func subject() -> Bool {
        if chance(0.35) {
            let pronoun = common(Lexicon.pronouns)
            word(pronoun.0)
            return pronoun.2
        }
        let plural = chance(0.35)
        nounPhrase(plural: plural)
        return !plural
    }

    mutating func object() {
        if chance(0.25) { word(common(Lexicon.pronouns).1) } else { nounPhrase(plural: chance(0.35)) }
    }

    /// Determiner (agreeing in number; "an" before a vowel), up to two adjectives, the noun.
    mutating func nounPhrase(plural: Bool) {
        var words: [String] = []
        let adjectives = chance(0.45) ? (chance(0.2) ? 2 : 1) : 0
        for _ in 0..<adjectives { words.append(common(Lexicon.adjectives)) }
        let noun = common(Lexicon.nouns)
        words.append(plural ? noun.1 : noun.0)
        let determiner: String
        if plural {
            determiner = common(["the", "my", "these", "some", "your", "our", "their", "those"])
        } else {
            let d = common(["the", "a", "my", "this", "your", "his", "her", "every", "that"])
            let vowel = "aeiou".utf8.contains(words[0].utf8.first!)
            determiner = d == "a" && vowel ? "an" : d
        }
        word(determiner)
        for w in words { word(w) }
    }
}

private extension String {
    /// "ALICE" → "Alice".
    var capitalizedName: String { prefix(1) + dropFirst().lowercased() }
}

import Foundation

extension RunConfig {
    /// The keys (`section.key`) whose values differ between this config and `other`, with each
    /// side's value as its config.json spells it; sorted by key. A resumed run says with it what an
    /// override changed in the config it recorded, and which of a config file's values it kept.
    public func differences(from other: RunConfig) throws -> [(key: String, value: String, other: String)] {
        func flat(_ config: RunConfig) throws -> [String: String] {
            let root = try JSONSerialization.jsonObject(with: config.encoded()) as? [String: Any] ?? [:]
            var out: [String: String] = [:]
            for (section, fields) in root {
                for (key, value) in fields as? [String: Any] ?? [:] { out["\(section).\(key)"] = "\(value)" }
            }
            return out
        }
        let mine = try flat(self), theirs = try flat(other)
        return Set(mine.keys).union(theirs.keys).sorted().compactMap { key in
            let a = mine[key] ?? "none", b = theirs[key] ?? "none"
            return a == b ? nil : (key, a, b)
        }
    }
}

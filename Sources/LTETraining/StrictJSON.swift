import Foundation
import LTEBase

/// A strict reading of a JSON text before `JSONSerialization` sees it, for config files people
/// write by hand: a syntax error is reported with its line and column ("unexpected end of the file
/// at line 12, column 3"), and an object that names a key twice is refused — JSONSerialization
/// would silently keep one of the two values.
enum StrictJSON {
    /// Throws the first syntax error or duplicated key, in one line without the file's name.
    static func check(_ data: Data) throws {
        var scanner = Scanner(bytes: [UInt8](data))
        scanner.skipSpace()
        try scanner.value(path: "")
        scanner.skipSpace()
        if scanner.index < scanner.bytes.count { throw scanner.error("unexpected text after the JSON value") }
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        /// Line and column (1-based) of `index`.
        func error(_ what: String) -> LTEError {
            var line = 1, column = 1
            for b in bytes[..<min(index, bytes.count)] {
                if b == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
            }
            return LTEError("\(index >= bytes.count ? "unexpected end of the file (truncated?)" : what) at line \(line), column \(column)")
        }

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while let b = current, b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { index += 1 }
        }

        mutating func expect(_ c: Character) throws {
            guard current == c.asciiValue else { throw error("expected '\(c)'") }
            index += 1
        }

        mutating func value(path: String) throws {
            skipSpace()
            guard let b = current else { throw error("expected a value") }
            switch b {
            case UInt8(ascii: "{"): try object(path: path)
            case UInt8(ascii: "["):
                index += 1
                skipSpace()
                if current == UInt8(ascii: "]") { index += 1; return }
                var n = 0
                while true {
                    try value(path: "\(path)[\(n)]"); n += 1
                    skipSpace()
                    if current == UInt8(ascii: "]") { index += 1; return }
                    try expect(",")
                }
            case UInt8(ascii: "\""): _ = try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            default: try number()
            }
        }

        mutating func object(path: String) throws {
            try expect("{")
            skipSpace()
            if current == UInt8(ascii: "}") { index += 1; return }
            var seen: Set<String> = []
            while true {
                skipSpace()
                let keyStart = index
                guard current == UInt8(ascii: "\"") else { throw error("expected a key in quotes") }
                let key = try string()
                let name = path.isEmpty ? key : "\(path).\(key)"
                guard seen.insert(key).inserted else {
                    index = keyStart
                    throw error("key \"\(name)\" appears twice")
                }
                skipSpace()
                try expect(":")
                try value(path: name)
                skipSpace()
                if current == UInt8(ascii: "}") { index += 1; return }
                try expect(",")
            }
        }

        mutating func string() throws -> String {
            index += 1   // the opening quote
            var out: [UInt8] = []
            while let b = current {
                index += 1
                switch b {
                case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard let e = current else { throw error("unfinished string") }
                    index += 1
                    if e == UInt8(ascii: "u") { index += 4 }
                    out.append(e)
                case 0..<0x20: index -= 1; throw error("control character in a string")
                default: out.append(b)
                }
            }
            throw error("unfinished string")
        }

        mutating func literal(_ word: String) throws {
            let w = Array(word.utf8)
            guard index + w.count <= bytes.count, Array(bytes[index..<index + w.count]) == w else {
                throw error("unexpected character '\(String(decoding: [current ?? 0], as: UTF8.self))'")
            }
            index += w.count
        }

        mutating func number() throws {
            let start = index
            while let b = current, b == UInt8(ascii: "-") || b == UInt8(ascii: "+") || b == UInt8(ascii: ".")
                    || b == UInt8(ascii: "e") || b == UInt8(ascii: "E") || (b >= 0x30 && b <= 0x39) { index += 1 }
            guard index > start, Double(String(decoding: bytes[start..<index], as: UTF8.self)) != nil else {
                index = start
                throw error("unexpected character '\(String(decoding: [current ?? 0], as: UTF8.self))'")
            }
        }
    }
}

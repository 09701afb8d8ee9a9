import Foundation

/// The large string arrays of a fitted pipeline (the `values` of its string indices and count
/// encodings: hundreds of thousands of ids) written and read beside `JSONEncoder`/`JSONDecoder`,
/// giving the same bytes and the same values.
///
/// NOTE: Foundation's coders spend about 1 µs per string: on 1M RecSys rows the 16.6 MB
/// `pipeline.fitted.json` (≈350k index values) took ≈0.3 s to encode and ≈0.45 s to decode,
/// half of an `--apply` run on 100k rows.
///
/// Encoding: with a `StringArrays` in the encoder's `userInfo`, a type puts a placeholder string
/// where a long array goes (`encodeStrings`), and `splice` then replaces each placeholder with
/// the array formatted exactly as `JSONEncoder` formats it (pretty printed, two-space indent,
/// `/` escaped). Decoding: `extract` parses every array of plain strings under a `"values"` key
/// itself, leaves a placeholder in its place, and `decodeStrings` takes the array back.
final class StringArrays: @unchecked Sendable {
    static let key = CodingUserInfoKey(rawValue: "herd.stringArrays")!
    /// A placeholder is this prefix and the array's number (a NUL byte never appears in ids).
    static let prefix = "\u{0}herd-strings:"
    /// Arrays shorter than this stay with the coders.
    static let minimum = 16

    /// One array: its strings, or (read from a sidecar) a lookup table numbering its values in
    /// order, whose bytes make the strings when they are asked for.
    enum Entry {
        case strings([String])
        case table(KeyTable)

        var strings: [String] {
            switch self {
            case .strings(let s): return s
            case .table(let t): return (0..<t.count).map { String(decoding: t.key($0), as: UTF8.self) }
            }
        }
    }

    private(set) var entries: [Entry] = []
    /// The arrays as strings.
    var arrays: [[String]] { entries.map(\.strings) }
    /// Where `splice` put each array: `json[start..<end]` is the array `arrays[array]`, in
    /// document order.
    private(set) var spliced: [(array: Int, start: Int, end: Int)] = []

    init() {}

    /// A stash of arrays already read.
    init(entries: [Entry]) { self.entries = entries }

    func placeholder(_ strings: [String]) -> String {
        entries.append(.strings(strings))
        return StringArrays.prefix + String(entries.count - 1)
    }

    /// A placeholder for the keys of `table` in order, written from its bytes (no `String` per
    /// value). The caller checks `table.isValidUTF8`: the bytes are then exactly the strings'.
    func placeholder(table: KeyTable) -> String {
        entries.append(.table(table))
        return StringArrays.prefix + String(entries.count - 1)
    }

    private func number(_ placeholder: String) -> Int? {
        guard placeholder.hasPrefix(StringArrays.prefix),
              let i = Int(placeholder.dropFirst(StringArrays.prefix.count)), entries.indices.contains(i)
        else { return nil }
        return i
    }

    func take(_ placeholder: String) -> [String]? { number(placeholder).map { entries[$0].strings } }

    /// The lookup table read for the array of `placeholder`, if it has one.
    func table(_ placeholder: String) -> KeyTable? {
        guard let i = number(placeholder), case .table(let t) = entries[i] else { return nil }
        return t
    }

    // MARK: Encoding

    /// `json` (written by a pretty-printing `JSONEncoder` that held `self`) with every
    /// placeholder replaced by its array.
    func splice(_ json: Data) -> Data {
        guard !entries.isEmpty else { return json }
        // The placeholder as JSONEncoder writes it: the NUL escaped.
        let marker = Array("\"\\u0000herd-strings:".utf8)
        let src = [UInt8](json)
        var out: [UInt8] = []
        out.reserveCapacity(src.count + entries.reduce(0) { total, e in
            switch e {
            case .strings(let s): return total + s.reduce(0) { $0 + $1.utf8.count + 16 }
            case .table(let t): return total + t.bytes.count + 16 * t.count
            }
        })
        var i = 0
        var lineStart = 0
        while i < src.count {
            if src[i] == UInt8(ascii: "\"") && src.count - i >= marker.count && src[i..<(i + marker.count)].elementsEqual(marker) {
                var j = i + marker.count
                var n = 0
                while j < src.count, src[j] >= 48, src[j] <= 57 {
                    n = n * 10 + Int(src[j] - 48)
                    j += 1
                }
                if j < src.count, src[j] == UInt8(ascii: "\""), entries.indices.contains(n) {
                    var indent = 0
                    while src[lineStart + indent] == 32 { indent += 1 }
                    let start = out.count
                    switch entries[n] {
                    case .strings(let strings): StringArrays.appendPretty(strings, indent: indent, to: &out)
                    case .table(let table): StringArrays.appendPretty(table, indent: indent, to: &out)
                    }
                    spliced.append((n, start, out.count))
                    i = j + 1
                    continue
                }
            }
            if src[i] == 10 { lineStart = i + 1 }
            out.append(src[i])
            i += 1
        }
        return Data(out)
    }

    /// `strings` as a pretty-printing `JSONEncoder` writes an array whose key line is indented
    /// by `indent` spaces.
    static func appendPretty(_ strings: [String], indent: Int, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        let separator = [44, 10] + [UInt8](repeating: 32, count: indent + 2)  // ",\n" and the indent
        for (k, s) in strings.enumerated() {
            out.append(contentsOf: k == 0 ? separator[1...] : separator[...])
            appendEscaped(s, to: &out)
        }
        out.append(10)
        out.append(contentsOf: repeatElement(32, count: indent))
        out.append(UInt8(ascii: "]"))
    }

    /// `appendPretty` of the keys of `table` in order, from its bytes (valid UTF-8: see
    /// `placeholder(table:)`).
    static func appendPretty(_ table: KeyTable, indent: Int, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        let separator = [44, 10] + [UInt8](repeating: 32, count: indent + 2)  // ",\n" and the indent
        table.bytes.withUnsafeBufferPointer { b in
            table.offsets.withUnsafeBufferPointer { o in
                for k in 0..<table.count {
                    out.append(contentsOf: k == 0 ? separator[1...] : separator[...])
                    appendEscaped(UnsafeBufferPointer(rebasing: b[o[k]..<o[k + 1]]), to: &out)
                }
            }
        }
        out.append(10)
        out.append(contentsOf: repeatElement(32, count: indent))
        out.append(UInt8(ascii: "]"))
    }

    /// A JSON string literal as `JSONEncoder` writes it (without `.withoutEscapingSlashes`).
    static func appendEscaped(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { appendEscaped($0, to: &out) }
    }

    /// `appendEscaped` of a string's UTF-8 bytes `b`.
    static func appendEscaped(_ b: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(34)
        // NOTE: ids need no escaping; they are copied whole.
        if !b.contains(where: { $0 < 32 || $0 == 34 || $0 == 92 || $0 == 47 }) {
            out.append(contentsOf: b)
        } else {
            for c in b {
                switch c {
                case 34, 92, 47:
                    out.append(92)
                    out.append(c)
                case 8, 9, 10, 12, 13:
                    out.append(92)
                    out.append(c == 8 ? 98 : c == 9 ? 116 : c == 10 ? 110 : c == 12 ? 102 : 114)  // b t n f r
                case 0..<32:
                    out.append(contentsOf: "\\u00".utf8)
                    out.append(hexDigit(c >> 4))
                    out.append(hexDigit(c & 15))
                default: out.append(c)
                }
            }
        }
        out.append(34)
    }

    @inline(__always)
    private static func hexDigit(_ d: UInt8) -> UInt8 { d < 10 ? 48 + d : 87 + d }

    // MARK: Decoding

    /// `json` with every array of at least `minimum` plain strings under a `"values"` key
    /// replaced by a placeholder, and the arrays. Anything it does not understand is left for
    /// `JSONDecoder` (which then reports errors as before).
    static func extract(_ json: Data) -> (json: Data, arrays: StringArrays) {
        let stash = StringArrays()
        var out: [UInt8] = []
        out.reserveCapacity(json.count / 8)
        var copied = 0  // json[..<copied] is in `out`
        let key = Array("\"values\"".utf8)
        json.withUnsafeBytes { raw in
            let b = raw.bindMemory(to: UInt8.self)
            var i = 0
            while i < b.count {
                guard b[i] == 34 else {
                    i += 1
                    continue
                }
                let tokenStart = i
                guard let end = skipString(b, from: i) else { return }
                i = end
                guard end - tokenStart == key.count, b[tokenStart..<end].elementsEqual(key) else { continue }
                var j = skipSpace(b, end)
                guard j < b.count, b[j] == UInt8(ascii: ":") else { continue }
                j = skipSpace(b, j + 1)
                guard j < b.count, b[j] == UInt8(ascii: "["), let (strings, after) = parseStrings(b, from: j),
                      strings.count >= minimum
                else { continue }
                out.append(contentsOf: b[copied..<j])
                appendEscaped(stash.placeholder(strings), to: &out)
                copied = after
                i = after
            }
        }
        guard !stash.entries.isEmpty else { return (json, stash) }
        json.withUnsafeBytes { out.append(contentsOf: $0[copied...]) }
        return (Data(out), stash)
    }

    private static func skipSpace(_ b: UnsafeBufferPointer<UInt8>, _ from: Int) -> Int {
        var i = from
        while i < b.count, b[i] == 32 || b[i] == 10 || b[i] == 13 || b[i] == 9 { i += 1 }
        return i
    }

    /// The index after the string literal starting at `from` (a quote), or nil when unterminated.
    private static func skipString(_ b: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        var i = from + 1
        while i < b.count {
            switch b[i] {
            case 92: i += 2
            case 34: return i + 1
            default: i += 1
            }
        }
        return nil
    }

    /// The array of strings starting at `from` (`[`) and the index after its `]`; nil when it
    /// holds anything but strings or is not valid JSON.
    private static func parseStrings(_ b: UnsafeBufferPointer<UInt8>, from: Int) -> ([String], Int)? {
        var strings: [String] = []
        var i = skipSpace(b, from + 1)
        if i < b.count, b[i] == UInt8(ascii: "]") { return (strings, i + 1) }
        var bytes: [UInt8] = []
        while true {
            guard i < b.count, b[i] == 34 else { return nil }
            i += 1
            // Fast path: no escapes (every id) — the string straight from the text.
            var j = i
            while j < b.count, b[j] != 34, b[j] != 92, b[j] >= 32 { j += 1 }
            if j < b.count, b[j] == 34 {
                guard let s = String(validating: UnsafeBufferPointer(rebasing: b[i..<j]), as: UTF8.self) else { return nil }
                strings.append(s)
                i = skipSpace(b, j + 1)
                guard i < b.count else { return nil }
                if b[i] == UInt8(ascii: "]") { return (strings, i + 1) }
                guard b[i] == UInt8(ascii: ",") else { return nil }
                i = skipSpace(b, i + 1)
                continue
            }
            bytes.removeAll(keepingCapacity: true)
            while true {
                guard i < b.count else { return nil }
                let c = b[i]
                if c == 34 { break }
                if c < 32 { return nil }  // control characters must be escaped
                if c != 92 {
                    bytes.append(c)
                    i += 1
                    continue
                }
                guard i + 1 < b.count else { return nil }
                switch b[i + 1] {
                case 34: bytes.append(34)
                case 92: bytes.append(92)
                case 47: bytes.append(47)
                case UInt8(ascii: "b"): bytes.append(8)
                case UInt8(ascii: "f"): bytes.append(12)
                case UInt8(ascii: "n"): bytes.append(10)
                case UInt8(ascii: "r"): bytes.append(13)
                case UInt8(ascii: "t"): bytes.append(9)
                case UInt8(ascii: "u"):
                    guard let u = hex4(b, i + 2) else { return nil }
                    var scalar = u
                    var used = 6
                    if (0xD800..<0xDC00).contains(u) {  // a surrogate pair
                        guard i + 11 < b.count, b[i + 6] == 92, b[i + 7] == UInt8(ascii: "u"), let low = hex4(b, i + 8),
                              (0xDC00..<0xE000).contains(low)
                        else { return nil }
                        scalar = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
                        used = 12
                    }
                    guard let s = Unicode.Scalar(scalar) else { return nil }
                    bytes.append(contentsOf: String(Character(s)).utf8)
                    i += used
                    continue
                default: return nil
                }
                i += 2
            }
            guard let s = String(validating: bytes, as: UTF8.self) else { return nil }
            strings.append(s)
            i = skipSpace(b, i + 1)
            guard i < b.count else { return nil }
            if b[i] == UInt8(ascii: "]") { return (strings, i + 1) }
            guard b[i] == UInt8(ascii: ",") else { return nil }
            i = skipSpace(b, i + 1)
        }
    }

    private static func hex4(_ b: UnsafeBufferPointer<UInt8>, _ at: Int) -> UInt32? {
        guard at + 4 <= b.count else { return nil }
        var v: UInt32 = 0
        for k in at..<(at + 4) {
            let c = b[k]
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 97...102: d = UInt32(c - 87)
            case 65...70: d = UInt32(c - 55)
            default: return nil
            }
            v = v << 4 | d
        }
        return v
    }
}

extension KeyedEncodingContainer {
    /// Encodes `strings`, as a placeholder for `StringArrays.splice` when the encoder carries a
    /// `StringArrays` and the array is long.
    mutating func encodeStrings(_ strings: [String], forKey key: Key, userInfo: [CodingUserInfoKey: Any]) throws {
        if strings.count >= StringArrays.minimum, let stash = userInfo[StringArrays.key] as? StringArrays {
            try encode(stash.placeholder(strings), forKey: key)
        } else {
            try encode(strings, forKey: key)
        }
    }
}

extension KeyedDecodingContainer {
    /// Decodes an array of strings, or takes it from the decoder's `StringArrays` when
    /// `extract` left a placeholder.
    func decodeStrings(forKey key: Key, userInfo: [CodingUserInfoKey: Any]) throws -> [String] {
        if let stash = userInfo[StringArrays.key] as? StringArrays, !stash.entries.isEmpty,
           let s = try? decode(String.self, forKey: key), let strings = stash.take(s) {
            return strings
        }
        return try decode([String].self, forKey: key)
    }

    /// The lookup table the decoder's `StringArrays` holds for the array at `key` (read from a
    /// sidecar), or nil (then `decodeStrings`).
    func decodeTable(forKey key: Key, userInfo: [CodingUserInfoKey: Any]) throws -> KeyTable? {
        guard let stash = userInfo[StringArrays.key] as? StringArrays, !stash.entries.isEmpty,
              let s = try? decode(String.self, forKey: key) else { return nil }
        return stash.table(s)
    }
}

import Foundation

/// The element type of a column.
///
/// NOTE: numbers are `Int64` or `Double`, not `Float`: ids, counts and Unix timestamps
/// (≈1.6e9 s, needing 31 bits) must survive parsing, arithmetic and a CSV round trip exactly, and
/// fitted statistics (min/max, means) are then exact for the re-application at serving time. The
/// narrowing to the model's FP32 happens once, when batches are built.
public enum ColumnType: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case int64
    case double
    case string
    case int64List = "int64_list"
    case doubleList = "double_list"
    case stringList = "string_list"

    /// The element type of a list type (`nil` for scalars).
    public var element: ColumnType? {
        switch self {
        case .int64List: return .int64
        case .doubleList: return .double
        case .stringList: return .string
        default: return nil
        }
    }

    /// The list type whose elements are `self` (`nil` for list types).
    public var listType: ColumnType? {
        switch self {
        case .int64: return .int64List
        case .double: return .doubleList
        case .string: return .stringList
        default: return nil
        }
    }

    public var isList: Bool { element != nil }
    public var isNumeric: Bool { self == .int64 || self == .double }
    public var description: String { rawValue }
}

/// Variable-length UTF-8 strings packed in one byte buffer.
///
/// ```
/// offsets  [n + 1]  Int   value i is bytes[offsets[i] ..< offsets[i + 1]]; offsets[0] == 0
/// bytes    [offsets[n]]   UInt8, the values back to back, no terminators
/// ```
///
/// NOTE: one buffer instead of `[String]`: no per-value allocation or reference counting, and
/// values are hashed and compared as raw byte slices.
public struct StringData: Sendable, Equatable {
    public var offsets: [Int]
    public var bytes: [UInt8]

    public init() {
        offsets = [0]
        bytes = []
    }

    public init(offsets: [Int], bytes: [UInt8]) {
        precondition(offsets.first == 0 && offsets.last == bytes.count, "offsets must span bytes")
        self.offsets = offsets
        self.bytes = bytes
    }

    public init<S: Sequence>(_ strings: S) where S.Element == String {
        self.init()
        for s in strings { append(s) }
    }

    public var count: Int { offsets.count - 1 }

    public subscript(i: Int) -> String {
        String(decoding: bytes[offsets[i]..<offsets[i + 1]], as: UTF8.self)
    }

    public mutating func append(_ s: String) {
        bytes.append(contentsOf: s.utf8)
        offsets.append(bytes.count)
    }

    public mutating func append(bytes p: UnsafePointer<UInt8>, count: Int) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: p, count: count))
        offsets.append(bytes.count)
    }

    /// Calls `body` with the bytes of value `i`.
    @inlinable
    public func withBytes<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let lo = offsets[i], hi = offsets[i + 1]
        return try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[lo..<hi])) }
    }
}

/// The values of a column, without nulls.
///
/// A list column is `list(offsets, values)`: row i holds elements `offsets[i] ..< offsets[i + 1]`
/// of the flat `values` (so a list of strings has two levels of offsets: rows → elements →
/// bytes).
public indirect enum ColumnData: Sendable, Equatable {
    case int64([Int64])
    case double([Double])
    case string(StringData)
    case list(offsets: [Int], values: ColumnData)

    public var count: Int {
        switch self {
        case .int64(let v): return v.count
        case .double(let v): return v.count
        case .string(let s): return s.count
        case .list(let o, _): return o.count - 1
        }
    }
}

/// One value of a column, for small-scale access (tests, messages, pipeline arguments).
public enum Value: Sendable, Equatable, Hashable, CustomStringConvertible {
    case null
    case int(Int64)
    case double(Double)
    case string(String)
    case list([Value])

    public var description: String {
        switch self {
        case .null: return "null"
        case .int(let v): return String(v)
        case .double(let v): return String(v)
        case .string(let s): return s
        case .list(let l): return "[" + l.map(\.description).joined(separator: ",") + "]"
        }
    }
}

/// A typed, immutable-by-value column: `data` plus an optional validity bitmap (`nil`: no
/// nulls). A null row still occupies a slot in `data` (0, 0.0, "" or an empty list).
///
/// Copy-on-write comes from the arrays inside; copying a column is O(1).
public struct Column: Sendable, Equatable {
    public internal(set) var type: ColumnType
    public internal(set) var data: ColumnData
    /// Bit i set = row i is valid; `nil` = every row is valid.
    public internal(set) var validity: Validity?

    public init(type: ColumnType, data: ColumnData, validity: Validity? = nil) {
        precondition(validity == nil || validity!.count == data.count, "validity length must match")
        self.type = type
        self.data = data
        self.validity = (validity?.allValid ?? true) ? nil : validity
    }

    public var count: Int { data.count }
    public var nullCount: Int { validity.map { $0.count - $0.validCount } ?? 0 }

    @inline(__always)
    public func isNull(_ i: Int) -> Bool { validity.map { !$0[i] } ?? false }

    // MARK: Construction from Swift values

    public init(int64s values: [Int64?]) {
        let v = Validity(values.map { $0 != nil })
        self.init(type: .int64, data: .int64(values.map { $0 ?? 0 }), validity: v)
    }

    public init(doubles values: [Double?]) {
        let v = Validity(values.map { $0 != nil })
        self.init(type: .double, data: .double(values.map { $0 ?? 0 }), validity: v)
    }

    public init(strings values: [String?]) {
        let v = Validity(values.map { $0 != nil })
        self.init(type: .string, data: .string(StringData(values.map { $0 ?? "" })), validity: v)
    }

    public init(stringLists values: [[String]?]) {
        var offsets = [0]
        var s = StringData()
        for l in values {
            for e in l ?? [] { s.append(e) }
            offsets.append(s.count)
        }
        self.init(type: .stringList, data: .list(offsets: offsets, values: .string(s)),
                  validity: Validity(values.map { $0 != nil }))
    }

    public init(int64Lists values: [[Int64]?]) {
        var offsets = [0]
        var flat: [Int64] = []
        for l in values {
            flat += l ?? []
            offsets.append(flat.count)
        }
        self.init(type: .int64List, data: .list(offsets: offsets, values: .int64(flat)),
                  validity: Validity(values.map { $0 != nil }))
    }

    // MARK: Typed access

    /// The Int64 values (nulls read as 0); `nil` for other types.
    public var int64Values: [Int64]? { if case .int64(let v) = data { return v } else { return nil } }
    /// The Double values (nulls read as 0); `nil` for other types.
    public var doubleValues: [Double]? { if case .double(let v) = data { return v } else { return nil } }
    /// The packed strings; `nil` for other types.
    public var stringData: StringData? { if case .string(let s) = data { return s } else { return nil } }
    /// Row offsets and flat elements of a list column; `nil` for scalars.
    public var listParts: (offsets: [Int], values: ColumnData)? {
        if case .list(let o, let v) = data { return (o, v) } else { return nil }
    }

    /// Numeric values as Double (nulls as 0); `nil` for non-numeric columns.
    public var numericValues: [Double]? {
        switch data {
        case .int64(let v): return v.map { Double($0) }
        case .double(let v): return v
        default: return nil
        }
    }

    /// Value of row `i` (slow path: tests and messages).
    public subscript(i: Int) -> Value {
        if isNull(i) { return .null }
        return Column.value(data, i)
    }

    static func value(_ data: ColumnData, _ i: Int) -> Value {
        switch data {
        case .int64(let v): return .int(v[i])
        case .double(let v): return .double(v[i])
        case .string(let s): return .string(s[i])
        case .list(let o, let inner): return .list((o[i]..<o[i + 1]).map { value(inner, $0) })
        }
    }

    /// All values, in order.
    public var values: [Value] { (0..<count).map { self[$0] } }

    // MARK: Row selection

    /// The rows `rows` in that order; an index of -1 gives a null row (left joins).
    public func gather(_ rows: [Int]) -> Column {
        let hasNeg = rows.contains { $0 < 0 }
        var validity: Validity?
        if self.validity != nil || hasNeg {
            var v = Validity(count: rows.count, valid: true)
            for (k, r) in rows.enumerated() where r < 0 || isNull(r) { v[k] = false }
            validity = v
        }
        return Column(type: type, data: Column.gather(data, rows), validity: validity)
    }

    static func gather(_ data: ColumnData, _ rows: [Int]) -> ColumnData {
        switch data {
        case .int64(let v):
            return .int64(rows.map { $0 < 0 ? 0 : v[$0] })
        case .double(let v):
            return .double(rows.map { $0 < 0 ? 0 : v[$0] })
        case .string(let s):
            var out = StringData()
            out.offsets.reserveCapacity(rows.count + 1)
            s.bytes.withUnsafeBufferPointer { b in
                for r in rows {
                    if r >= 0 {
                        out.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: b[s.offsets[r]..<s.offsets[r + 1]]))
                    }
                    out.offsets.append(out.bytes.count)
                }
            }
            return .string(out)
        case .list(let o, let inner):
            var offsets = [0]
            offsets.reserveCapacity(rows.count + 1)
            var elements: [Int] = []
            for r in rows {
                if r >= 0 { elements.append(contentsOf: o[r]..<o[r + 1]) }
                offsets.append(elements.count)
            }
            return .list(offsets: offsets, values: gather(inner, elements))
        }
    }

    /// Rows `range` (contiguous).
    public func slice(_ range: Range<Int>) -> Column { gather(Array(range)) }

    /// The rows of `parts` one after another (same type).
    public static func concatenate(_ parts: [Column]) -> Column {
        precondition(!parts.isEmpty, "nothing to concatenate")
        let type = parts[0].type
        precondition(parts.allSatisfy { $0.type == type }, "cannot concatenate columns of different types")
        var validity: Validity?
        if parts.contains(where: { $0.validity != nil }) {
            var v = Validity(count: 0, valid: true)
            for p in parts { v.append(p.validity ?? Validity(count: p.count, valid: true)) }
            validity = v
        }
        return Column(type: type, data: concatenate(parts.map(\.data)), validity: validity)
    }

    static func concatenate(_ parts: [ColumnData]) -> ColumnData {
        switch parts[0] {
        case .int64:
            return .int64(parts.flatMap { if case .int64(let v) = $0 { return v } else { fatalError() } })
        case .double:
            return .double(parts.flatMap { if case .double(let v) = $0 { return v } else { fatalError() } })
        case .string:
            var out = StringData()
            for case .string(let s) in parts {
                let base = out.bytes.count
                out.bytes += s.bytes
                out.offsets += s.offsets.dropFirst().map { $0 + base }
            }
            return .string(out)
        case .list:
            var offsets = [0]
            var inners: [ColumnData] = []
            for case .list(let o, let inner) in parts {
                let base = offsets.last!
                offsets += o.dropFirst().map { $0 + base }
                inners.append(inner)
            }
            return .list(offsets: offsets, values: concatenate(inners))
        }
    }

    // MARK: Keys

    /// Appends an unambiguous byte encoding of row `i` (type tag, then the value; strings and
    /// lists length-prefixed) to `key`: equal keys ⇔ equal values (nulls equal each other).
    @inline(__always)
    func appendKey(_ i: Int, to key: inout [UInt8]) {
        if isNull(i) {
            key.append(0)
            return
        }
        Column.appendKey(data, i, to: &key)
    }

    static func appendKey(_ data: ColumnData, _ i: Int, to key: inout [UInt8]) {
        switch data {
        case .int64(let v):
            key.append(1)
            withUnsafeBytes(of: v[i]) { key.append(contentsOf: $0) }
        case .double(let v):
            key.append(2)
            let x = v[i] == 0 ? 0 : v[i]  // -0.0 == 0.0
            withUnsafeBytes(of: x.bitPattern) { key.append(contentsOf: $0) }
        case .string(let s):
            key.append(3)
            let n = s.offsets[i + 1] - s.offsets[i]
            withUnsafeBytes(of: UInt32(n)) { key.append(contentsOf: $0) }
            key.append(contentsOf: s.bytes[s.offsets[i]..<s.offsets[i + 1]])
        case .list(let o, let inner):
            key.append(4)
            withUnsafeBytes(of: UInt32(o[i + 1] - o[i])) { key.append(contentsOf: $0) }
            for e in o[i]..<o[i + 1] { appendKey(inner, e, to: &key) }
        }
    }
}

/// One bit per row: set = valid (not null).
public struct Validity: Sendable, Equatable {
    public private(set) var words: [UInt64]
    public private(set) var count: Int

    public init(count: Int, valid: Bool) {
        self.count = count
        words = [UInt64](repeating: valid ? ~0 : 0, count: (count + 63) / 64)
        trim()
    }

    public init(_ bits: [Bool]) {
        self.init(count: bits.count, valid: false)
        for (i, b) in bits.enumerated() where b { self[i] = true }
    }

    public init(words: [UInt64], count: Int) {
        precondition(words.count == (count + 63) / 64, "bitmap size")
        self.words = words
        self.count = count
        trim()
    }

    private mutating func trim() {
        if count % 64 != 0, !words.isEmpty { words[words.count - 1] &= (1 << UInt64(count % 64)) - 1 }
    }

    @inline(__always)
    public subscript(i: Int) -> Bool {
        get { words[i >> 6] & (1 << UInt64(i & 63)) != 0 }
        set {
            if newValue { words[i >> 6] |= 1 << UInt64(i & 63) } else { words[i >> 6] &= ~(1 << UInt64(i & 63)) }
        }
    }

    public var validCount: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }
    public var allValid: Bool { validCount == count }

    public mutating func append(_ bit: Bool) {
        if count % 64 == 0 { words.append(0) }
        count += 1
        if bit { self[count - 1] = true }
    }

    public mutating func append(_ other: Validity) {
        if count % 64 == 0 {
            words += other.words
            count += other.count
            return
        }
        for i in 0..<other.count { append(other[i]) }
    }
}

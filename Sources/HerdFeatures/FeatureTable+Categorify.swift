import Foundation
import HerdTensor

/// A fitted category index (Friesian `StringIndex`): value → id.
///
/// ```
/// id 0          null, unknown, or seen fewer than freqLimit times at fit time
/// id k ≥ 1      values[k - 1]; values ordered by descending frequency, ties by ascending
///               UTF-8 bytes (so the same data always gives the same ids)
/// ```
///
/// One index may be shared by several columns (e.g. `engaged_with_user_id` and
/// `enaging_user_id`): it is fitted on all their values together. Values are compared as text;
/// an int64 column is indexed by its decimal form.
public struct StringIndex: Sendable, Equatable, Codable {
    /// The columns the index was fitted on (and encodes by default).
    public let columns: [String]
    /// Indexed values; value `values[k]` has id `k + 1`.
    public let values: [String]
    public let freqLimit: Int
    private let lookup: KeyTable

    public init(columns: [String], values: [String], freqLimit: Int) throws {
        var t = KeyTable(capacity: values.count)
        for v in values {
            var s = v
            let inserted = s.withUTF8 { t.insert(UnsafeRawBufferPointer($0)).inserted }
            guard inserted else { throw FeatureError.invalidArgument("string index over \(columns) lists '\(v)' twice") }
        }
        self.columns = columns
        self.values = values
        self.freqLimit = freqLimit
        lookup = t
    }

    /// Rows of an embedding table over these ids (`values.count + 1`, id 0 included).
    public var size: Int { values.count + 1 }

    /// The id of `value` (0 when unknown).
    public func id(of value: String) -> Int64 {
        var s = value
        return s.withUTF8 { id(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always)
    func id(_ bytes: UnsafeRawBufferPointer) -> Int64 { lookup.find(bytes).map { Int64($0 + 1) } ?? 0 }

    enum CodingKeys: String, CodingKey {
        case columns, values
        case freqLimit = "freq_limit"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(columns: try c.decode([String].self, forKey: .columns), values: try c.decode([String].self, forKey: .values),
                      freqLimit: try c.decode(Int.self, forKey: .freqLimit))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(columns, forKey: .columns)
        try c.encode(values, forKey: .values)
        try c.encode(freqLimit, forKey: .freqLimit)
    }

    public static func == (a: StringIndex, b: StringIndex) -> Bool {
        a.columns == b.columns && a.values == b.values && a.freqLimit == b.freqLimit
    }
}

/// Calls `body` with the text of every non-null element of `data` in `rows` (list columns: each
/// element), as bytes: strings as stored, int64 in decimal.
func forEachText(_ column: Column, rows: Range<Int>, _ body: (Int, UnsafeRawBufferPointer) -> Void) {
    func scalar(_ data: ColumnData, _ elements: Range<Int>, row: (Int) -> Int) {
        switch data {
        case .string(let s):
            s.bytes.withUnsafeBytes { b in
                for e in elements {
                    body(row(e), UnsafeRawBufferPointer(rebasing: b[s.offsets[e]..<s.offsets[e + 1]]))
                }
            }
        case .int64(let v):
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { buf in
                for e in elements { body(row(e), decimal(v[e], buf)) }
            }
        default:
            preconditionFailure("text of a \(data) column")
        }
    }
    switch column.data {
    case .list(let o, let inner):
        for r in rows where !column.isNull(r) { scalar(inner, o[r]..<o[r + 1]) { _ in r } }
    default:
        if column.validity == nil {
            scalar(column.data, rows) { $0 }
        } else {
            for r in rows where !column.isNull(r) { scalar(column.data, r..<(r + 1)) { $0 } }
        }
    }
}

/// Writes `x` in decimal into `buf` (≥ 20 bytes) and returns the used part.
@inline(__always)
func decimal(_ x: Int64, _ buf: UnsafeMutableBufferPointer<UInt8>) -> UnsafeRawBufferPointer {
    var m = x.magnitude
    var i = 24
    repeat {
        i -= 1
        buf[i] = UInt8(m % 10) + 48
        m /= 10
    } while m > 0
    if x < 0 {
        i -= 1
        buf[i] = 45
    }
    return UnsafeRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buf)[i..<24])
}

extension FeatureTable {
    func requireIndexable(_ name: String) throws -> Column {
        let c = try column(name)
        guard [.string, .int64, .stringList, .int64List].contains(c.type) else {
            throw FeatureError.wrongType(column: name, type: c.type, expected: "string, int64 or a list of them")
        }
        return c
    }

    /// Friesian `gen_string_idx(order_by_freq=True)`: one index per group of columns, fitted on
    /// the values of all the group's columns together (list columns contribute every element;
    /// nulls are not counted). Values seen fewer than `freqLimit` times are left out (→ id 0).
    public func genStringIndex(_ groups: [[String]], freqLimit: Int = 1) throws -> [StringIndex] {
        guard freqLimit >= 1 else { throw FeatureError.invalidArgument("freqLimit must be >= 1, got \(freqLimit)") }
        return try groups.map { group in
            guard !group.isEmpty else { throw FeatureError.invalidArgument("genStringIndex: an empty column group") }
            let cols = try group.map { try requireIndexable($0) }
            let (table, counts) = countValues(cols)
            var kept = (0..<table.count).filter { counts[$0] >= freqLimit }
            kept.sort { a, b in
                counts[a] != counts[b] ? counts[a] > counts[b] : table.key(a).lexicographicallyPrecedes(table.key(b))
            }
            let values = kept.map { String(decoding: table.key($0), as: UTF8.self) }
            return try StringIndex(columns: group, values: values, freqLimit: freqLimit)
        }
    }

    /// Occurrences of every distinct non-null value (list elements counted one by one) over
    /// `columns`: a key table of the values' texts and a count per key. Counted per worker range,
    /// then merged.
    func countValues(_ cols: [Column]) -> (KeyTable, [Int]) {
        let ranges = Parallel.ranges(rowCount, parts: Parallel.threads)
        var partials = [(KeyTable, [Int])?](repeating: nil, count: ranges.count)
        partials.withUnsafeMutableBufferPointer { out in
            let o = UncheckedSendable(out)
            Parallel.forEach(ranges.count) { p in
                var t = KeyTable(capacity: 1024)
                var counts: [Int] = []
                for c in cols {
                    forEachText(c, rows: ranges[p]) { _, bytes in
                        let (k, inserted) = t.insert(bytes)
                        if inserted { counts.append(1) } else { counts[k] += 1 }
                    }
                }
                o.value[p] = (t, counts)
            }
        }
        var table = KeyTable(capacity: partials.first??.1.count ?? 16)
        var counts: [Int] = []
        for case let (t, c)? in partials {
            t.bytes.withUnsafeBytes { b in
                for k in 0..<t.count {
                    let (g, inserted) = table.insert(UnsafeRawBufferPointer(rebasing: b[t.offsets[k]..<t.offsets[k + 1]]), hash: t.hashes[k])
                    if inserted { counts.append(c[k]) } else { counts[g] += c[k] }
                }
            }
        }
        return (table, counts)
    }

    /// Friesian `encode_string`: replaces each column by its ids under `index` (int64; list
    /// columns become int64 lists, element by element). Null and unknown values → 0; a null list
    /// becomes an empty list.
    ///
    /// NOTE: unknown list elements are kept as 0 (Friesian drops them) so a list keeps its length
    /// and stays aligned with parallel lists.
    public func encode(_ columns: [String], with index: StringIndex) throws -> FeatureTable {
        var out = self
        for name in columns {
            let c = try requireIndexable(name)
            let ranges = Parallel.ranges(rowCount, parts: Parallel.threads * 4)
            if case .list(let o, _) = c.data {
                var ids = [Int64](repeating: 0, count: o.last!)
                var offsets = o
                ids.withUnsafeMutableBufferPointer { buf in
                    let b = UncheckedSendable(buf)
                    Parallel.forEach(ranges.count) { p in
                        var e = 0
                        var lastRow = -1
                        forEachText(c, rows: ranges[p]) { r, bytes in
                            if r != lastRow { e = o[r]; lastRow = r }
                            b.value[e] = index.id(bytes)
                            e += 1
                        }
                    }
                }
                if let v = c.validity {  // null lists → empty lists: drop their elements
                    var keep: [Int] = []
                    offsets = [0]
                    for r in 0..<rowCount {
                        if v[r] { keep.append(contentsOf: o[r]..<o[r + 1]) }
                        offsets.append(keep.count)
                    }
                    ids = keep.map { ids[$0] }
                }
                out = try out.with(name, Column(type: .int64List, data: .list(offsets: offsets, values: .int64(ids))))
            } else {
                var ids = [Int64](repeating: 0, count: rowCount)
                ids.withUnsafeMutableBufferPointer { buf in
                    let b = UncheckedSendable(buf)
                    Parallel.forEach(ranges.count) { p in
                        forEachText(c, rows: ranges[p]) { r, bytes in b.value[r] = index.id(bytes) }
                    }
                }
                out = try out.with(name, Column(type: .int64, data: .int64(ids)))
            }
        }
        return out
    }

    /// Friesian `category_encode`: `genStringIndex` then `encode`, each group with its own
    /// shared index. Returns the indices for re-application.
    public func categorify(_ groups: [[String]], freqLimit: Int = 1) throws -> (FeatureTable, [StringIndex]) {
        let indices = try genStringIndex(groups, freqLimit: freqLimit)
        var out = self
        for index in indices { out = try out.encode(index.columns, with: index) }
        return (out, indices)
    }
}

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
    ///
    /// NOTE: an index loaded from a sidecar has only its lookup table; the strings are made from
    /// its bytes on first use (applying a pipeline never needs them: 345k fewer allocations when
    /// loading the RecSys indices).
    public var values: [String] { store.values }
    public let freqLimit: Int
    private let lookup: KeyTable
    private let store: ValueStore

    /// An index over distinct `values` whose `lookup` already numbers them in order (fitting);
    /// without `values`, they are made from `lookup` when asked for.
    init(columns: [String], values: [String]?, freqLimit: Int, lookup: KeyTable) {
        precondition(values.map { lookup.count == $0.count } ?? true, "the lookup table must hold the values")
        self.columns = columns
        self.freqLimit = freqLimit
        self.lookup = lookup
        store = ValueStore(values: values, table: lookup)
    }

    public init(columns: [String], values: [String], freqLimit: Int) throws {
        var t = KeyTable(capacity: values.count)
        for v in values {
            var s = v
            let inserted = s.withUTF8 { t.insert(UnsafeRawBufferPointer($0)).inserted }
            guard inserted else { throw FeatureError.invalidArgument("string index over \(columns) lists '\(v)' twice") }
        }
        self.columns = columns
        self.freqLimit = freqLimit
        lookup = t
        store = ValueStore(values: values, table: t)
    }

    /// Rows of an embedding table over these ids (`values.count + 1`, id 0 included).
    public var size: Int { lookup.count + 1 }

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
        let columns = try c.decode([String].self, forKey: .columns)
        let freqLimit = try c.decode(Int.self, forKey: .freqLimit)
        if let table = try c.decodeTable(forKey: .values, userInfo: decoder.userInfo) {  // from a sidecar: in order, no repeats
            self.init(columns: columns, values: nil, freqLimit: freqLimit, lookup: table)
        } else {
            try self.init(columns: columns, values: try c.decodeStrings(forKey: .values, userInfo: decoder.userInfo), freqLimit: freqLimit)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(columns, forKey: .columns)
        // NOTE: a long index goes to `StringArrays` as its lookup table, written from the table's
        // bytes (the same bytes the strings would give: checked valid UTF-8), so saving a fitted
        // pipeline makes no string per value.
        if lookup.count >= StringArrays.minimum, let stash = encoder.userInfo[StringArrays.key] as? StringArrays, lookup.isValidUTF8 {
            try c.encode(stash.placeholder(table: lookup), forKey: .values)
        } else {
            try c.encodeStrings(values, forKey: .values, userInfo: encoder.userInfo)
        }
        try c.encode(freqLimit, forKey: .freqLimit)
    }

    public static func == (a: StringIndex, b: StringIndex) -> Bool {
        // NOTE: the values' bytes, in order (what lookups compare), without making strings.
        a.columns == b.columns && a.freqLimit == b.freqLimit && a.lookup.offsets == b.lookup.offsets && a.lookup.bytes == b.lookup.bytes
    }
}

/// The values of a `StringIndex` as strings, made from its lookup table on first use.
final class ValueStore: @unchecked Sendable {
    private let lock = NSLock()
    private var cached: [String]?
    private let table: KeyTable

    init(values: [String]?, table: KeyTable) {
        cached = values
        self.table = table
    }

    var values: [String] {
        lock.lock()
        defer { lock.unlock() }
        if let cached { return cached }
        let made = table.bytes.withUnsafeBytes { by in
            table.offsets.withUnsafeBufferPointer { o in
                (0..<table.count).map { String(decoding: UnsafeRawBufferPointer(rebasing: by[o[$0]..<o[$0 + 1]]), as: UTF8.self) }
            }
        }
        cached = made
        return made
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
            let counted = countValues(cols)
            return try FeatureTable.index(group, counted.table, counted.counts, freqLimit: freqLimit).index
        }
    }

    /// The index of the keys of `table` seen at least `freqLimit` times (by descending count, ties
    /// by ascending bytes), and each key's id (0: left out).
    ///
    /// NOTE: ordered by `indexOrder` (a radix sort on count and first 8 bytes; only keys sharing
    /// both fall back to `memcmp`). The index's lookup table is built from the hashes `table`
    /// already holds.
    static func index(_ group: [String], _ table: KeyTable, _ counts: [Int], freqLimit: Int) throws -> (index: StringIndex, ids: [Int64]) {
        let kept = indexOrder(table, counts, freqLimit: freqLimit)
        var ids = [Int64](repeating: 0, count: table.count)
        for (i, k) in kept.enumerated() { ids[Int(k)] = Int64(i + 1) }
        var lookup = KeyTable(capacity: kept.count)
        table.bytes.withUnsafeBytes { by in
            for k in kept.lazy.map(Int.init) {
                _ = lookup.insert(UnsafeRawBufferPointer(rebasing: by[table.offsets[k]..<table.offsets[k + 1]]), hash: table.hashes[k])
            }
        }
        // NOTE: no value strings: `values` makes them if asked (saving writes the table's bytes).
        return (StringIndex(columns: group, values: nil, freqLimit: freqLimit, lookup: lookup), ids)
    }

    /// A key to sort in `indexOrderByComparison`.
    struct SortRecord {
        var count: Int
        var prefix: UInt64
        var key: Int
    }

    /// The first 8 bytes of `bytes[lo..<hi]` as a big-endian integer, zero-padded.
    @inline(__always)
    static func prefix8(_ bytes: UnsafeRawBufferPointer, _ lo: Int, _ hi: Int) -> UInt64 {
        let n = hi - lo
        if n >= 8 { return UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: lo, as: UInt64.self)) }
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | (i < n ? UInt64(bytes[lo + i]) : 0) }
        return v
    }

    /// What `countValues` found.
    struct CountedValues {
        /// Every distinct non-null value's text, and its count.
        var table: KeyTable
        var counts: [Int]
        /// The worker ranges of rows counted.
        var ranges: [Range<Int>]
        /// With `recordKeys`, per range and column: the key (in `table`) of every value visited,
        /// in `forEachText` order.
        var keys: [[[Int32]]]
    }

    /// Occurrences of every distinct non-null value (list elements counted one by one) over
    /// `columns`: a key table of the values' texts and a count per key. Counted per worker range,
    /// then merged. With `recordKeys`, also each visited value's key, so the fitting table can be
    /// encoded without hashing its values again (`categorify`).
    func countValues(_ cols: [Column], recordKeys: Bool = false) -> CountedValues {
        let ranges = Parallel.ranges(rowCount, parts: Parallel.threads)
        var partials = [(KeyTable, [Int], [[Int32]])?](repeating: nil, count: ranges.count)
        partials.withUnsafeMutableBufferPointer { out in
            let o = UncheckedSendable(out)
            Parallel.forEach(ranges.count) { p in
                var t = KeyTable(capacity: 1024)
                var counts: [Int] = []
                var keys: [[Int32]] = []
                for c in cols {
                    var visited: [Int32] = []
                    if recordKeys {  // NOTE: sized once (rows or list elements in the range), not regrown
                        let r = ranges[p]
                        if case .list(let o, _) = c.data { visited.reserveCapacity(o[r.upperBound] - o[r.lowerBound]) } else { visited.reserveCapacity(r.count) }
                    }
                    if !countStrings(c, rows: ranges[p], into: &t, counts: &counts, record: recordKeys, visited: &visited) {
                        forEachText(c, rows: ranges[p]) { _, bytes in
                            let (k, inserted) = t.insert(bytes)
                            if inserted { counts.append(1) } else { counts[k] += 1 }
                            if recordKeys { visited.append(Int32(k)) }
                        }
                    }
                    keys.append(visited)
                }
                o.value[p] = (t, counts, keys)
            }
        }
        // NOTE: the first worker's table is the start of the merged one (the same keys in the
        // same order as inserting them into an empty table), so only the others are re-inserted.
        guard case let (first, firstCounts, firstKeys)?? = partials.first else {
            return CountedValues(table: KeyTable(), counts: [], ranges: ranges, keys: [])
        }
        var table = first
        var counts = firstCounts
        var keys: [[[Int32]]] = [recordKeys ? firstKeys : []]
        for case let (t, c, local)? in partials.dropFirst() {
            var global = [Int32](repeating: 0, count: t.count)
            t.bytes.withUnsafeBytes { b in
                for k in 0..<t.count {
                    let (g, inserted) = table.insert(UnsafeRawBufferPointer(rebasing: b[t.offsets[k]..<t.offsets[k + 1]]), hash: t.hashes[k])
                    if inserted { counts.append(c[k]) } else { counts[g] += c[k] }
                    global[k] = Int32(g)
                }
            }
            keys.append(recordKeys ? local.map { $0.map { global[Int($0)] } } : [])
        }
        return CountedValues(table: table, counts: counts, ranges: ranges, keys: keys)
    }

    /// `countValues`' path for string and string-list columns: counts the values of `rows` (in
    /// `forEachText` order, nulls and null lists skipped) with `KeyTable.count`, run by run of
    /// contiguous valid rows. Returns false (nothing counted) for other column types.
    func countStrings(
        _ c: Column, rows: Range<Int>, into t: inout KeyTable, counts: inout [Int], record: Bool, visited: inout [Int32]
    ) -> Bool {
        let s: StringData
        var rowOffsets: [Int]? = nil
        switch c.data {
        case .string(let d): s = d
        case .list(let o, .string(let d)):
            s = d
            rowOffsets = o
        default: return false
        }
        s.bytes.withUnsafeBytes { by in
            s.offsets.withUnsafeBufferPointer { off in
                /// Counts the values of the valid rows `run`.
                func count(_ run: Range<Int>) {
                    let elements = rowOffsets.map { $0[run.lowerBound]..<$0[run.upperBound] } ?? run
                    t.count(packed: by, offsets: off, elements: elements, counts: &counts, record: record, visited: &visited)
                }
                guard let v = c.validity else { return count(rows) }
                var r = rows.lowerBound
                while r < rows.upperBound {
                    while r < rows.upperBound && !v[r] { r += 1 }
                    let start = r
                    while r < rows.upperBound && v[r] { r += 1 }
                    if r > start { count(start..<r) }
                }
            }
        }
        return true
    }

    /// Friesian `encode_string`: replaces each column by its ids under `index` (int64; list
    /// columns become int64 lists, element by element). Null and unknown values → 0; a null list
    /// becomes an empty list.
    ///
    /// NOTE: unknown list elements are kept as 0 (Friesian drops them) so a list keeps its length
    /// and stays aligned with parallel lists.
    public func encode(_ columns: [String], with index: StringIndex) throws -> FeatureTable {
        var out = self
        let ranges = Parallel.ranges(rowCount, parts: Parallel.threads * 4)
        for name in columns {
            let c = try requireIndexable(name)
            out = try out.with(name, encoded(c, ranges: ranges) { _, _, bytes in index.id(bytes) })
        }
        return out
    }

    /// `c` with every visited value (as `forEachText` visits them in each of `ranges`) replaced
    /// by `id(range, position of the value in the range's visit order, text)`; nulls → 0, null
    /// lists → empty lists.
    func encoded(_ c: Column, ranges: [Range<Int>], _ id: (Int, Int, UnsafeRawBufferPointer) -> Int64) -> Column {
        if case .list(let o, _) = c.data {
            var ids = [Int64](repeating: 0, count: o.last!)
            var offsets = o
            ids.withUnsafeMutableBufferPointer { buf in
                let b = UncheckedSendable(buf)
                Parallel.forEach(ranges.count) { p in
                    var e = 0
                    var lastRow = -1
                    var k = 0
                    forEachText(c, rows: ranges[p]) { r, bytes in
                        if r != lastRow { e = o[r]; lastRow = r }
                        b.value[e] = id(p, k, bytes)
                        e += 1
                        k += 1
                    }
                }
            }
            if let v = c.validity { (offsets, ids) = FeatureTable.droppingNullLists(ids, o, v) }
            return Column(type: .int64List, data: .list(offsets: offsets, values: .int64(ids)))
        } else {
            var ids = [Int64](repeating: 0, count: rowCount)
            ids.withUnsafeMutableBufferPointer { buf in
                let b = UncheckedSendable(buf)
                Parallel.forEach(ranges.count) { p in
                    var k = 0
                    forEachText(c, rows: ranges[p]) { r, bytes in
                        b.value[r] = id(p, k, bytes)
                        k += 1
                    }
                }
            }
            return Column(type: .int64, data: .int64(ids))
        }
    }

    /// Element ids `ids` of a list column with row offsets `o` without the elements of the null
    /// rows of `v` (null lists → empty lists), and the new offsets.
    static func droppingNullLists(_ ids: [Int64], _ o: [Int], _ v: Validity) -> ([Int], [Int64]) {
        let rowCount = o.count - 1
        var kept: [Int64] = []
        kept.reserveCapacity(ids.count)
        var offsets = [Int](repeating: 0, count: rowCount + 1)
        for r in 0..<rowCount {
            if v[r] { kept.append(contentsOf: ids[o[r]..<o[r + 1]]) }
            offsets[r + 1] = kept.count
        }
        return (offsets, kept)
    }

    /// `encoded(c, ranges: counted.ranges)` with the ids of the keys `countValues(recordKeys:
    /// true)` recorded for `c` as its `column`-th: the visited values in `forEachText` order (list
    /// elements of the non-null rows, or the non-null rows) take `idOfKey[key]`, nulls 0, null
    /// lists become empty lists.
    ///
    /// NOTE: through pointers taken once per range: the closure of `encoded` read the nested
    /// `counted.keys[p][column][k]` per value, retaining and releasing the arrays every time.
    static func encoded(_ c: Column, rowCount: Int, _ counted: CountedValues, column j: Int, _ idOfKey: [Int64]) -> Column {
        let elements: Int
        if case .list(let o, _) = c.data { elements = o.last! } else { elements = rowCount }
        var ids = [Int64](repeating: 0, count: elements)
        ids.withUnsafeMutableBufferPointer { buf in
            let b = UncheckedSendable(buf)
            idOfKey.withUnsafeBufferPointer { idOf in
                Parallel.forEach(counted.ranges.count) { p in
                    counted.keys[p][j].withUnsafeBufferPointer { keys in
                        let rows = counted.ranges[p]
                        var k = 0
                        if case .list(let o, _) = c.data {
                            o.withUnsafeBufferPointer { o in
                                for r in rows where !c.isNull(r) {
                                    for e in o[r]..<o[r + 1] {
                                        b.value[e] = idOf[Int(keys[k])]
                                        k += 1
                                    }
                                }
                            }
                        } else {
                            for r in rows where !c.isNull(r) {
                                b.value[r] = idOf[Int(keys[k])]
                                k += 1
                            }
                        }
                        precondition(k == keys.count, "a key per visited value")
                    }
                }
            }
        }
        guard case .list(let o, _) = c.data else { return Column(type: .int64, data: .int64(ids)) }
        var offsets = o
        if let v = c.validity { (offsets, ids) = droppingNullLists(ids, o, v) }
        return Column(type: .int64List, data: .list(offsets: offsets, values: .int64(ids)))
    }

    /// The ids of a scalar column without nulls that `countValues(recordKeys: true)` visited as
    /// its `column`-th: row r of range p holds `idOfKey[keys[p][column][r - p.lowerBound]]`.
    static func ids(of counted: CountedValues, column j: Int, _ idOfKey: [Int64]) -> [Int64] {
        let rows = counted.ranges.last?.upperBound ?? 0
        return [Int64](unsafeUninitializedCapacity: rows) { buf, n in
            let b = UncheckedSendable(buf)
            idOfKey.withUnsafeBufferPointer { idOf in
                Parallel.forEach(counted.ranges.count) { p in
                    let lo = counted.ranges[p].lowerBound
                    counted.keys[p][j].withUnsafeBufferPointer { keys in
                        precondition(keys.count == counted.ranges[p].count, "a key per row")
                        for (i, k) in keys.enumerated() { (b.value.baseAddress! + lo + i).initialize(to: idOf[Int(k)]) }
                    }
                }
            }
            n = rows
        }
    }

    /// Friesian `category_encode`: `genStringIndex` then `encode`, each group with its own
    /// shared index. Returns the indices for re-application.
    ///
    /// NOTE: fitted and encoded in one pass over the values: counting records each value's key,
    /// so this table's ids come from arrays instead of a second round of hashing and lookups.
    public func categorify(_ groups: [[String]], freqLimit: Int = 1) throws -> (FeatureTable, [StringIndex]) {
        guard freqLimit >= 1 else { throw FeatureError.invalidArgument("freqLimit must be >= 1, got \(freqLimit)") }
        var out = self
        var indices: [StringIndex] = []
        for group in groups {
            guard !group.isEmpty else { throw FeatureError.invalidArgument("genStringIndex: an empty column group") }
            let cols = try group.map { try requireIndexable($0) }
            let counted = countValues(cols, recordKeys: true)
            let (index, idOfKey) = try FeatureTable.index(group, counted.table, counted.counts, freqLimit: freqLimit)
            for (j, (name, c)) in zip(group, cols).enumerated() {
                if !c.type.isList && c.validity == nil {
                    // NOTE: every row was visited once, in order: its id is read straight from
                    // the recorded keys, without visiting the values' texts again.
                    out = try out.with(name, Column(type: .int64, data: .int64(FeatureTable.ids(of: counted, column: j, idOfKey))))
                } else {
                    out = try out.with(name, FeatureTable.encoded(c, rowCount: rowCount, counted, column: j, idOfKey))
                }
            }
            indices.append(index)
        }
        return (out, indices)
    }
}

import Foundation

/// Rows grouped by the values of key columns (nulls form their own group, as in Spark).
///
/// ```
/// group      [rows]    group number of each row; groups numbered by first appearance
/// firstRow   [groups]  the first row of each group
/// keys                 the serialised key of each group (`Column.appendKey`)
/// ```
struct Grouping {
    var group: [Int]
    var firstRow: [Int]
    var keys: KeyTable

    var count: Int { firstRow.count }

    init(_ columns: [Column], rows: Int) {
        keys = KeyTable(capacity: 1024)
        group = [Int](repeating: 0, count: rows)
        firstRow = []
        var scratch: [UInt8] = []
        for r in 0..<rows {
            scratch.removeAll(keepingCapacity: true)
            for c in columns { c.appendKey(r, to: &scratch) }
            let (g, inserted) = scratch.withUnsafeBytes { keys.insert($0) }
            if inserted { firstRow.append(r) }
            group[r] = g
        }
    }
}

/// An aggregation of `groupBy(…).agg(…)`; output names follow Spark (`count`, `avg(x)`, …).
public enum Aggregation: Sendable, Equatable {
    /// Rows per group (nulls included), int64, named `count`.
    case count
    /// Mean of the non-null values (null when there are none), double, `avg(column)`.
    case mean(String)
    /// Sum of the non-null values, double, `sum(column)`.
    case sum(String)
    /// Minimum / maximum of the non-null values, double, `min(column)` / `max(column)`.
    case min(String)
    case max(String)

    public var outputName: String {
        switch self {
        case .count: return "count"
        case .mean(let c): return "avg(\(c))"
        case .sum(let c): return "sum(\(c))"
        case .min(let c): return "min(\(c))"
        case .max(let c): return "max(\(c))"
        }
    }
}

/// A table grouped by key columns, waiting for `agg`.
public struct GroupedTable: Sendable {
    public let table: FeatureTable
    public let keys: [String]

    /// One row per distinct key (in order of first appearance): the key columns, then one column
    /// per aggregation.
    public func agg(_ aggregations: [Aggregation]) throws -> FeatureTable {
        let keyColumns = try keys.map { try table.column($0) }
        let g = Grouping(keyColumns, rows: table.rowCount)
        var out = try table.select(keys).gather(g.firstRow)
        for a in aggregations {
            let column: Column
            switch a {
            case .count:
                var counts = [Int64](repeating: 0, count: g.count)
                for r in 0..<table.rowCount { counts[g.group[r]] += 1 }
                column = Column(type: .int64, data: .int64(counts))
            case .mean(let name), .sum(let name), .min(let name), .max(let name):
                let (v, validity) = try table.numeric(name)
                var acc = [Double](repeating: 0, count: g.count)
                var n = [Int](repeating: 0, count: g.count)
                for r in 0..<table.rowCount where validity?[r] ?? true {
                    let k = g.group[r]
                    switch a {
                    case .min: acc[k] = n[k] == 0 ? v[r] : Swift.min(acc[k], v[r])
                    case .max: acc[k] = n[k] == 0 ? v[r] : Swift.max(acc[k], v[r])
                    default: acc[k] += v[r]
                    }
                    n[k] += 1
                }
                if case .mean = a { for k in 0..<g.count where n[k] > 0 { acc[k] /= Double(n[k]) } }
                let valid: Validity? = {
                    if case .sum = a { return nil }
                    return Validity(n.map { $0 > 0 })
                }()
                column = Column(type: .double, data: .double(acc), validity: valid)
            }
            out = try out.with(a.outputName, column)
        }
        return out
    }
}

/// How `join` treats rows of the left table without a match.
public enum JoinKind: String, Sendable, Codable {
    /// Only rows with a match.
    case inner
    /// Every left row; right columns are null when there is no match.
    case left
}

extension FeatureTable {
    /// Groups rows by `keys` (Friesian `group_by`); aggregate with `.agg([...])`.
    public func groupBy(_ keys: [String]) throws -> GroupedTable {
        guard !keys.isEmpty else { throw FeatureError.invalidArgument("groupBy: give at least one key column") }
        try requireColumns(keys)
        return GroupedTable(table: self, keys: keys)
    }

    /// The first row of every distinct combination of `columns` (all columns when nil), in
    /// order.
    public func dropDuplicates(_ columns: [String]? = nil) throws -> FeatureTable {
        let cs = try (columns ?? names).map { try column($0) }
        return gather(Grouping(cs, rows: rowCount).firstRow)
    }

    /// Joins with `other` on equal values of the key columns `on` (same names and types on both
    /// sides; a null key matches nothing, as in SQL). Output: the left columns, then the right
    /// table's other columns; rows in left order, each followed by its matches in right order.
    /// A non-key name present on both sides is an error (rename first).
    public func join(_ other: FeatureTable, on keys: [String], how: JoinKind = .inner) throws -> FeatureTable {
        guard !keys.isEmpty else { throw FeatureError.invalidArgument("join: give at least one key column") }
        let leftKeys = try keys.map { try column($0) }
        let rightKeys = try keys.map { try other.column($0) }
        for (k, (l, r)) in zip(keys, zip(leftKeys, rightKeys)) where l.type != r.type {
            throw FeatureError.invalidArgument("join: key '\(k)' is \(l.type) on the left and \(r.type) on the right")
        }
        let rightNames = other.names.filter { !keys.contains($0) }
        if let clash = rightNames.first(where: { names.contains($0) }) {
            throw FeatureError.invalidArgument("join: both tables have a column '\(clash)'; rename one first")
        }
        // Right side: key → rows, as a chain (head per key, next per row).
        var table = KeyTable(capacity: other.rowCount)
        var head: [Int] = [], tail: [Int] = []
        var next = [Int](repeating: -1, count: other.rowCount)
        var scratch: [UInt8] = []
        for r in 0..<other.rowCount where !rightKeys.contains(where: { $0.isNull(r) }) {
            scratch.removeAll(keepingCapacity: true)
            for c in rightKeys { c.appendKey(r, to: &scratch) }
            let (k, inserted) = scratch.withUnsafeBytes { table.insert($0) }
            if inserted {
                head.append(r)
                tail.append(r)
            } else {
                next[tail[k]] = r
                tail[k] = r
            }
        }
        var leftRows: [Int] = [], rightRows: [Int] = []
        for r in 0..<rowCount {
            var match = -1
            if !leftKeys.contains(where: { $0.isNull(r) }) {
                scratch.removeAll(keepingCapacity: true)
                for c in leftKeys { c.appendKey(r, to: &scratch) }
                if let k = scratch.withUnsafeBytes({ table.find($0) }) { match = head[k] }
            }
            if match < 0 {
                if how == .left {
                    leftRows.append(r)
                    rightRows.append(-1)
                }
                continue
            }
            while match >= 0 {
                leftRows.append(r)
                rightRows.append(match)
                match = next[match]
            }
        }
        let left = gather(leftRows)
        let right = try other.select(rightNames).gather(rightRows)
        return try FeatureTable(Array(zip(left.names, left.columns)) + Array(zip(right.names, right.columns)))
    }
}

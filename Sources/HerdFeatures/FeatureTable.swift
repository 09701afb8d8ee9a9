import Foundation
import HerdTensor

/// An in-memory columnar table: ordered, uniquely named columns of equal length — the counterpart
/// of BigDL Friesian's `FeatureTable`.
///
/// ```
/// names    [c]      column names, in order
/// columns  [c]      Column (typed storage + validity), each `rowCount` rows
/// ```
///
/// Value semantics: a `FeatureTable` is a struct of arrays, copies are O(1) and copy-on-write.
/// Every operation returns a new table (Friesian style) and leaves the receiver unchanged.
public struct FeatureTable: Sendable, Equatable {
    public private(set) var names: [String]
    public private(set) var columns: [Column]
    public let rowCount: Int

    /// A table of `columns` (name, column) in order; names unique, lengths equal.
    public init(_ columns: [(String, Column)]) throws {
        var seen = Set<String>()
        for (name, _) in columns where !seen.insert(name).inserted { throw FeatureError.duplicateColumn(name) }
        let n = columns.first?.1.count ?? 0
        if let bad = columns.first(where: { $0.1.count != n }) {
            throw FeatureError.shapeMismatch("column '\(bad.0)' has \(bad.1.count) rows, expected \(n)")
        }
        names = columns.map(\.0)
        self.columns = columns.map(\.1)
        rowCount = n
    }

    /// An empty table with no columns.
    public init() {
        names = []
        columns = []
        rowCount = 0
    }

    public var columnCount: Int { names.count }
    /// (name, type) per column.
    public var schema: [(name: String, type: ColumnType)] { zip(names, columns).map { ($0, $1.type) } }

    /// Position of `name`; throws `unknownColumn`.
    public func index(of name: String) throws -> Int {
        guard let i = names.firstIndex(of: name) else { throw FeatureError.unknownColumn(name, available: names) }
        return i
    }

    public func contains(_ name: String) -> Bool { names.contains(name) }

    /// The column `name`; throws `unknownColumn`.
    public func column(_ name: String) throws -> Column { columns[try index(of: name)] }

    /// The column `name` (traps when absent: for tests and code that checked `contains`).
    public subscript(name: String) -> Column {
        guard let i = names.firstIndex(of: name) else { preconditionFailure("no column '\(name)'") }
        return columns[i]
    }

    /// Row `i` as values, in column order (slow path).
    public func row(_ i: Int) -> [Value] { columns.map { $0[i] } }

    // MARK: Column set operations

    /// Replaces the column `name`, or appends it when absent.
    public func with(_ name: String, _ column: Column) throws -> FeatureTable {
        guard column.count == rowCount || columns.isEmpty else {
            throw FeatureError.shapeMismatch("column '\(name)' has \(column.count) rows, expected \(rowCount)")
        }
        var pairs = Array(zip(names, columns))
        if let i = names.firstIndex(of: name) { pairs[i].1 = column } else { pairs.append((name, column)) }
        return try FeatureTable(pairs)
    }

    /// The columns `names`, in that order.
    public func select(_ names: [String]) throws -> FeatureTable {
        try FeatureTable(names.map { ($0, try column($0)) })
    }

    public func select(_ names: String...) throws -> FeatureTable { try select(names) }

    /// Without the columns `names` (every name must exist).
    public func drop(_ names: [String]) throws -> FeatureTable {
        for n in names { _ = try index(of: n) }
        return try FeatureTable(zip(self.names, columns).filter { !names.contains($0.0) })
    }

    /// Renames columns (`old → new`).
    public func rename(_ mapping: [String: String]) throws -> FeatureTable {
        for old in mapping.keys { _ = try index(of: old) }
        return try FeatureTable(zip(names, columns).map { (mapping[$0.0] ?? $0.0, $0.1) })
    }

    // MARK: Row operations

    /// The rows `rows`, in that order (-1 gives an all-null row).
    public func gather(_ rows: [Int]) -> FeatureTable {
        FeatureTable(uncheckedNames: names, columns: gatherColumns(rows), rowCount: rows.count)
    }

    func gatherColumns(_ rows: [Int]) -> [Column] {
        var out = [Column?](repeating: nil, count: columns.count)
        let box = UncheckedSendable(columns)
        out.withUnsafeMutableBufferPointer { o in
            let ob = UncheckedSendable(o)
            Parallel.forEach(columns.count) { c in ob.value[c] = box.value[c].gather(rows) }
        }
        return out.map { $0! }
    }

    init(uncheckedNames names: [String], columns: [Column], rowCount: Int) {
        self.names = names
        self.columns = columns
        self.rowCount = rowCount
    }

    /// Rows `range`.
    public func slice(_ range: Range<Int>) -> FeatureTable { gather(Array(range)) }

    /// The first `n` rows.
    public func head(_ n: Int) -> FeatureTable { slice(0..<min(n, rowCount)) }

    /// The rows whose `column` value satisfies `predicate` (nulls are passed as `.null`).
    ///
    /// NOTE: the predicate sees a `Value` per row, which is convenient but slow; for numeric
    /// columns `filter(_:where:)` on Double is the fast path.
    public func filter(_ column: String, _ predicate: (Value) -> Bool) throws -> FeatureTable {
        let c = try self.column(column)
        return gather((0..<rowCount).filter { predicate(c[$0]) })
    }

    /// The rows whose numeric `column` is non-null and satisfies `predicate`.
    public func filter(_ column: String, numeric predicate: (Double) -> Bool) throws -> FeatureTable {
        let c = try self.column(column)
        guard let v = c.numericValues else { throw FeatureError.wrongType(column: column, type: c.type, expected: "int64 or double") }
        return gather((0..<rowCount).filter { !c.isNull($0) && predicate(v[$0]) })
    }

    /// Rows where `column` is not null.
    public func dropNulls(_ columns: [String]) throws -> FeatureTable {
        let cs = try columns.map { try column($0) }
        return gather((0..<rowCount).filter { r in cs.allSatisfy { !$0.isNull(r) } })
    }

    /// Splits the rows at random into parts of (approximately) the given relative `weights`,
    /// keeping the row order inside each part. Deterministic for a seed.
    ///
    /// NOTE: like Spark's `randomSplit`, each row draws one uniform number and falls into the part
    /// whose cumulative-weight interval contains it, so part sizes are binomial, not exact.
    public func randomSplit(_ weights: [Double], seed: UInt64) throws -> [FeatureTable] {
        guard !weights.isEmpty, weights.allSatisfy({ $0 >= 0 }), weights.reduce(0, +) > 0 else {
            throw FeatureError.invalidArgument("randomSplit: weights must be non-negative with a positive sum")
        }
        let total = weights.reduce(0, +)
        var bounds: [Double] = []
        var acc = 0.0
        for w in weights {
            acc += w / total
            bounds.append(acc)
        }
        bounds[bounds.count - 1] = 1.0
        var rng = SplitMix64(seed: seed)
        var parts = [[Int]](repeating: [], count: weights.count)
        for r in 0..<rowCount {
            let u = rng.nextDouble()
            let p = bounds.firstIndex { u < $0 } ?? (weights.count - 1)
            parts[p].append(r)
        }
        return parts.map { gather($0) }
    }

    /// Rows of `self` followed by the rows of `other` (same names and types, in the same order).
    public func union(_ other: FeatureTable) throws -> FeatureTable {
        guard names == other.names, zip(columns, other.columns).allSatisfy({ $0.type == $1.type }) else {
            throw FeatureError.shapeMismatch("union: the tables have different columns or types")
        }
        return FeatureTable(
            uncheckedNames: names, columns: zip(columns, other.columns).map { Column.concatenate([$0, $1]) },
            rowCount: rowCount + other.rowCount)
    }
}

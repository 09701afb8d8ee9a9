import Foundation
import HerdTensor

extension FeatureTable {
    /// 1 where the column is non-null, 0 where it is null, as int64 columns named `outColumns`
    /// (default: replacing the columns). The RecSys 2021 labels are `notNull` of the engagement
    /// timestamps (Friesian does it with `apply(lambda x: int(x is not None))`).
    public func notNull(_ columns: [String], outColumns: [String]? = nil) throws -> FeatureTable {
        if let o = outColumns, o.count != columns.count {
            throw FeatureError.invalidArgument("notNull: \(o.count) output columns for \(columns.count) columns")
        }
        var out = self
        for (k, name) in columns.enumerated() {
            let c = try column(name)
            let flags: [Int64]
            if let v = c.validity {
                flags = v.words.withUnsafeBufferPointer { w in
                    FeatureTable.rowParallel(rowCount) { rows, f in
                        for r in rows { f[r] = Int64(truncatingIfNeeded: (w[r >> 6] >> UInt64(r & 63)) & 1) }
                    }
                }
            } else {
                flags = [Int64](repeating: 1, count: rowCount)
            }
            out = try out.with(outColumns?[k] ?? name, Column(type: .int64, data: .int64(flags)))
        }
        return out
    }

    /// The number of elements of list columns (null → 0), as int64 columns named `outColumns`
    /// (default: replacing the columns), e.g. RecSys 2021 `len_hashtags`.
    public func listLength(_ columns: [String], outColumns: [String]? = nil) throws -> FeatureTable {
        if let o = outColumns, o.count != columns.count {
            throw FeatureError.invalidArgument("listLength: \(o.count) output columns for \(columns.count) columns")
        }
        var out = self
        for (k, name) in columns.enumerated() {
            let c = try column(name)
            guard let (o, _) = c.listParts else { throw FeatureError.wrongType(column: name, type: c.type, expected: "a list column") }
            let lengths: [Int64] = o.withUnsafeBufferPointer { o in
                FeatureTable.rowParallel(rowCount) { rows, f in
                    for r in rows { f[r] = Int64(o[r + 1] - o[r]) }
                }
            }
            out = try out.with(outColumns?[k] ?? name, Column(type: .int64, data: .int64(lengths)))
        }
        return out
    }
}

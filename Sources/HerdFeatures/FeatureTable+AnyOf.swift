import Foundation
import HerdTensor

extension FeatureTable {
    /// An int64 column `outColumn`: 1 where any of `columns` holds a non-null, non-zero number,
    /// else 0 — Friesian's RecSys 2021 `label` (`1 if max(timestamps) > 0 else 0` over the
    /// engagement timestamps filled with 0), computed here from their `notNull` flags.
    public func anyOf(_ columns: [String], outColumn: String) throws -> FeatureTable {
        guard !columns.isEmpty else { throw FeatureError.invalidArgument("anyOf: give at least one column") }
        let cs = try columns.map { name in
            let c = try column(name)
            guard c.type.isNumeric else { throw FeatureError.wrongType(column: name, type: c.type, expected: "int64 or double") }
            return c
        }
        // NOTE: rows split across workers, each worker's rows through every column.
        let flags: [Int64] = FeatureTable.rowParallel(rowCount) { rows, f in
            for r in rows { f[r] = 0 }
            for c in cs {
                switch c.data {
                case .int64(let v): v.withUnsafeBufferPointer { v in for r in rows where v[r] != 0 && !c.isNull(r) { f[r] = 1 } }
                case .double(let v): v.withUnsafeBufferPointer { v in for r in rows where v[r] != 0 && !v[r].isNaN && !c.isNull(r) { f[r] = 1 } }
                default: break
                }
            }
        }
        return try with(outColumn, Column(type: .int64, data: .int64(flags)))
    }
}

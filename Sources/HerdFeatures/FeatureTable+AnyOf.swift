import Foundation

extension FeatureTable {
    /// An int64 column `outColumn`: 1 where any of `columns` holds a non-null, non-zero number,
    /// else 0 — Friesian's RecSys 2021 `label` (`1 if max(timestamps) > 0 else 0` over the
    /// engagement timestamps filled with 0), computed here from their `notNull` flags.
    public func anyOf(_ columns: [String], outColumn: String) throws -> FeatureTable {
        guard !columns.isEmpty else { throw FeatureError.invalidArgument("anyOf: give at least one column") }
        var flags = [Int64](repeating: 0, count: rowCount)
        for name in columns {
            let c = try column(name)
            switch c.data {
            case .int64(let v): for r in 0..<rowCount where v[r] != 0 && !c.isNull(r) { flags[r] = 1 }
            case .double(let v): for r in 0..<rowCount where v[r] != 0 && !v[r].isNaN && !c.isNull(r) { flags[r] = 1 }
            default: throw FeatureError.wrongType(column: name, type: c.type, expected: "int64 or double")
            }
        }
        return try with(outColumn, Column(type: .int64, data: .int64(flags)))
    }
}

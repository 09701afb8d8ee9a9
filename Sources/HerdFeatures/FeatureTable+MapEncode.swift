import Foundation

extension FeatureTable {
    /// Friesian `encode_string(columns, {value: id})` with a fixed dictionary: each string value
    /// becomes `mapping[value]` (int64); a null or a value missing from `mapping` becomes
    /// `defaultID`. Int64 columns are looked up by their decimal text.
    ///
    /// The RecSys 2021 media and tweet-type maps are such dictionaries: the categories are known
    /// in advance, so their ids do not depend on the data (unlike `categorify`).
    public func mapEncode(_ columns: [String], mapping: [String: Int64], defaultID: Int64 = 0) throws -> FeatureTable {
        var out = self
        for name in columns {
            let c = try column(name)
            guard c.type == .string || c.type == .int64 else {
                throw FeatureError.wrongType(column: name, type: c.type, expected: "string or int64")
            }
            var ids = [Int64](repeating: defaultID, count: rowCount)
            switch c.data {
            case .string(let s):
                for r in 0..<rowCount where !c.isNull(r) { ids[r] = mapping[s[r]] ?? defaultID }
            case .int64(let v):
                for r in 0..<rowCount where !c.isNull(r) { ids[r] = mapping[String(v[r])] ?? defaultID }
            default: break
            }
            out = try out.with(name, Column(type: .int64, data: .int64(ids)))
        }
        return out
    }
}

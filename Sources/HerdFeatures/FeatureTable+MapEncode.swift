import Foundation
import HerdTensor

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
            // NOTE: values are looked up as bytes in place (no String per row), rows split across workers.
            var keys = KeyTable(capacity: mapping.count)
            var idOfKey: [Int64] = []
            for (value, id) in mapping {
                var v = value
                v.withUTF8 { _ = keys.insert(UnsafeRawBufferPointer($0)) }
                idOfKey.append(id)
            }
            var ids = [Int64](repeating: defaultID, count: rowCount)
            ids.withUnsafeMutableBufferPointer { buf in
                let b = UncheckedSendable(buf)
                let ranges = Parallel.ranges(rowCount, parts: Parallel.threads)
                Parallel.forEach(ranges.count) { p in
                    forEachText(c, rows: ranges[p]) { r, bytes in
                        if let k = keys.find(bytes) { b.value[r] = idOfKey[k] }
                    }
                }
            }
            out = try out.with(name, Column(type: .int64, data: .int64(ids)))
        }
        return out
    }
}

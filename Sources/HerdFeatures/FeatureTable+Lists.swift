import Foundation
import HerdTensor

extension FeatureTable {
    /// Joins the first `limit` elements (all when nil) of each string-list column with
    /// `separator` into a string column, in place; a null or empty list becomes `""`.
    ///
    /// RecSys 2021 `present_media` (`Photo\tPhoto\tVideo`) → `Photo_Photo`, the key of
    /// Friesian's media map (`'_'.join(x.split('\t')[:2])` after `fillna("")`).
    public func joinList(_ columns: [String], separator: String, limit: Int? = nil) throws -> FeatureTable {
        if let limit, limit < 1 { throw FeatureError.invalidArgument("joinList: limit must be >= 1, got \(limit)") }
        var out = self
        for name in columns {
            let c = try column(name)
            guard c.type == .stringList, case .list(let o, .string(let s)) = c.data else {
                throw FeatureError.wrongType(column: name, type: c.type, expected: "string_list")
            }
            // NOTE: bytes copied straight into the output (no String per row): each row's length
            // first, then the rows filled in parallel.
            let sep = Array(separator.utf8)
            var offsets = [Int](repeating: 0, count: rowCount + 1)
            for r in 0..<rowCount {
                var n = 0
                if !c.isNull(r) {
                    let end = limit.map { Swift.min(o[r + 1], o[r] + $0) } ?? o[r + 1]
                    if end > o[r] { n = s.offsets[end] - s.offsets[o[r]] + (end - o[r] - 1) * sep.count }
                }
                offsets[r + 1] = offsets[r] + n
            }
            var bytes = [UInt8](repeating: 0, count: offsets[rowCount])
            bytes.withUnsafeMutableBufferPointer { out in
                let dst = UncheckedSendable(out)
                s.bytes.withUnsafeBufferPointer { src in
                    sep.withUnsafeBufferPointer { sp in
                        Parallel.forRanges(rowCount, minPerWorker: 1 << 15) { rows in
                            for r in rows where offsets[r + 1] > offsets[r] {
                                let end = limit.map { Swift.min(o[r + 1], o[r] + $0) } ?? o[r + 1]
                                var at = offsets[r]
                                for e in o[r]..<end {
                                    if e > o[r] {
                                        for k in 0..<sp.count { dst.value[at + k] = sp[k] }
                                        at += sp.count
                                    }
                                    let len = s.offsets[e + 1] - s.offsets[e]
                                    if len > 0 {
                                        (dst.value.baseAddress! + at).update(from: src.baseAddress! + s.offsets[e], count: len)
                                        at += len
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let joined = StringData(offsets: offsets, bytes: bytes)
            out = try out.with(name, Column(type: .string, data: .string(joined)))
        }
        return out
    }

    /// Friesian `encode_string(…, do_split=True, keep_most_frequent=True)` after categorify:
    /// each int64-list column of ids becomes the int64 column of its smallest non-zero id — under
    /// a frequency-ordered index (`genStringIndex`) the row's most frequent known value — or 0
    /// when the list has no known value (null, empty, or only unknown elements). Output names:
    /// `outColumns`, else in place.
    public func keepMostFrequent(_ columns: [String], outColumns: [String]? = nil) throws -> FeatureTable {
        if let o = outColumns, o.count != columns.count {
            throw FeatureError.invalidArgument("keepMostFrequent: \(o.count) output columns for \(columns.count) columns")
        }
        var out = self
        for (k, name) in columns.enumerated() {
            let c = try column(name)
            guard c.type == .int64List, case .list(let o, .int64(let v)) = c.data else {
                throw FeatureError.wrongType(column: name, type: c.type, expected: "int64_list (categorify it first)")
            }
            let ids: [Int64] = o.withUnsafeBufferPointer { o in
                v.withUnsafeBufferPointer { v in
                    FeatureTable.rowParallel(rowCount) { rows, ids in
                        for r in rows {
                            var best: Int64 = 0
                            if !c.isNull(r) {
                                for e in o[r]..<o[r + 1] where v[e] > 0 && (best == 0 || v[e] < best) { best = v[e] }
                            }
                            ids[r] = best
                        }
                    }
                }
            }
            out = try out.with(outColumns?[k] ?? name, Column(type: .int64, data: .int64(ids)))
        }
        return out
    }
}

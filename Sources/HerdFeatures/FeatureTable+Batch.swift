import HerdData
import HerdTensor

extension FeatureTable {
    /// The rows `rows` (all when nil) as a training/serving `Batch`: `dense` numeric columns
    /// narrowed to Float (null → 0) in `[B, Fd]`; `sparse` int64 columns (one-hot bags) or int64
    /// list columns (multi-hot bags; a null list is an empty bag) as feature-major `KeyedJagged`
    /// ids, which must lie in `0..<Int32.max` (encode them first: categorify, hash_encode,
    /// cut_bins); `label` a numeric column (null → 0), or nil for unlabelled batches.
    public func batch(rows: [Int]? = nil, dense: [String], sparse: [String], label: String?) throws -> Batch {
        let rows = rows ?? Array(0..<rowCount)
        let b = rows.count
        let d = Tensor(shape: [b, dense.count])
        for (j, name) in dense.enumerated() {
            let (v, validity) = try numeric(name)
            for (i, r) in rows.enumerated() { d.data[i * dense.count + j] = validity?[r] ?? true ? Float(v[r]) : 0 }
        }
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(sparse.count * b + 1)
        var ids: [Int32] = []
        ids.reserveCapacity(sparse.count * b)
        func id(_ x: Int64, _ name: String) throws -> Int32 {
            guard x >= 0, x < Int64(Int32.max) else {
                throw FeatureError.invalidArgument("batch: column '\(name)' holds id \(x), outside 0..<\(Int32.max) (encode it first)")
            }
            return Int32(x)
        }
        for name in sparse {
            let c = try column(name)
            switch c.data {
            case .int64(let v):
                for r in rows {
                    ids.append(c.isNull(r) ? 0 : try id(v[r], name))
                    offsets.append(Int32(ids.count))
                }
            case .list(let o, .int64(let v)):
                for r in rows {
                    if !c.isNull(r) { for e in o[r]..<o[r + 1] { ids.append(try id(v[e], name)) } }
                    offsets.append(Int32(ids.count))
                }
            default:
                throw FeatureError.wrongType(column: name, type: c.type, expected: "int64 or int64_list ids")
            }
        }
        var labels: [Float] = []
        if let label {
            let (v, validity) = try numeric(label)
            labels = rows.map { validity?[$0] ?? true ? Float(v[$0]) : 0 }
        }
        return Batch(dense: d, sparse: KeyedJagged(features: sparse.count, batchSize: b, offsets: offsets, ids: ids), labels: labels)
    }
}

import Foundation
import HerdData
import HerdFeatures
import HerdTensor
import HerdTraining

/// TF Serving's predict request body → the one `Batch` type, for a feature-table export.
///
/// Row form `{"instances": [{"col": value, …}, …]}` or columnar `{"inputs": {"col": [value, …], …}}`;
/// the columns are the export's `BatchSpec` (encoded values: sparse ids in `0..<cardinality` — an
/// int, or a list of ints for a bag — and numbers for dense columns). A column left out is 0
/// (unknown id / zero value), as at training time for nulls.
public enum PredictRequest {
    /// The largest number of rows one request may carry.
    public static let maxRows = 10_000

    /// Parses `body` into a batch; `columnar` tells which form it was (the answer uses the same).
    public static func batch(body: Data, spec: BatchSpec) throws -> (batch: Batch, columnar: Bool) {
        let (rows, columnar) = try Self.rows(body: body)
        let known = Set(spec.sparse.map(\.name) + spec.dense)
        for (r, row) in rows.enumerated() {
            if let unknown = row.keys.first(where: { !known.contains($0) }) {
                throw RecommenderError.invalidArgument("row \(r): unknown column '\(unknown)' (the model reads: \(known.sorted().joined(separator: ", ")))")
            }
        }
        let b = rows.count, nd = spec.dense.count
        let dense = Tensor(shape: [b, nd])
        for (j, name) in spec.dense.enumerated() {
            for (r, row) in rows.enumerated() {
                guard let v = row[name] else { continue }
                guard let x = (v as? NSNumber)?.doubleValue, x.isFinite else {
                    throw RecommenderError.invalidArgument("row \(r): column '\(name)' must be a finite number, got \(v)")
                }
                dense[r * nd + j] = Float(x)
            }
        }
        var offsets: [Int32] = [0], ids: [Int32] = []
        for s in spec.sparse {
            for (r, row) in rows.enumerated() {
                let values: [Any]
                switch row[s.name] {
                case nil: values = [0]
                case let list as [Any]: values = list
                case let v?: values = [v]
                }
                for v in values {
                    guard let n = v as? NSNumber, let id = Int(exactly: n.doubleValue), id >= 0, id < s.cardinality else {
                        throw RecommenderError.invalidArgument("row \(r): column '\(s.name)' needs ids in 0..<\(s.cardinality), got \(v)")
                    }
                    ids.append(Int32(id))
                }
                offsets.append(Int32(ids.count))
            }
        }
        return (Batch(dense: dense, sparse: KeyedJagged(features: spec.sparse.count, batchSize: b, offsets: offsets, ids: ids), labels: []), columnar)
    }
}

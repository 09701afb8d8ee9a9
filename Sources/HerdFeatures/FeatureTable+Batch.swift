import HerdData
import HerdTensor

/// Which columns of a feature table feed a model, and how: the bridge from feature engineering to
/// the one `Batch` type.
///
/// - `sparse`: categorical id columns (`int64`, or `int64_list` for multi-hot bags), already
///   encoded (`categorify`, `hash_encode`, `cut_bins`, `cross_hash_encode`): ids in
///   `0..<cardinality`, 0 meaning unknown; a null id is 0, a null list an empty bag.
/// - `dense`: numeric columns (`double` or `int64`), nulls as 0.
/// - `labels`: one or more 0/1 columns; the row's label is 1 when any of them is positive (the
///   RecSys "any engagement" label). Empty for unlabelled tables.
public struct BatchSpec: Codable, Sendable, Equatable {
    public struct Sparse: Codable, Sendable, Equatable {
        public var name: String
        public var cardinality: Int
        public init(name: String, cardinality: Int) {
            self.name = name
            self.cardinality = cardinality
        }
    }

    public var sparse: [Sparse]
    public var dense: [String]
    public var labels: [String]

    public init(sparse: [Sparse], dense: [String], labels: [String]) {
        self.sparse = sparse
        self.dense = dense
        self.labels = labels
    }

    /// A spec whose cardinalities are the largest id + 1 in `tables` (the training table at least:
    /// ids come from indices fitted on it, so its largest id is the index size).
    public static func infer(sparse: [String], dense: [String], labels: [String], tables: [FeatureTable]) throws -> BatchSpec {
        var specs: [Sparse] = []
        for name in sparse {
            var maxID: Int64 = 0
            for t in tables {
                let c = try t.column(name)
                let values: [Int64]?
                switch c.type {
                case .int64: values = c.int64Values
                case .int64List:
                    if case .int64(let v)? = c.listParts?.values { values = v } else { values = nil }
                default: values = nil
                }
                guard let values else { throw FeatureError.wrongType(column: name, type: c.type, expected: "int64 or int64_list ids") }
                maxID = max(maxID, values.max() ?? 0)
            }
            specs.append(Sparse(name: name, cardinality: Int(maxID) + 1))
        }
        return BatchSpec(sparse: specs, dense: dense, labels: labels)
    }
}

extension BatchSpec {
    /// Every column the spec reads: sparse, dense, then labels.
    public var columns: [String] { sparse.map(\.name) + dense + labels }

    /// The same spec without labels (for unlabelled tables: predictions, user/item tables).
    public var unlabelled: BatchSpec { BatchSpec(sparse: sparse, dense: dense, labels: []) }

    /// The unlabelled spec of some of this spec's features: sparse features `sparse` and dense
    /// columns `dense` (indices into this spec), in that order.
    public func subset(sparse: [Int], dense: [Int]) -> BatchSpec {
        BatchSpec(sparse: sparse.map { self.sparse[$0] }, dense: dense.map { self.dense[$0] }, labels: [])
    }

    /// The columns of `columns` (and, when `labelled`, of the labels) that `table` lacks.
    public func missingColumns(in table: FeatureTable, labelled: Bool = true) -> [String] {
        let names = Set(table.names)
        return (sparse.map(\.name) + dense + (labelled ? labels : [])).filter { !names.contains($0) }
    }
}

extension FeatureTable {
    /// Every row as one `Batch` (dense `[B, Fd]`, sparse feature-major, labels) following `spec`.
    /// Ids outside `0..<cardinality` are an error naming the column and row.
    public func batch(_ spec: BatchSpec) throws -> Batch {
        let b = rowCount
        let dense = Tensor(shape: [b, spec.dense.count])
        for (j, name) in spec.dense.enumerated() {
            let c = try column(name)
            guard let v = c.numericValues else { throw FeatureError.wrongType(column: name, type: c.type, expected: "a numeric column") }
            for r in 0..<b where !c.isNull(r) { dense[r * spec.dense.count + j] = Float(v[r]) }
        }
        var offsets: [Int32] = [0], ids: [Int32] = []
        offsets.reserveCapacity(spec.sparse.count * b + 1)
        for s in spec.sparse {
            let c = try column(s.name)
            func add(_ id: Int64, row: Int) throws {
                guard id >= 0 && id < Int64(s.cardinality) else {
                    throw FeatureError.invalidArgument("sparse column '\(s.name)' row \(row): id \(id) outside 0..<\(s.cardinality)")
                }
                ids.append(Int32(id))
            }
            switch c.type {
            case .int64:
                let v = c.int64Values!
                for r in 0..<b {
                    try add(c.isNull(r) ? 0 : v[r], row: r)
                    offsets.append(Int32(ids.count))
                }
            case .int64List:
                guard let (o, inner) = c.listParts, case .int64(let v) = inner else { fallthrough }
                for r in 0..<b {
                    if !c.isNull(r) { for k in o[r]..<o[r + 1] { try add(v[k], row: r) } }
                    offsets.append(Int32(ids.count))
                }
            default:
                throw FeatureError.wrongType(column: s.name, type: c.type, expected: "int64 or int64_list ids")
            }
        }
        var labels: [Float] = []
        if !spec.labels.isEmpty {
            labels = [Float](repeating: 0, count: b)
            for name in spec.labels {
                let c = try column(name)
                guard let v = c.numericValues else { throw FeatureError.wrongType(column: name, type: c.type, expected: "a numeric 0/1 label") }
                for r in 0..<b where !c.isNull(r) && v[r] > 0 { labels[r] = 1 }
            }
        }
        return Batch(dense: dense, sparse: KeyedJagged(features: spec.sparse.count, batchSize: b, offsets: offsets, ids: ids), labels: labels)
    }
}

extension FeatureTable {
    /// The rows `rows` (all when nil) as a `Batch`, with cardinalities inferred from those rows and
    /// one label column (or none): `batch(_:)` with `BatchSpec.infer`.
    public func batch(rows: [Int]? = nil, dense: [String], sparse: [String], label: String?) throws -> Batch {
        let t = rows.map { gather($0) } ?? self
        return try t.batch(try BatchSpec.infer(sparse: sparse, dense: dense, labels: label.map { [$0] } ?? [], tables: [t]))
    }
}

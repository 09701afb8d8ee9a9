import HerdData
import HerdFeatures
import HerdTensor

extension RankingInput {
    /// The ranking batch of one request straight from the store's rows: the same rows as
    /// `table(userID:user:items:).batch(spec)` (item columns from each candidate's row, user
    /// columns repeated, the rest 0; nulls as 0 / empty bags; a missing row's key column holds
    /// its id; ids outside a feature's cardinality are an error), without the intermediate table.
    ///
    /// NOTE: this is the per-request path of in-process ranking (`LocalRanking`): building the
    /// `FeatureTable` first made a boxed value array per column and its batch conversion hopped to
    /// the worker pool for a few hundred ids; here each id goes once from the row into the batch.
    public func batch(userID: Int64, user: FeatureRows, items: FeatureRows) throws -> Batch {
        let n = items.ids.count
        let sources = user.schema == userSchema && items.schema == itemSchema
            ? columnSources : Self.columnSources(spec.columns, user: user.schema, item: items.schema)
        let userRow: [Value]? = user.ids.isEmpty ? nil : (user.rows.first ?? nil)
        let fs = spec.sparse.count, fd = spec.dense.count
        // NOTE: flat scalar rows (`ScalarRows`) are read in place; value rows are built once otherwise.
        let scalars = items.scalars
        let itemRows = scalars == nil ? items.rows : []

        /// The item slot of candidate `i`, field `f` (a scalar-rows answer): the stored bits, the
        /// requested id for the key field of a missing row, or nil (null).
        @inline(__always) func slot(_ s: ScalarRows, _ i: Int, _ f: Int, isKey: Bool) -> UInt64? {
            guard s.found[i] else { return isKey ? UInt64(bitPattern: items.ids[i]) : nil }
            let k = i * s.fields + f
            return s.present[k] ? s.bits[k] : nil
        }

        /// The column's type and its value in candidate row `i` (as `table` would hold it).
        func reader(_ c: Int, sparse: Bool) -> (ColumnType, (Int) -> Value) {
            switch sources[c] {
            case .item(let f):
                let field = items.schema.fields[f], isKey = field.name == items.schema.keyColumn
                return (field.type, { i in itemRows[i]?[f] ?? (isKey ? .int(items.ids[i]) : .null) })
            case .user(let f):
                let field = user.schema.fields[f]
                let v = userRow?[f] ?? (field.name == user.schema.keyColumn ? .int(userID) : .null)
                return (field.type, { _ in v })
            case .zero:
                return sparse ? (.int64, { _ in .int(0) }) : (.double, { _ in .double(0) })
            }
        }

        let dense = Tensor(shape: [n, fd])
        for j in 0..<fd {
            let name = spec.dense[j]
            let d = dense.data + j
            if let s = scalars, case .item(let f) = sources[fs + j] {
                let field = items.schema.fields[f], isKey = field.name == items.schema.keyColumn
                switch field.type {
                case .int64: for i in 0..<n { if let x = slot(s, i, f, isKey: isKey) { d[i * fd] = Float(Double(Int64(bitPattern: x))) } }
                case .double: for i in 0..<n where s.found[i] { if let x = slot(s, i, f, isKey: false) { d[i * fd] = Float(Double(bitPattern: x)) } }
                default: throw FeatureError.wrongType(column: name, type: field.type, expected: "a numeric column")
                }
                continue
            }
            let (type, value) = reader(fs + j, sparse: false)
            switch type {
            case .int64: for i in 0..<n { if case .int(let x) = value(i) { d[i * fd] = Float(Double(x)) } }
            case .double: for i in 0..<n { if case .double(let x) = value(i) { d[i * fd] = Float(x) } }
            default: throw FeatureError.wrongType(column: name, type: type, expected: "a numeric column")
            }
        }

        var ids: [Int32] = []
        ids.reserveCapacity(fs * n)
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(fs * n + 1)
        for f in 0..<fs {
            let s = spec.sparse[f], card = Int64(s.cardinality)
            func append(_ id: Int64, row: Int) throws {
                guard id >= 0 && id < card else {
                    throw FeatureError.invalidArgument("sparse column '\(s.name)' row \(row): id \(id) outside 0..<\(card)")
                }
                ids.append(Int32(id))
            }
            if let rows = scalars, case .item(let g) = sources[f] {
                let field = items.schema.fields[g], isKey = field.name == items.schema.keyColumn
                guard field.type == .int64 else { throw FeatureError.wrongType(column: s.name, type: field.type, expected: "int64 or int64_list ids") }
                for i in 0..<n {
                    if let x = slot(rows, i, g, isKey: isKey) { try append(Int64(bitPattern: x), row: i) } else { ids.append(0) }
                    offsets.append(Int32(ids.count))
                }
                continue
            }
            let (type, value) = reader(f, sparse: true)
            switch type {
            case .int64:
                for i in 0..<n {
                    if case .int(let x) = value(i) { try append(x, row: i) } else { ids.append(0) }
                    offsets.append(Int32(ids.count))
                }
            case .int64List:
                for i in 0..<n {
                    if case .list(let l) = value(i) {
                        for e in l { if case .int(let x) = e { try append(x, row: i) } else { try append(0, row: i) } }
                    }
                    offsets.append(Int32(ids.count))
                }
            default:
                throw FeatureError.wrongType(column: s.name, type: type, expected: "int64 or int64_list ids")
            }
        }
        return Batch(dense: dense, sparse: KeyedJagged(features: fs, batchSize: n, offsets: offsets, ids: ids), labels: [])
    }
}

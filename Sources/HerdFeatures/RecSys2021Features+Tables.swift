import Foundation

extension RecSys2021Features {
    /// Fits `pipeline` on the raw training rows, applies it to the raw test rows, and derives the
    /// user and item tables and the categorical sizes.
    public static func preprocess(train rawTrain: FeatureTable, test rawTest: FeatureTable, pipeline: Pipeline) throws -> RecSys2021Features {
        var (train, fitted) = try pipeline.fit(rawTrain)
        var test = try fitted.apply(rawTest)
        let sizes = fitted.categoricalSizes(in: train)
        for key in [userKey, itemKey] {
            let (trainKeys, testKeys) = try rowKeys(key, encoded: (train, test), raw: (rawTrain, rawTest), size: sizes[key])
            train = try train.with(rowKey(of: key), trainKeys)
            test = try test.with(rowKey(of: key), testKeys)
        }
        let users = try sideTable(train: train, test: test, columns: userColumns)
        let items = try sideTable(train: train, test: test, columns: itemColumns)
        return RecSys2021Features(train: train, test: test, users: users, items: items,
                                  unseenUsers: try unseenTable(train: train, test: test, columns: userColumns),
                                  unseenItems: try unseenTable(train: train, test: test, columns: itemColumns),
                                  fitted: fitted, sizes: sizes)
    }

    /// The `rowKey(of: key)` columns of the encoded train and test tables: the encoded id where it
    /// is non-zero, else `size + k` for the k-th distinct raw value among such rows (train first);
    /// 0 where the raw value is null.
    public static func rowKeys(_ key: String, encoded: (FeatureTable, FeatureTable), raw: (FeatureTable, FeatureTable), size: Int?) throws -> (Column, Column) {
        let tables = [(encoded.0, raw.0), (encoded.1, raw.1)]
        var ids: [[Int64]] = []
        for (e, r) in tables {
            guard e.rowCount == r.rowCount else {
                throw FeatureError.shapeMismatch("row keys of \(key): the pipeline kept \(e.rowCount) of \(r.rowCount) rows")
            }
            guard let v = try e.column(key).int64Values else { throw FeatureError.invalidArgument("\(key) is not an encoded int64 column") }
            ids.append(v)
        }
        var next = Int64(size ?? (Int(ids.flatMap { $0 }.max() ?? 0) + 1))
        var fresh: [Value: Int64] = [:]
        var out: [Column] = []
        for ((_, r), v) in zip(tables, ids) {
            let rawColumn = try r.column(key)
            var keys = v
            for i in keys.indices where keys[i] == 0 && !rawColumn.isNull(i) {
                let value = rawColumn[i]
                if let k = fresh[value] { keys[i] = k } else { fresh[value] = next; keys[i] = next; next += 1 }
            }
            out.append(Column(int64s: keys.map { Optional($0) }))
        }
        return (out[0], out[1])
    }

    /// One row per unseen entity (`columns[0]` encodes to 0, row key non-zero) over the encoded
    /// `train` then `test` rows: its latest row by `timeColumn`, the row key then `columns`,
    /// sorted by row key.
    public static func unseenTable(train: FeatureTable, test: FeatureTable, columns: [String]) throws -> FeatureTable {
        let key = columns[0], row = rowKey(of: key)
        let both = try train.select([row] + columns + [timeColumn]).union(try test.select([row] + columns + [timeColumn]))
        return try both.filter(key, numeric: { $0 == 0 })
            .filter(row, numeric: { $0 != 0 })
            .latestPerKey([row], by: timeColumn)
            .select([row] + columns)
            .orderBy([row])
    }

    /// One row per key (`columns[0]`) over the encoded `train` then `test` rows: the key's latest
    /// row by `timeColumn` (ties: the later row, so test beats train), the `columns` only, keys
    /// that encode to 0 (unknown) left out, sorted by key.
    public static func sideTable(train: FeatureTable, test: FeatureTable, columns: [String]) throws -> FeatureTable {
        let key = columns[0]
        let both = try train.select(columns + [timeColumn]).union(try test.select(columns + [timeColumn]))
        return try both.latestPerKey([key], by: timeColumn)
            .filter(key, numeric: { $0 != 0 })
            .select(columns)
            .orderBy([key])
    }
}

import Foundation

extension RecSys2021Features {
    /// Fits `pipeline` on the raw training rows, applies it to the raw test rows, and derives the
    /// user and item tables and the categorical sizes.
    public static func preprocess(train rawTrain: FeatureTable, test rawTest: FeatureTable, pipeline: Pipeline) throws -> RecSys2021Features {
        let (train, fitted) = try pipeline.fit(rawTrain)
        let test = try fitted.apply(rawTest)
        let users = try sideTable(train: train, test: test, columns: userColumns)
        let items = try sideTable(train: train, test: test, columns: itemColumns)
        return RecSys2021Features(train: train, test: test, users: users, items: items, fitted: fitted,
                                  sizes: fitted.categoricalSizes(in: train))
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

import Foundation

extension FeatureTable {
    /// One row per distinct value of the key columns `keys`: the row with the greatest `by`
    /// (Spark's `drop_duplicates` after ordering by `by` descending), keeping the table's
    /// columns. Rows come out in order of each key's first appearance.
    ///
    /// Ties: among rows with the same greatest `by`, the one that comes last in the table wins
    /// (a log is appended in time order, so the later line is the later snapshot); a null `by`
    /// counts as earlier than any value. A null key is a key of its own, as in `groupBy`.
    ///
    /// NOTE: the RecSys 2021 user table takes each engaging user's latest row this way: the
    /// follower counts and verified flag are snapshots at the tweet's time, and the latest one is
    /// what a serving request would see.
    public func latestPerKey(_ keys: [String], by sortColumn: String) throws -> FeatureTable {
        guard !keys.isEmpty else { throw FeatureError.invalidArgument("latestPerKey: give at least one key column") }
        let keyColumns = try keys.map { try column($0) }
        let sort = try column(sortColumn)
        guard let t = sort.numericValues, !sort.type.isList else {
            throw FeatureError.wrongType(column: sortColumn, type: sort.type, expected: "int64 or double")
        }
        let groups = Grouping(keyColumns, rows: rowCount)
        var best = groups.firstRow
        for r in 0..<rowCount {
            let g = groups.group[r]
            let b = best[g]
            if sort.isNull(r) ? sort.isNull(b) : (sort.isNull(b) || t[r] >= t[b]) { best[g] = r }
        }
        return gather(best)
    }
}

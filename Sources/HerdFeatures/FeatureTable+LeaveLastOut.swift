import Foundation

extension FeatureTable {
    /// Leave-last-out split by time: for every user, the row with the latest `time` goes to
    /// `test` and the others to `train`; both keep the table's row order.
    ///
    /// Ties: among rows of one user with the same latest time, the one that comes last in the
    /// table is the latest (a log is appended in time order, so the later line is the later
    /// event); the split is therefore deterministic for a given table. A null time counts as
    /// earlier than any time. Rows with a null user go to `train` (there is no user to hold out
    /// for). A user with a single row ends up in `test` only.
    ///
    /// NOTE: this is the protocol of NCF/RecBole ("LS" split, leave-one-out by time): the model
    /// sees each user's past and is asked about the next thing they did, so nothing from the
    /// future leaks into training for that user (other users' later rows may, as in those
    /// protocols).
    public func leaveLastOut(user: String, time: String) throws -> (train: FeatureTable, test: FeatureTable) {
        let users = try column(user)
        let times = try column(time)
        guard let t = times.numericValues else {
            throw FeatureError.wrongType(column: time, type: times.type, expected: "int64 or double")
        }
        let groups = Grouping([users], rows: rowCount)
        var last = [Int](repeating: -1, count: groups.count)
        for r in 0..<rowCount where !users.isNull(r) {
            let g = groups.group[r]
            let best = last[g]
            if best < 0 || times.isNull(best) || (!times.isNull(r) && t[r] >= t[best]) { last[g] = r }
        }
        var isTest = [Bool](repeating: false, count: rowCount)
        for r in last where r >= 0 { isTest[r] = true }
        let train = (0..<rowCount).filter { !isTest[$0] }
        let test = (0..<rowCount).filter { isTest[$0] }
        return (gather(train), gather(test))
    }
}

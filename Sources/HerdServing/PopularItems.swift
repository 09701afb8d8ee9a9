import Foundation
import HerdFeatures

/// The cold-start answer: items ordered by how often they were engaged with, most first.
public struct PopularItems: Sendable, Equatable {
    /// Item ids, most popular first.
    public let ids: [Int64]
    /// Per id: its engagement rate in the training rows (positives / impressions), or 0 when
    /// unknown (popularity taken from the item table's order).
    public let rates: [Float]
    /// Per id: its popularity score, non-increasing — positives over the most popular item's
    /// positives in (0, 1], or `(n − i) / n` when only the order is known. The probs of a
    /// popularity answer that could not be ranked (features or ranking failed).
    public let scores: [Float]
    /// Where the order came from, for the load log (`train.herdtable positives of like, reply`).
    public let origin: String

    /// `scores` nil = from the order alone (`(n − i) / n`).
    public init(ids: [Int64], rates: [Float], scores: [Float]? = nil, origin: String) {
        precondition(ids.count == rates.count && (scores == nil || scores!.count == ids.count))
        self.ids = ids
        self.rates = rates
        self.scores = scores ?? ids.indices.map { Float(ids.count - $0) / Float(ids.count) }
        self.origin = origin
    }

    /// The `limit` items of `table` (training rows) with the most positives of any of `labels`
    /// (ties: fewer impressions first, then the smaller id), keyed by `keyColumn`; rows whose key is
    /// null or 0 (the unknown id of an encoded column) are skipped.
    public static func count(in table: FeatureTable, keyColumn: String, labels: [String], limit: Int, origin: String) throws -> PopularItems {
        let key = try table.column(keyColumn)
        guard let keys = key.int64Values else {
            throw ServingError("\(origin): the item key column '\(keyColumn)' is \(key.type), not int64 ids")
        }
        var labelValues: [[Double]] = []
        var labelColumns: [Column] = []
        for name in labels {
            let c = try table.column(name)
            guard let v = c.numericValues else { throw ServingError("\(origin): label column '\(name)' is \(c.type), not a number") }
            labelValues.append(v)
            labelColumns.append(c)
        }
        var positives: [Int64: Int] = [:], impressions: [Int64: Int] = [:]
        for r in 0..<table.rowCount where !key.isNull(r) && keys[r] != 0 {
            let id = keys[r]
            impressions[id, default: 0] += 1
            var positive = false
            for (c, v) in zip(labelColumns, labelValues) where !c.isNull(r) && v[r] > 0 { positive = true }
            if positive { positives[id, default: 0] += 1 }
        }
        let ranked = impressions.keys.sorted {
            let (p0, p1) = (positives[$0] ?? 0, positives[$1] ?? 0)
            if p0 != p1 { return p0 > p1 }
            if impressions[$0]! != impressions[$1]! { return impressions[$0]! < impressions[$1]! }
            return $0 < $1
        }.prefix(limit)
        let top = Float(max(1, ranked.first.map { positives[$0] ?? 0 } ?? 1))
        return PopularItems(ids: Array(ranked), rates: ranked.map { Float(positives[$0] ?? 0) / Float(impressions[$0]!) },
                            scores: ranked.map { Float(positives[$0] ?? 0) / top }, origin: origin)
    }

    /// The first `limit` ids of an item table (no engagement counts available).
    public static func inOrder(_ ids: [Int64], limit: Int, origin: String) -> PopularItems {
        let chosen = Array(ids.filter { $0 != 0 }.prefix(limit))
        return PopularItems(ids: chosen, rates: [Float](repeating: 0, count: chosen.count), origin: origin)
    }
}

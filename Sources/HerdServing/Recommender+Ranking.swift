import Foundation
import HerdFeatures
import HerdLayers

/// How the ranking table of one request is assembled from a user row and candidate item rows:
/// the ranking spec's columns, each taken from the item rows, the user row, or 0 (unknown).
/// Used by the recommender and by a Ranking service scoring candidate ids.
public struct RankingInput: Sendable {
    /// The ranking export's unlabelled batch spec: the columns each candidate row needs.
    public let spec: BatchSpec
    public let userSchema: FeatureSchema
    public let itemSchema: FeatureSchema
    /// Where each column of `spec` comes from.
    let columnSources: [ColumnSource]

    enum ColumnSource: Sendable, Equatable {
        case item(Int), user(Int), zero
    }

    public init(spec: BatchSpec, userSchema: FeatureSchema, itemSchema: FeatureSchema) {
        self.spec = spec.unlabelled
        self.userSchema = userSchema
        self.itemSchema = itemSchema
        columnSources = Self.columnSources(self.spec.columns, user: userSchema, item: itemSchema)
    }

    /// Ranking columns in neither the user nor the item rows (e.g. the pair feature
    /// `engagee_follows_engager`): filled with 0 = unknown for every candidate.
    public var missingColumns: [String] { zip(spec.columns, columnSources).filter { $0.1 == .zero }.map(\.0) }

    /// Where each column of `columns` comes from, given the rows' schemas.
    static func columnSources(_ columns: [String], user: FeatureSchema, item: FeatureSchema) -> [ColumnSource] {
        let userFields = Dictionary(user.fields.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        let itemFields = Dictionary(item.fields.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        // NOTE: a column in both tables is taken from the item rows (they vary per candidate).
        return columns.map { name in
            if let i = itemFields[name] { return .item(i) }
            if let u = userFields[name] { return .user(u) }
            return .zero
        }
    }

    /// One row per candidate (`items` order) with the spec's columns: item columns from the
    /// candidate's row, user columns repeated from the user's row, the rest 0 (unknown). A missing
    /// row (user or item not in the store) contributes nulls, which the batch reads as 0; the key
    /// column of a missing row still holds the requested id, as in `FeatureRows.table()`.
    public func table(userID: Int64, user: FeatureRows, items: FeatureRows) throws -> FeatureTable {
        let n = items.ids.count
        // NOTE: rows written by a later nearline run with other columns are mapped afresh.
        let sources = user.schema == userSchema && items.schema == itemSchema
            ? columnSources : Self.columnSources(spec.columns, user: user.schema, item: items.schema)
        let sparse = Set(spec.sparse.map(\.name))
        var columns: [(String, Column)] = []
        var seen = Set<String>()
        let itemRows = items.rows, userRow = user.rows.first ?? nil
        for (name, source) in zip(spec.columns, sources) where seen.insert(name).inserted {
            switch source {
            case .item(let f):
                let field = items.schema.fields[f], isKey = field.name == items.schema.keyColumn
                let values: [Value] = (0..<n).map { i in itemRows[i]?[f] ?? (isKey ? .int(items.ids[i]) : .null) }
                columns.append((name, try FeatureRows.column(field.type, values)))
            case .user(let f):
                let field = user.schema.fields[f]
                let value = userRow?[f] ?? (field.name == user.schema.keyColumn ? .int(userID) : .null)
                columns.append((name, try FeatureRows.column(field.type, [Value](repeating: value, count: n))))
            case .zero:
                columns.append((name, sparse.contains(name) ? Column(int64s: [Int64?](repeating: 0, count: n))
                                                            : Column(doubles: [Double?](repeating: 0, count: n))))
            }
        }
        return try FeatureTable(columns)
    }
}

extension LocalRanking {
    /// The ranking model's work (`ModelPool.Work`) and its first-layer row cache's counters
    /// (`RowContributionCache.Stats`; none without a cache) in Prometheus text, since the model
    /// was loaded, for `/metrics`.
    public var modelMetrics: String {
        let w = pool.work
        let work = [("herd_ranking_model_rows_total", "Candidate rows through the ranking model.", w.rows),
                    ("herd_ranking_model_macs_total", "Multiply-adds the ranking model's MLPs executed for them (after hoisting, the row cache and the row dedupe).", w.macs)]
            .map { "# HELP \($0.0) \($0.1)\n# TYPE \($0.0) counter\n\($0.0) \($0.2)\n" }.joined()
        guard let s = rowCacheStats else { return work }
        let counters = [("herd_ranking_row_cache_hits_total", "Candidate rows whose first-layer share came from the row cache.", s.hits),
                        ("herd_ranking_row_cache_misses_total", "Candidate rows computed (and cached) by the first layer.", s.misses),
                        ("herd_ranking_row_cache_evictions_total", "Row cache entries dropped to stay within its budget.", s.evictions),
                        ("herd_ranking_row_cache_repeated_in_batch_total", "Hit rows equal at the first layer to an earlier row of the same forward.", s.repeatedInBatch)]
            .map { "# HELP \($0.0) \($0.1)\n# TYPE \($0.0) counter\n\($0.0) \($0.2)\n" }.joined()
        let gauges = [("herd_ranking_row_cache_entries", "Rows held in the row cache.", s.entries),
                      ("herd_ranking_row_cache_bytes", "Bytes the row cache holds (as budgeted).", s.bytes)]
            .map { "# HELP \($0.0) \($0.1)\n# TYPE \($0.0) gauge\n\($0.0) \($0.2)\n" }.joined()
        return work + counters + gauges
    }
}

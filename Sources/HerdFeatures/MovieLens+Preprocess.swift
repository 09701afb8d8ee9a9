import Foundation
import HerdData

/// The feature tables of the MovieLens workflow (written to `W/features/` by
/// `herd preprocess movielens`).
///
/// ```
/// train  [rows]   user_id, item_id, rating, timestamp, label, gender, occupation, zip_prefix,
///                 genres (int64 list), item_id_hist_seq (int64 list: the user's earlier items,
///                 ≤ 50, oldest first), age_bin, release_year_bin — every categorical encoded
/// test   [users]  the same columns: each user's latest interaction (leave-last-out by time)
/// users  [U]      user_id (key), gender, occupation, zip_prefix, age_bin, item_id_hist_seq (the
///                 whole training history, ≤ 50)                            — one row per known user
/// items  [I]      item_id (key), genres, release_year_bin                  — one row per known item
/// ```
public struct MovieLensFeatures: Sendable, Equatable {
    public var train: FeatureTable
    public var test: FeatureTable
    public var users: FeatureTable
    public var items: FeatureTable
    /// The fitted pipeline (raw columns → encoded), for the test split and serving.
    public var fitted: FittedPipeline
    /// Cardinality of every categorical column (ids 0 ..< size; 0 = null/unknown).
    public var sizes: [String: Int]
    /// Raw user/item rows left out of `users`/`items` because their id never occurs in training.
    public var unknownUsers: Int
    public var unknownItems: Int
}

extension MovieLens {
    /// Ratings ≥ this are positives (`label` = 1): "liked", the usual MovieLens threshold.
    public static let positiveRating = 4.0

    /// User columns of the encoded tables (key first).
    public static let userColumns = ["user_id", "gender", "occupation", "zip_prefix", "age_bin", "item_id_hist_seq"]
    /// Longest item history kept per row (`item_id_hist_seq`: the most recent items first rated
    /// before the row, oldest first).
    public static let historyLength = 50
    /// Item columns of the encoded tables (key first).
    public static let itemColumns = ["item_id", "genres", "release_year_bin"]

    /// The feature pipeline, a copy of `examples/movielens/pipeline.json` (a test keeps them
    /// equal). Fitted on the training split only.
    ///
    /// NOTE: unknown ages and years are filled with 0 and fall into bin 0 of their own, below
    /// the first real boundary; the age bins are MovieLens-1M's age groups (under 18, 18–24,
    /// 25–34, 35–44, 45–49, 50–55, 56+); the year bins split the 1990s finely because most
    /// rated films are from them. The history list shares the item index, so its ids are
    /// item ids.
    public static let pipelineJSON = """
        {"steps": [
          {"op": "fillna", "columns": ["age", "release_year"], "value": 0},
          {"op": "cut_bins", "columns": ["age"], "bins": [1, 18, 25, 35, 45, 50, 56]},
          {"op": "cut_bins", "columns": ["release_year"], "bins": [1, 1940, 1960, 1970, 1980, 1990, 1994, 1996, 1997]},
          {"op": "categorify", "columns": ["user_id", ["item_id", "item_id_hist_seq"], "gender", "occupation", "zip_prefix", "genres"]}
        ]}
        """

    public static func pipeline() throws -> Pipeline {
        try Pipeline.decode(json: try JSONDecoder().decode(JSONValue.self, from: Data(pipelineJSON.utf8)), source: "MovieLens.pipelineJSON")
    }

    /// Raw feature rows: the interactions with `label` (rating ≥ `positiveRating`) and their
    /// user and item attributes (left joins: an interaction whose user or item is missing from
    /// those files gets nulls, which the pipeline encodes as unknown), and each row's
    /// `item_id_hist_seq`: the user's items rated before it (by time, ties by row order).
    public static func rawRows(_ data: MovieLensData) throws -> FeatureTable {
        let ratings = try data.interactions.column("rating")
        let labels = (0..<ratings.count).map { r -> Int64 in
            if case .double(let v) = ratings[r], v >= positiveRating { return 1 }
            return 0
        }
        return try data.interactions.with("label", Column(type: .int64, data: .int64(labels)))
            .join(rawUsers(data.users), on: ["user_id"], how: .left)
            .join(rawItems(data.items), on: ["item_id"], how: .left)
            .addHistSeq(["item_id"], userColumn: "user_id", sortColumn: "timestamp", minLen: 0, maxLen: historyLength)
    }

    /// User attributes as the pipeline reads them: `user_id, age, gender, occupation, zip_prefix`.
    public static func rawUsers(_ users: FeatureTable) throws -> FeatureTable {
        let zips = try users.column("zip_code")
        let prefixes = (0..<zips.count).map { r -> String? in
            if case .string(let z) = zips[r] { return zipPrefix(z) }
            return nil
        }
        return try users.select(["user_id", "age", "gender", "occupation"]).with("zip_prefix", Column(strings: prefixes))
    }

    /// Item attributes as the pipeline reads them: `item_id, release_year, genres`.
    public static func rawItems(_ items: FeatureTable) throws -> FeatureTable {
        try items.select(["item_id", "release_year", "genres"])
    }

    /// Label, leave-last-out split by time, pipeline fitted on the training rows, user and item
    /// tables encoded with the same fitted pipeline.
    ///
    /// NOTE: retrieval test positives are each user's held-out (latest) interaction when it is
    /// positive (`label` = 1): the usual leave-one-out protocol (NCF, RecBole), which asks
    /// whether the item the user went on to like is in their top k. A latest rating below 4 is
    /// not something to recommend, so that user is not evaluated for retrieval (their row still
    /// counts in the ranker's test AUC, where negatives are needed). Every training interaction
    /// of the user, liked or not, is excluded from their ranking: they have seen those films.
    public static func preprocess(_ data: MovieLensData) throws -> MovieLensFeatures {
        // NOTE: the history is built on raw ids before the split, with the split's tie rule (time,
        // then row order): a training row sees only earlier training rows (the held-out row is
        // each user's latest), and the test row sees the user's whole training history, which is
        // also the user table's history (what a serving request would get from the feature store).
        let raw = try rawRows(data)
        let (trainRaw, testRaw) = try raw.leaveLastOut(user: "user_id", time: "timestamp")
        let (train, fitted) = try pipeline().fit(trainRaw)
        let test = try fitted.apply(testRaw)
        let userRows = try rawUsers(data.users).join(
            testRaw.select(["user_id", "item_id_hist_seq"]).filter("user_id", { $0 != .null }), on: ["user_id"], how: .left)
        let (users, unknownUsers) = try encodeSide(userRows, columns: userColumns, like: raw, with: fitted)
        let (items, unknownItems) = try encodeSide(rawItems(data.items), columns: itemColumns, like: raw, with: fitted)
        let sizes = fitted.categoricalSizes(in: train)
        return MovieLensFeatures(
            train: train, test: test, users: users, items: items, fitted: fitted, sizes: sizes,
            unknownUsers: unknownUsers, unknownItems: unknownItems)
    }

    /// Encodes one side's attribute rows with the fitted pipeline: the other side's columns are
    /// added as nulls (the pipeline reads every raw column), then only `columns` are kept, rows
    /// whose key encodes to 0 (never seen in training) are dropped, and rows are sorted by key.
    ///
    /// NOTE: the key must be unique in the table (it names the embedding rows), and every id
    /// unseen in training encodes to the same 0, so those rows are left out; their raw count is
    /// returned.
    static func encodeSide(_ side: FeatureTable, columns: [String], like raw: FeatureTable, with fitted: FittedPipeline) throws -> (FeatureTable, Int) {
        var t = side
        for (name, c) in zip(raw.names, raw.columns) where !side.contains(name) {
            t = try t.with(name, Column(type: c.type, data: Column.gather(c.data, [Int](repeating: -1, count: side.rowCount)),
                                        validity: Validity(count: side.rowCount, valid: false)))
        }
        let encoded = try fitted.apply(t).select(columns)
        let known = try encoded.filter(columns[0], numeric: { $0 != 0 }).orderBy([columns[0]])
        return (known, encoded.rowCount - known.rowCount)
    }
}

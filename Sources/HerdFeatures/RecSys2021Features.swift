import Foundation
import HerdData

/// The feature tables of the RecSys 2021 workflow (written to `W/features/` by
/// `herd preprocess recsys2021`), the counterpart of Friesian's `wnd_preprocess_recsys.py`.
///
/// ```
/// train  [rows]   the pipeline's output: label (any engagement) and the four engagement flags,
///                 tweet_id, present_media, tweet_type, language, hashtags, present_domains,
///                 present_links (most frequent id), user ids (one shared index), is_verified and
///                 engagee_follows_engager (0/1), count bins (0 ..< 8), present_media_language
///                 (600 buckets), len_* (min-max scaled), tweet_timestamp and the account
///                 creation times (raw)
/// test   [rows]   the same columns, the fitted pipeline applied to the test file
/// users  [U]      enaging_user_id (key) + the engaging user's columns   — one row per known user
/// items  [I]      tweet_id (key) + the tweet's and its author's columns — one row per known tweet
/// unseenUsers [U']  enaging_user_id_key + the user columns (enaging_user_id = 0) — one row per
///                 user whose id is not in the training index (new in test, or rarer than freq_limit)
/// unseenItems [I']  tweet_id_key + the item columns (tweet_id = 0), likewise
/// ```
///
/// Side tables take each key's latest row by `tweet_timestamp` over train + test, with the same
/// names and encodings as `train`; keys that encode to 0 (not in the training index) are left
/// out, since they all share id 0; rows are sorted by key. Those entities are told apart by a row
/// key (`rowKey(of:)`, a column of train and test): the id where it is known, else a fresh id at or
/// above the index's size, one per raw id — the unseen tables are keyed by it, so their
/// embeddings (computed from their other features, the id out of vocabulary) can be looked up.
public struct RecSys2021Features: Sendable, Equatable {
    public var train: FeatureTable
    public var test: FeatureTable
    public var users: FeatureTable
    public var items: FeatureTable
    /// Users not in the training index, keyed by `rowKey(of: userKey)`.
    public var unseenUsers: FeatureTable
    /// Tweets not in the training index, keyed by `rowKey(of: itemKey)`.
    public var unseenItems: FeatureTable
    /// The fitted pipeline (raw columns → encoded), for the test split and serving.
    public var fitted: FittedPipeline
    /// Cardinality of every categorical column (ids `0 ..< size`).
    public var sizes: [String: Int]
}

extension RecSys2021Features {
    /// Key of the user table: the engaging user (the one who sees the tweet).
    public static let userKey = "enaging_user_id"
    /// Key of the item table: the tweet.
    public static let itemKey = "tweet_id"
    /// The row-key column of an id column: the id where it is known (non-zero), else a fresh id
    /// `size + k` per distinct raw value (k from 0, in order of first appearance in train, then test).
    public static func rowKey(of key: String) -> String { key + "_key" }
    /// The time a row's feature values were observed (latest wins in the side tables).
    public static let timeColumn = "tweet_timestamp"
    /// User-table columns, key first.
    public static let userColumns = [userKey, "enaging_user_follower_count", "enaging_user_following_count", "enaging_user_is_verified"]
    /// Item-table columns, key first: the tweet and its author (`engaged_with_user_…`).
    public static let itemColumns = [
        itemKey, "present_media", "tweet_type", "language", "hashtags", "present_domains", "present_links",
        "len_hashtags", "len_domains", "len_links", "present_media_language",
        "engaged_with_user_id", "engaged_with_user_follower_count", "engaged_with_user_following_count", "engaged_with_user_is_verified",
    ]

    /// The feature pipeline: a copy of `examples/recsys2021/pipeline.json` (a test keeps them
    /// equal), Friesian's `wnd_preprocess_recsys.py` step by step:
    ///
    /// - label = any engagement (plus the four engagement flags, for multi-task models);
    /// - present_media: the first two media joined by `_`, Friesian's 13-entry media map
    ///   (`""` = no media = 0); tweet_type: Friesian's type map shifted by one so that 0 is
    ///   unknown as in every other Herd index (Quote 1, Retweet 2, TopLevel 3);
    /// - is_verified / engagee_follows_engager: false 0, true 1 (Friesian casts the booleans);
    /// - language and tweet_id categorified; one user index shared by `engaged_with_user_id` and
    ///   `enaging_user_id`; hashtags, domains and links split, categorified element by element,
    ///   and each row keeps its most frequent known element (`keep_most_frequent`);
    /// - the four counts binned at 1, 1e2 … 1e7 (8 bins); present_media × language hashed into
    ///   600 buckets as `present_media_language` (Friesian's `cross_columns` name); the three
    ///   list lengths min-max scaled.
    ///
    /// NOTE: the user-id and list indices keep values seen at least twice (`freq_limit` 2), so
    /// id 0 (unknown) is trained on the rare users a model will meet in test and serving;
    /// Friesian keeps every value (`--freq-limit 1` reproduces it). tweet_id keeps every tweet:
    /// it keys the item table.
    public static let pipelineJSON = """
        {"steps": [
          {"op": "not_null", "columns": ["reply_timestamp", "retweet_timestamp", "retweet_with_comment_timestamp", "like_timestamp"],
           "out_columns": ["reply", "retweet", "retweet_with_comment", "like"]},
          {"op": "any", "columns": ["reply", "retweet", "retweet_with_comment", "like"], "out_column": "label"},
          {"op": "drop", "columns": ["reply_timestamp", "retweet_timestamp", "retweet_with_comment_timestamp", "like_timestamp", "text_tokens"]},
          {"op": "list_length", "columns": ["hashtags", "present_domains", "present_links"],
           "out_columns": ["len_hashtags", "len_domains", "len_links"]},
          {"op": "join_list", "columns": ["present_media"], "separator": "_", "limit": 2},
          {"op": "map_encode", "columns": ["present_media"],
           "mapping": {"": 0, "GIF": 1, "GIF_GIF": 2, "GIF_Photo": 3, "GIF_Video": 4, "Photo": 5, "Photo_GIF": 6, "Photo_Photo": 7,
                       "Photo_Video": 8, "Video": 9, "Video_GIF": 10, "Video_Photo": 11, "Video_Video": 12}},
          {"op": "map_encode", "columns": ["tweet_type"], "mapping": {"Quote": 1, "Retweet": 2, "TopLevel": 3}},
          {"op": "map_encode", "columns": ["engaged_with_user_is_verified", "enaging_user_is_verified", "engagee_follows_engager"],
           "mapping": {"false": 0, "true": 1}},
          {"op": "categorify", "columns": ["language", "tweet_id"]},
          {"op": "categorify", "columns": [["engaged_with_user_id", "enaging_user_id"], "hashtags", "present_domains", "present_links"],
           "freq_limit": 2},
          {"op": "keep_most_frequent", "columns": ["hashtags", "present_domains", "present_links"]},
          {"op": "fillna", "value": 0},
          {"op": "cut_bins", "columns": ["engaged_with_user_follower_count", "engaged_with_user_following_count",
                                         "enaging_user_follower_count", "enaging_user_following_count"],
           "bins": [1, 100, 1000, 10000, 100000, 1000000, 10000000],
           "out_columns": ["engaged_with_user_follower_count", "engaged_with_user_following_count",
                           "enaging_user_follower_count", "enaging_user_following_count"]},
          {"op": "cross_hash_encode", "columns": ["present_media", "language"], "bins": 600, "name": "present_media_language"},
          {"op": "min_max_scale", "columns": ["len_hashtags", "len_domains", "len_links"]}
        ]}
        """

    /// The built-in pipeline, with the user-id/list index's `freq_limit` and the cross's bucket
    /// count replaced when given.
    public static func pipeline(freqLimit: Int? = nil, crossBuckets: Int? = nil) throws -> Pipeline {
        guard case .object(var root) = try JSONDecoder().decode(JSONValue.self, from: Data(pipelineJSON.utf8)),
              case .array(var steps)? = root["steps"] else {
            throw FeatureError.invalidPipeline("RecSys2021Features.pipelineJSON: not {\"steps\": [...]}")
        }
        for (i, step) in steps.enumerated() {
            guard case .object(var o) = step, case .string(let op)? = o["op"] else { continue }
            if let freqLimit, op == "categorify", o["freq_limit"] != nil { o["freq_limit"] = .int(Int64(freqLimit)) }
            if let crossBuckets, op == "cross_hash_encode" { o["bins"] = .int(Int64(crossBuckets)) }
            steps[i] = .object(o)
        }
        root["steps"] = .array(steps)
        return try Pipeline.decode(json: .object(root), source: "the built-in RecSys 2021 pipeline")
    }

    /// The challenge files' layout (`RecSys2021Schema.standard`: `\u{1}`-separated, no header,
    /// list fields split on tab), for files that come without a `schema.json`.
    public static func builtInSchema() throws -> CSVSchema {
        let data = try JSONEncoder().encode(RecSys2021Schema.standard)
        let schema = try JSONDecoder().decode(CSVSchema.self, from: data)
        try schema.validate()
        return schema
    }
}

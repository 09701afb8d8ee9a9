import Foundation
import HerdModels

/// Built-in model specs, selectable by name (`herd train --spec recsys2021`).
///
/// NOTE: the JSON is kept in the binary so that `--spec recsys2021` works from any directory; the
/// text is the same as `examples/recsys2021/{wnd,two_tower}.json` (a test compares them byte for
/// byte): edit both together.
extension TableModelSpec {
    /// Names accepted by `builtIn(_:kind:)`.
    public static let builtInNames = ["recsys2021"]

    /// The built-in spec `name` for a `kind` model: RecSys 2021 (the columns
    /// `examples/recsys2021/pipeline.json` produces) → Friesian's W&D (also read by DLRM, DeepFM and
    /// DCN) or two-tower inputs. Nil for an unknown name.
    public static func builtIn(_ name: String, kind: ModelKind) throws -> TableModelSpec? {
        guard let text = builtInText(name, kind: kind) else { return nil }
        return try decode(Data(text.utf8), source: "built-in spec \(name) (\(kind == .twotower ? "two_tower" : "wnd").json)")
    }

    /// The JSON text of a built-in spec (the file under `examples/<name>/`).
    public static func builtInText(_ name: String, kind: ModelKind) -> String? {
        guard name == "recsys2021" else { return nil }
        return kind == .twotower ? recsys2021TwoTower : recsys2021WideAndDeep
    }

    static let recsys2021WideAndDeep = """
{"model": "wnd",
 "labels": ["reply", "retweet", "retweet_with_comment", "like"],
 "wide_base_cols": ["engaged_with_user_is_verified", "enaging_user_is_verified"],
 "wide_cross_cols": ["present_media_language"],
 "indicator_cols": ["present_media", "tweet_type", "language", "engagee_follows_engager",
                    "engaged_with_user_follower_count", "engaged_with_user_following_count",
                    "enaging_user_follower_count", "enaging_user_following_count"],
 "embed_cols": ["engaged_with_user_id", "enaging_user_id", "hashtags", "present_domains"],
 "embed_out_dims": [8, 8, 8, 8],
 "continuous_cols": ["len_hashtags", "len_domains", "len_links"],
 "hidden_units": [1024, 512, 256],
 "batch_norm": true,
 "dropout": 0.1}

"""

    static let recsys2021TwoTower = """
{"model": "twotower",
 "labels": ["reply", "retweet", "retweet_with_comment", "like"],
 "user": {"id": "enaging_user_id",
          "indicator_cols": ["enaging_user_is_verified", "enaging_user_follower_count", "enaging_user_following_count"],
          "embed_cols": ["enaging_user_id"]},
 "item": {"id": "tweet_id",
          "indicator_cols": ["engaged_with_user_is_verified", "present_media", "tweet_type", "language",
                             "engaged_with_user_follower_count", "engaged_with_user_following_count"],
          "embed_cols": ["engaged_with_user_id", "hashtags", "present_links", "present_domains"],
          "numerical_cols": ["len_hashtags", "len_domains", "len_links"]},
 "hidden_units": [1024, 512, 128],
 "embed_dim": 16,
 "loss": "bce"}

"""
}

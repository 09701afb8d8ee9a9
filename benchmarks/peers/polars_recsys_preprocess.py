#!/usr/bin/env python3
"""Polars twin of `herd preprocess` with examples/recsys2021/{schema,pipeline}.json.

Input: a RecSys 2021 file (\\x01-separated, no header, 24 columns, list fields split on \\t).
Work (same steps as the Herd pipeline): labels = engagement timestamp not null; drop the
timestamps, text_tokens and tweet_id; list lengths of hashtags/domains/links; fill numeric nulls
with 0; one shared index over both user-id columns and one index per other categorical column
(lists element by element), ids 1..K by descending frequency (ties by value), 0 = null/unknown,
freq_limit 2; follower/following counts cut at [1, 1e2, …, 1e7]; a 600-bucket cross of
tweet_type × language (polars' own hash, not Friesian's MD5 — the bucket ids differ from Herd's,
the work is comparable); min-max scaling of the lengths.
Reported (last line, JSON): read_s, transform_s, rows, rows_per_s, threads.
"""
import argparse, json, os, sys, time

COLUMNS = ["text_tokens", "hashtags", "tweet_id", "present_media", "present_links", "present_domains",
           "tweet_type", "language", "tweet_timestamp", "engaged_with_user_id", "engaged_with_user_follower_count",
           "engaged_with_user_following_count", "engaged_with_user_is_verified", "engaged_with_user_account_creation",
           "enaging_user_id", "enaging_user_follower_count", "enaging_user_following_count", "enaging_user_is_verified",
           "enaging_user_account_creation", "engagee_follows_engager", "reply_timestamp", "retweet_timestamp",
           "retweet_with_comment_timestamp", "like_timestamp"]
LISTS = ["text_tokens", "hashtags", "present_media", "present_links", "present_domains"]
INTS = ["tweet_timestamp", "engaged_with_user_follower_count", "engaged_with_user_following_count",
        "engaged_with_user_account_creation", "enaging_user_follower_count", "enaging_user_following_count",
        "enaging_user_account_creation", "reply_timestamp", "retweet_timestamp", "retweet_with_comment_timestamp",
        "like_timestamp"]
LABELS = {"reply_timestamp": "reply", "retweet_timestamp": "retweet",
          "retweet_with_comment_timestamp": "retweet_with_comment", "like_timestamp": "like"}
COUNTS = ["engaged_with_user_follower_count", "engaged_with_user_following_count",
          "enaging_user_follower_count", "enaging_user_following_count"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    os.environ["POLARS_MAX_THREADS"] = str(a.threads)
    import polars as pl

    t0 = time.perf_counter()
    df = pl.read_csv(a.data, separator="\x01", has_header=False, new_columns=COLUMNS, quote_char=None,
                     schema_overrides={c: (pl.Int64 if c in INTS else pl.String) for c in COLUMNS})
    df = df.with_columns([pl.col(c).str.split("\t") for c in LISTS])
    t1 = time.perf_counter()

    df = df.with_columns([pl.col(k).is_not_null().cast(pl.Int64).alias(v) for k, v in LABELS.items()])
    df = df.drop([*LABELS.keys(), "text_tokens", "tweet_id"])
    df = df.with_columns([pl.col(c).list.len().fill_null(0).cast(pl.Int64).alias(n) for c, n in
                          [("hashtags", "len_hashtags"), ("present_domains", "len_domains"), ("present_links", "len_links")]])
    df = df.with_columns([pl.col(c).fill_null(0) for c, t in df.schema.items() if t == pl.Int64])

    def index(values):  # a Series of values -> {value: id}
        vc = values.drop_nulls().value_counts(name="n").filter(pl.col("n") >= 2)
        vc = vc.sort(["n", vc.columns[0]], descending=[True, False])
        return dict(zip(vc[vc.columns[0]].to_list(), range(1, vc.height + 1)))

    users = index(pl.concat([df["engaged_with_user_id"], df["enaging_user_id"]]))
    exprs = [pl.col(c).replace_strict(users, default=0, return_dtype=pl.Int64) for c in ["engaged_with_user_id", "enaging_user_id"]]
    for c in ["language", "tweet_type"]:
        exprs.append(pl.col(c).replace_strict(index(df[c]), default=0, return_dtype=pl.Int64))
    for c in ["present_media", "hashtags", "present_domains", "present_links"]:
        m = index(df[c].explode())
        exprs.append(pl.col(c).list.eval(pl.element().replace_strict(m, default=0, return_dtype=pl.Int64)).fill_null([]))
    df = df.with_columns(exprs)
    bins = [1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7]
    df = df.with_columns([sum((pl.col(c) >= b).cast(pl.Int64) for b in bins).alias(c) for c in COUNTS])
    df = df.with_columns((pl.concat_str([pl.col("tweet_type").cast(pl.String), pl.col("language").cast(pl.String)]).hash() % 600)
                         .cast(pl.Int64).alias("crossed_tweet_type_language"))
    lens = ["len_hashtags", "len_domains", "len_links"]
    df = df.with_columns([((pl.col(c) - pl.col(c).min()) / (pl.col(c).max() - pl.col(c).min())).alias(c) for c in lens])
    t2 = time.perf_counter()
    out = {"peer": "polars", "rows": df.height, "columns": df.width, "read_s": t1 - t0, "transform_s": t2 - t1,
           "rows_per_s": df.height / (t2 - t0), "threads": a.threads}
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())

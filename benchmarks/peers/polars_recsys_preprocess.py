#!/usr/bin/env python3
"""Polars twin of `herd preprocess` with examples/recsys2021/{schema,pipeline}.json.

Fits on --train and applies the fitted state to --test (as `herd preprocess --pipeline` on the
train file then `--apply pipeline.fitted.json` on the test file), writing DIR/train.arrow and
DIR/test.arrow (Arrow IPC, uncompressed). The output equals Herd's, column by column
(benchmarks/peers/check_recsys_preprocess.py checks it):

* input: \\x01-separated, no header, 24 columns, list fields split on \\t; an empty field is null;
  text_tokens is not read (lazy scan_csv with projection pushdown, as Herd skips the columns its
  pipeline drops unread; --no-projection reads it with read_csv and drops it);
* engagement flags reply/retweet/retweet_with_comment/like = timestamp not null (int64 0/1),
  label = any of them; drop the four timestamps and text_tokens; list lengths of
  hashtags/domains/links (null list -> 0);
* present_media: its first two elements joined with "_" (null -> ""), then Friesian's fixed media
  map ("" 0, GIF 1, …, Video_Video 12); tweet_type Quote/Retweet/TopLevel -> 1/2/3; the three
  boolean texts false/true -> 0/1 (unknown or null -> 0);
* categorify (fitted on train; ids 1..K by descending frequency, ties by ascending UTF-8 bytes,
  0 = null/unknown/rarer than freq_limit): language and tweet_id (freq_limit 1); one shared index
  over both user-id columns, hashtags, present_domains, present_links (element by element;
  freq_limit 2); the three lists then keep their most frequent known id (the smallest non-zero id,
  0 if none);
* fill numeric nulls with 0; follower/following counts -> bin index over [1, 1e2, ..., 1e7];
* present_media_language = int(md5(str(media_id) + str(language_id)).hexdigest(), 16) % 600
  (Friesian's cross_hash_encode; the few distinct pairs are hashed with hashlib);
* min-max scaling of the three lengths with the train (min, max) (constant column -> 0.5).

Reported (last line with --json): read_s, transform_s, write_s (train + test), rows (train + test),
rows_per_s = rows / (read + transform + write), peak_rss_bytes (getrusage), threads.
"""
import argparse, hashlib, json, os, resource, sys, time

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
MEDIA = {"": 0, "GIF": 1, "GIF_GIF": 2, "GIF_Photo": 3, "GIF_Video": 4, "Photo": 5, "Photo_GIF": 6, "Photo_Photo": 7,
         "Photo_Video": 8, "Video": 9, "Video_GIF": 10, "Video_Photo": 11, "Video_Video": 12}
TWEET_TYPES = {"Quote": 1, "Retweet": 2, "TopLevel": 3}
BOOLEANS = ["engaged_with_user_is_verified", "enaging_user_is_verified", "engagee_follows_engager"]
MOST_FREQUENT = ["hashtags", "present_domains", "present_links"]
COUNTS = ["engaged_with_user_follower_count", "engaged_with_user_following_count",
          "enaging_user_follower_count", "enaging_user_following_count"]
LENGTHS = {"hashtags": "len_hashtags", "present_domains": "len_domains", "present_links": "len_links"}
# (columns sharing one index, freq_limit), in pipeline order.
INDEX_GROUPS = [(["language"], 1), (["tweet_id"], 1), (["engaged_with_user_id", "enaging_user_id"], 2),
                (["hashtags"], 2), (["present_domains"], 2), (["present_links"], 2)]
BINS = [1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7]
CROSS = ("present_media", "language", 600, "present_media_language")
UNREAD = ["text_tokens"]  # dropped by the pipeline before any step reads it


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", required=True, help="RecSys 2021-format file to fit on")
    p.add_argument("--test", help="file to apply the fitted state to (optional)")
    p.add_argument("--out", help="output directory for train.arrow/test.arrow (default: no output written)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-projection", action="store_true", help="read every column (eager read_csv), drop the unused ones after")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    a = p.parse_args()
    os.environ["POLARS_MAX_THREADS"] = str(a.threads)
    import polars as pl

    schema = {c: (pl.Int64 if c in INTS else pl.String) for c in COLUMNS}

    def read(path):
        if a.no_projection:
            df = pl.read_csv(path, separator="\x01", has_header=False, new_columns=COLUMNS, quote_char=None,
                             schema_overrides=schema)
        else:
            used = [c for c in COLUMNS if c not in UNREAD]
            df = pl.scan_csv(path, separator="\x01", has_header=False, schema=schema, quote_char=None).select(used).collect()
        return df.with_columns([pl.col(c).str.split("\t") for c in LISTS if c in df.columns])

    def stateless(df):
        df = df.with_columns([pl.col(k).is_not_null().cast(pl.Int64).alias(v) for k, v in LABELS.items()])
        df = df.with_columns(pl.max_horizontal([pl.col(v) for v in LABELS.values()]).alias("label"))
        df = df.drop([*LABELS.keys(), *UNREAD], strict=False)
        df = df.with_columns([pl.col(c).list.len().fill_null(0).cast(pl.Int64).alias(n) for c, n in LENGTHS.items()])
        media = pl.col("present_media").list.head(2).list.join("_").fill_null("")
        df = df.with_columns(
            media.replace_strict(MEDIA, default=0, return_dtype=pl.Int64).alias("present_media"),
            pl.col("tweet_type").replace_strict(TWEET_TYPES, default=0, return_dtype=pl.Int64).fill_null(0),
            *[pl.col(c).replace_strict({"false": 0, "true": 1}, default=0, return_dtype=pl.Int64).fill_null(0) for c in BOOLEANS])
        return df.with_columns([pl.col(c).fill_null(0) for c, t in df.schema.items() if t in (pl.Int64, pl.Float64)])

    def fit_index(df, cols, freq_limit):  # -> (values Series, ids Series)
        values = pl.concat([(df[c].explode() if isinstance(df.schema[c], pl.List) else df[c]) for c in cols])
        vc = values.drop_nulls().value_counts(name="n").filter(pl.col("n") >= freq_limit)
        key = vc.columns[0]
        vc = vc.sort(["n", key], descending=[True, False])
        return vc[key], pl.Series("id", range(1, vc.height + 1), dtype=pl.Int64)

    # NOTE: ids are looked up with joins (as Friesian does), not replace_strict: with a large
    # index (the ~90k user ids) polars 2.1's replace_strict took 9 s where a join takes 0.4 s.
    def encode(df, index, cols):
        old, new = index
        for c in cols:
            m = pl.DataFrame({c: old, "__id": new})
            if isinstance(df.schema[c], pl.List):
                # Explode (an empty or null list becomes one null element; real elements are
                # never null), look up, and gather back per row without those nulls.
                flat = df.select(pl.int_range(pl.len()).alias("__row"), pl.col(c)).explode(c)
                flat = flat.join(m, on=c, how="left", maintain_order="left")
                flat = flat.with_columns(pl.when(pl.col(c).is_null()).then(None).otherwise(pl.col("__id").fill_null(0)).alias("__id"))
                ids = flat.group_by("__row", maintain_order=True).agg(pl.col("__id").drop_nulls())["__id"]
                df = df.with_columns(ids.alias(c))
            else:
                df = (df.join(m, on=c, how="left", maintain_order="left")
                        .with_columns(pl.col("__id").fill_null(0).alias(c)).drop("__id"))
        return df

    def cross_table(df):
        a, b, bins, name = CROSS
        pairs = df.select(a, b).unique()
        buckets = [int(hashlib.md5(f"{x}{y}".encode()).hexdigest(), 16) % bins for x, y in pairs.iter_rows()]
        return pairs.with_columns(pl.Series(name, buckets, dtype=pl.Int64))

    def transform(df, state):
        for (cols, _), index in zip(INDEX_GROUPS, state["indices"]):
            df = encode(df, index, cols)
        df = df.with_columns([pl.col(c).list.eval(pl.element().filter(pl.element() > 0)).list.min().fill_null(0).cast(pl.Int64)
                              for c in MOST_FREQUENT])
        df = df.with_columns([sum((pl.col(c) >= b).cast(pl.Int64) for b in BINS).alias(c) for c in COUNTS])
        df = df.join(cross_table(df), on=[CROSS[0], CROSS[1]], how="left", maintain_order="left")
        exprs = []
        for c, (lo, hi) in state["min_max"].items():
            exprs.append(pl.lit(0.5, dtype=pl.Float64).alias(c) if hi == lo else ((pl.col(c) - lo) / (hi - lo)).alias(c))
        return df.with_columns(exprs)

    def fit(df):
        state = {"indices": [], "min_max": {}}
        for cols, limit in INDEX_GROUPS:
            state["indices"].append(fit_index(df, cols, limit))
        for c in LENGTHS.values():
            lo, hi = df[c].min(), df[c].max()
            state["min_max"][c] = (float(lo if lo is not None else 0), float(hi if hi is not None else 0))
        return state

    times = {"read_s": 0.0, "transform_s": 0.0, "write_s": 0.0}
    rows = 0
    state = None
    for split, path in (("train", a.train), ("test", a.test)):
        if path is None:
            continue
        t0 = time.perf_counter()
        df = stateless(read(path))
        t1 = time.perf_counter()
        if state is None:
            state = fit(df)
        df = transform(df, state)
        t2 = time.perf_counter()
        if a.out:
            os.makedirs(a.out, exist_ok=True)
            df.write_ipc(os.path.join(a.out, f"{split}.arrow"), compression="uncompressed")
        t3 = time.perf_counter()
        times["read_s"] += t1 - t0
        times["transform_s"] += t2 - t1
        times["write_s"] += t3 - t2
        rows += df.height
        print(f"{split}: {df.height} rows, {df.width} columns; read {t1 - t0:.2f} s, "
              f"{'fit+transform' if split == 'train' else 'apply'} {t2 - t1:.2f} s, write {t3 - t2:.2f} s", file=sys.stderr)
        del df
    total = sum(times.values())
    out = {"peer": "polars", "polars": pl.__version__, "rows": rows, **times, "wall_s": total,
           "rows_per_s": rows / max(total, 1e-9), "threads": a.threads,
           "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
           "index_sizes": {"+".join(cols): len(ix[0]) + 1 for (cols, _), ix in zip(INDEX_GROUPS, state["indices"])}}
    if a.json:
        print(json.dumps(out))
    else:
        print(f"{rows} rows in {total:.2f} s: {out['rows_per_s']:,.0f} rows/s, peak RSS {out['peak_rss_bytes'] / 2**20:,.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Checks that Herd's and the polars twin's RecSys 2021 preprocessing outputs agree.

Usage: check_recsys_preprocess.py HERD.herdtable POLARS.arrow [--tolerance 1e-6] [--json]

Reads Herd's `.herdtable` directly (magic, JSON header, 64-byte aligned little-endian buffers; see
Sources/HerdFeatures/TableFile.swift) and the twin's Arrow IPC file, and compares every column by
name: the same column set and row count; int64 columns (ids, bins, labels, the hashed cross)
equal; double columns within --tolerance (absolute); list columns with equal lengths and equal
elements; nulls in the same rows. Exit status 0 when they agree, 1 with the first differences
named otherwise. Last line with --json: {"equal": bool, "rows": n, "columns": k, "differences": [...]}.
"""
import argparse, json, struct, sys

import numpy as np


def read_herdtable(path):
    """{name: (type, validity or None, data)}; data: ndarray, or (offsets, values) for lists and
    strings (strings: values are bytes)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:8] != b"HERDTBL1":
        raise SystemExit(f"{path}: not a .herdtable (missing HERDTBL1 magic)")
    (hlen,) = struct.unpack_from("<Q", raw, 8)
    header = json.loads(raw[16:16 + hlen])
    rows = header["rows"]
    out = {}
    for col in header["columns"]:
        bufs = list(col["buffers"])

        def take(kind, dtype):
            b = bufs.pop(0)
            assert b["kind"] == kind, (col["name"], b["kind"], kind)
            return np.frombuffer(raw, dtype=dtype, count=b["length"] // np.dtype(dtype).itemsize, offset=b["offset"])

        validity = None
        if bufs and bufs[0]["kind"] == "validity":
            words = take("validity", "<u8")
            validity = np.unpackbits(words.view(np.uint8), bitorder="little")[:rows].astype(bool)

        def data(t):
            if t == "int64":
                return take("values", "<i8")
            if t == "double":
                return take("values", "<f8")
            if t == "string":
                o = take("offsets", "<i8")
                return (o, take("bytes", np.uint8).tobytes())
            o = take("list_offsets", "<i8")
            return (o, data(t.replace("_list", "")))

        out[col["name"]] = (col["type"], validity, data(col["type"]))
    return rows, out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("herd")
    p.add_argument("polars")
    p.add_argument("--tolerance", type=float, default=1e-6)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    import polars as pl

    rows, herd = read_herdtable(a.herd)
    df = pl.read_ipc(a.polars)
    diffs = []
    if df.height != rows:
        diffs.append(f"rows: herd {rows}, polars {df.height}")
    if set(herd) != set(df.columns):
        diffs.append(f"columns only in herd: {sorted(set(herd) - set(df.columns))}, only in polars: {sorted(set(df.columns) - set(herd))}")
    for name in [n for n in herd if n in df.columns] if not diffs else []:
        t, validity, data = herd[name]
        s = df[name]
        pnull = s.is_null().to_numpy()
        hnull = ~validity if validity is not None else np.zeros(rows, dtype=bool)
        if not np.array_equal(pnull, hnull):
            diffs.append(f"{name}: nulls differ in {int((pnull != hnull).sum())} rows (first row {int(np.argmax(pnull != hnull))})")
            continue
        if t in ("int64", "double"):
            pv = s.fill_null(0).to_numpy()
            if t == "int64":
                if s.dtype not in (pl.Int64, pl.Int32, pl.UInt32, pl.UInt64):
                    diffs.append(f"{name}: herd int64, polars {s.dtype}")
                    continue
                bad = (pv.astype(np.int64) != data) & ~hnull
            else:
                bad = (np.abs(pv.astype(np.float64) - data) > a.tolerance) & ~hnull
            if bad.any():
                i = int(np.argmax(bad))
                diffs.append(f"{name}: {int(bad.sum())} rows differ (first row {i}: herd {data[i]}, polars {pv[i]})")
        elif t == "int64_list":
            offsets, values = data
            lengths = np.diff(offsets)
            plen = s.list.len().fill_null(0).to_numpy()
            if not np.array_equal(lengths, plen):
                i = int(np.argmax(lengths != plen))
                diffs.append(f"{name}: list lengths differ in {int((lengths != plen).sum())} rows (first row {i}: herd {lengths[i]}, polars {plen[i]})")
                continue
            pvals = s.explode().drop_nulls().to_numpy() if lengths.sum() else np.zeros(0, dtype=np.int64)
            # NOTE: explode turns an empty list into one null; drop_nulls removes exactly those
            # (the twin's list elements are never null: unknowns are 0).
            if not np.array_equal(pvals.astype(np.int64), values):
                k = int(np.argmax(pvals.astype(np.int64) != values)) if len(pvals) == len(values) else 0
                diffs.append(f"{name}: list elements differ (first flat element {k})")
        else:
            diffs.append(f"{name}: unexpected herd column type {t} after the pipeline")
    result = {"equal": not diffs, "rows": rows, "columns": len(herd), "differences": diffs[:20]}
    for d in diffs[:20]:
        print("DIFF " + d, file=sys.stderr)
    if not diffs:
        print(f"outputs agree: {rows} rows x {len(herd)} columns (ints exact, doubles within {a.tolerance:g})", file=sys.stderr)
    if a.json:
        print(json.dumps(result))
    return 0 if not diffs else 1


if __name__ == "__main__":
    sys.exit(main())

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
import argparse, json, os, sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from herdtable import read_herdtable  # noqa: E402


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

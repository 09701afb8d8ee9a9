#!/usr/bin/env bash
# Herd's ANN indexes vs faiss-cpu (IVFFlat nprobe sweep, HNSWFlat) and hnswlib on the same clustered
# vectors, one query at a time: recall@10 against the exact top-10 and queries/s at the smallest
# setting reaching recall@10 ≥ 0.99, and Herd's best over the best peer.
#   benchmarks/compare-ann.sh [--items "N ..."] [--dim D] [--queries Q] [--clusters C] [--noise X]
#       defaults: items "100000 1000000", dim 128, 1000 queries, the generator's clusters/noise
#       --ivf-only: IVF only on both sides (no HNSW builds, which take many minutes at 1M on 2 cores)
#       --flat-only: the exact index only (Herd's Flat vs faiss IndexFlatIP on 1 and 2 threads)
#       --hnsw-m M, --ef-construction E: the one graph setting every HNSW side builds (default 16, 200)
#       --cache DIR: keep built IVF/HNSW indexes (Herd's and the peers') in DIR (outside the repo, e.g.
#         /work/data/ann-cache), keyed by data and settings; later runs load them and only re-measure
#         queries (build seconds are those of the run that built them)
#   REPEATS=N (default 1): herd and peers alternate N times per size; the ratio is the median of
#   the per-repeat ratios (range in brackets).
#   QUICK=1 benchmarks/compare-ann.sh      20k items, 300 queries (< 3 min)
# JSON (both sides, every size) in benchmarks/results/ann-<stamp>.json.
set -euo pipefail
source "$(dirname "$0")/_common.sh"
cd "$ROOT"
if [[ "${QUICK:-0}" == 1 ]]; then SIZES="20000" QUERIES=300; else SIZES="100000 1000000" QUERIES=1000; fi
DIM=128 EXTRA=()
while (($#)); do
  case "$1" in
    --items) SIZES=$2; shift 2 ;;
    --dim) DIM=$2; shift 2 ;;
    --queries) QUERIES=$2; shift 2 ;;
    --clusters|--noise|--nlist|--hnsw-m|--ef-construction|--cache) EXTRA+=("$1" "$2"); shift 2 ;;
    --ivf-only|--flat-only) EXTRA+=("$1"); shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
HERD=$(find_herd)
PY=${HERD_PEERS_PYTHON:-$(peer_python)}
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT
export OMP_WAIT_POLICY=PASSIVE
OUT="$RESULTS/ann-$STAMP.json"
echo "[" > "$OUT.parts"
first=1
REPEATS=${REPEATS:-1}
for ITEMS in $SIZES; do
 for REP in $(seq "$REPEATS"); do
  check_quiet
  say "herd bench ann --items $ITEMS --dim $DIM --queries $QUERIES ${EXTRA[*]:-} (repeat $REP/$REPEATS)"
  "$HERD" bench ann --items "$ITEMS" --dim "$DIM" --queries "$QUERIES" "${EXTRA[@]}" --write-data "$DATA" --json > "$DATA/herd.out"
  say "peers (faiss-cpu, hnswlib) on the same vectors"
  "$PY" benchmarks/peers/ann_peers.py "$DATA" > "$DATA/peers.out"
  busy_after=$BUSY_PCT; check_quiet
  "$PY" - "$DATA/herd.out" "$DATA/peers.out" "$busy_after" "$BUSY_PCT" >> "$OUT.parts.$ITEMS" <<'PYEOF'
import json, sys
herd = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
peers = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
hb, pb = herd.get("best") or {}, peers.get("best") or {}
out = sys.stderr
print(f"items {herd['items']} × {herd['dim']} ({herd.get('clusters')} clusters, noise {herd.get('noise')}), {herd['queries']} single queries, "
      f"recall@{herd['k']} ≥ {herd['target']}; machine {sys.argv[3]}% / {sys.argv[4]}% busy before/after", file=out)
for who, b in (("herd", hb), ("best peer", pb)):
    if b:
        print(f"  {who:10s} {b['index']:24s} {b['setting']:14s} recall {b['recall']:.4f}  {b['qps']:9.0f} queries/s", file=out)
    else:
        print(f"  {who:10s} nothing reached the target", file=out)
best = {}
for r in herd["results"] + peers["results"]:
    if r["recall"] >= herd["target"] and r["index"] != "Flat":
        name = r["index"] if r in peers["results"] else "herd " + r["index"]
        if name not in best or r["qps"] > best[name]["qps"]:
            best[name] = r
for who, b in sorted(best.items(), key=lambda kv: -kv[1]["qps"]):
    print(f"    {who:28s} {b['setting']:14s} recall {b['recall']:.4f}  {b['qps']:9.0f} queries/s", file=out)
for name in sorted({r["index"] for r in peers["results"]} | {"herd " + r["index"] for r in herd["results"] if r["index"] != "Flat"}):
    if name not in best:
        print(f"    {name:28s} did not reach recall {herd['target']} on its ladder", file=out)
builds = {**{"herd " + k: v for k, v in (herd.get("build_s") or {}).items()}, **(peers.get("build_s") or {})}
if builds:
    print("  build seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in builds.items()), file=out)
ratio = hb["qps"] / pb["qps"] if hb and pb else None
if ratio:
    print(f"  ratio herd / best peer: {ratio:.2f}", file=out)
print(json.dumps({"herd": herd, "peers": peers, "ratio": ratio, "busy_pct_before": float(sys.argv[3]),
                  "busy_pct_after": float(sys.argv[4]), "noisy": max(float(sys.argv[3]), float(sys.argv[4])) > 10}))
PYEOF
 done
  "$PY" - "$OUT.parts.$ITEMS" <<'PYEOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ratios = [r["ratio"] for r in runs if r["ratio"]]
if len(runs) > 1 and ratios:
    print(f"  {len(runs)} repeats: ratio herd / best peer median {statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}); "
          f"herd {statistics.median(r['herd']['best']['qps'] for r in runs):.0f} q/s, peer {statistics.median(r['peers']['best']['qps'] for r in runs):.0f} q/s (medians)",
          file=sys.stderr)
PYEOF
  ((first)) || echo "," >> "$OUT.parts"
  # One JSON value per size: the run's object, or the repeats as an array.
  "$PY" -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]; print(json.dumps(r[0] if len(r) == 1 else r))' "$OUT.parts.$ITEMS" >> "$OUT.parts"
  rm -f "$OUT.parts.$ITEMS"
  first=0
done
echo "]" >> "$OUT.parts"
mv "$OUT.parts" "$OUT"
echo "JSON: $OUT"

#!/usr/bin/env bash
# Herd's ANN indexes vs faiss-cpu (IVFFlat nprobe sweep, HNSWFlat) and hnswlib on the same clustered
# vectors, one query at a time: recall@10 against the exact top-10 and queries/s at the smallest
# setting reaching recall@10 ≥ 0.99, and Herd's best over the best peer.
#   benchmarks/compare-ann.sh [--items N] [--dim D] [--queries Q]      (defaults 100000 128 1000)
# Run it twice for the goal's two sizes: --items 100000 and --items 1000000.
set -euo pipefail
cd "$(dirname "$0")/.."
ITEMS=100000 DIM=128 QUERIES=1000
while (($#)); do
  case "$1" in
    --items) ITEMS=$2; shift 2 ;;
    --dim) DIM=$2; shift 2 ;;
    --queries) QUERIES=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
HERD=$(scripts/build | tail -1)
PY=${HERD_PEERS_PYTHON:-$(benchmarks/peers/setup | tail -1)}
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT
echo "== herd bench ann --items $ITEMS --dim $DIM --queries $QUERIES" >&2
"$HERD" bench ann --items "$ITEMS" --dim "$DIM" --queries "$QUERIES" --write-data "$DATA" --json > "$DATA/herd.out"
echo "== peers (faiss-cpu, hnswlib) on the same vectors" >&2
"$PY" benchmarks/peers/ann_peers.py "$DATA" > "$DATA/peers.out"
"$PY" - "$DATA/herd.out" "$DATA/peers.out" <<'PYEOF'
import json, sys
herd = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
peers = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
hb, pb = herd.get("best") or {}, peers.get("best") or {}
print(f"items {herd['items']} × {herd['dim']}, {herd['queries']} single queries, recall@{herd['k']} ≥ {herd['target']}")
for who, b in (("herd", hb), ("best peer", pb)):
    if b:
        print(f"  {who:10s} {b['index']:24s} {b['setting']:14s} recall {b['recall']:.4f}  {b['qps']:9.0f} queries/s")
    else:
        print(f"  {who:10s} nothing reached the target")
if hb and pb:
    print(f"  ratio herd / best peer: {hb['qps'] / pb['qps']:.2f}")
PYEOF

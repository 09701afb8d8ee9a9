#!/usr/bin/env bash
# RecSys 2021 training/inference throughput: Herd vs the PyTorch twins of Friesian's W&D and the
# two-tower model, on the same preprocessed table, interleaved over REPEATS; median of per-repeat
# Herd / PyTorch ratios.
#
# Usage: benchmarks/compare-recsys-train.sh [TABLE]
#   TABLE: a table.herdtable written by `herd preprocess --pipeline examples/recsys2021/pipeline.json`.
#   Without it, uses (or makes) benchmarks/results/recsys-train-data-<rows>/train/table.herdtable from
#   `herd generate recsys2021 --rows $ROWS --seed 1` and `herd preprocess`.
# Env:   ROWS (200000)  BATCH (1024)  STEPS (50)  WARMUP (10)  MODELS ("wnd twotower")  REPEATS (3)
#        PEER_ARGS (extra torch_recsys.py args)  HERD  HERD_ARGS (extra `herd bench recsys` args)
#        QUIET_MAX (10 %) QUIET_SECONDS (1)
# Both sides: embedding dim 16, W&D deep 1024-512-256-1 with batch norm and dropout 0.1, towers
# 1024-512-128, Adam / lazy Adam (SparseAdam) / FTRL, lr 0.001, label = any engagement (see
# peers/torch_recsys.py and `herd bench recsys --help`). Writes
# benchmarks/results/recsys-train-<UTC stamp>.json. Final figures: release build, quiet machine.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

ROWS=${ROWS:-200000}; BATCH=${BATCH:-1024}; STEPS=${STEPS:-50}; WARMUP=${WARMUP:-10}
MODELS=${MODELS:-"wnd twotower"}; REPEATS=${REPEATS:-3}
PY=$(peer_python)
HERD_BIN=$(find_herd || true)

TABLE=${1:-}
if [[ -z "$TABLE" ]]; then
  if [[ -z "$HERD_BIN" ]]; then
    warn "no table given and herd unavailable to make one: pass a table.herdtable"
    exit 2
  fi
  DIR="$RESULTS/recsys-train-data-$ROWS"
  TABLE="$DIR/train/table.herdtable"
  if [[ ! -s "$TABLE" ]]; then
    say "generating $ROWS rows and preprocessing them into $DIR"
    "$HERD_BIN" generate recsys2021 --rows "$ROWS" --seed 1 --out "$DIR" >&2
    "$HERD_BIN" preprocess --pipeline "$ROOT/examples/recsys2021/pipeline.json" --schema "$ROOT/examples/recsys2021/schema.json" \
      --input "$DIR/train.txt" --out "$DIR/train" >&2
  fi
fi
[[ -s "$TABLE" ]] || { warn "no such table: $TABLE"; exit 2; }
say "table: $TABLE ($(du -h "$TABLE" | cut -f1))"

check_quiet
BUSY_BEFORE=$BUSY_PCT
RUNS=$(mktemp); trap 'rm -f "$RUNS"' EXIT
# NOTE: interleaved as compare-train.sh: the machine's speed drifts over minutes, so ratios are
# taken within each repeat and the median is reported.
for model in $MODELS; do
  for rep in $(seq "$REPEATS"); do
    say "pytorch $model (batch $BATCH, $STEPS steps, repeat $rep/$REPEATS)"
    # shellcheck disable=SC2086
    j=$(last_json "$PY" "$ROOT/benchmarks/peers/torch_recsys.py" --table "$TABLE" --model "$model" \
          --batch-size "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --json ${PEER_ARGS:-})
    echo "{\"who\":\"pytorch\",\"model\":\"$model\",\"layout\":\"twin\",\"rep\":$rep,\"result\":$j}" >> "$RUNS"
    if [[ -n "$HERD_BIN" ]]; then
      say "herd $model (batch $BATCH, repeat $rep/$REPEATS)"
      # shellcheck disable=SC2086
      j=$(last_json "$HERD_BIN" bench recsys --table "$TABLE" --model "$model" --batch-size "$BATCH" \
            --steps "$STEPS" --warmup "$WARMUP" --json ${HERD_ARGS:-})
      echo "{\"who\":\"herd\",\"model\":\"$model\",\"layout\":null,\"rep\":$rep,\"result\":$j}" >> "$RUNS"
    fi
  done
done
check_quiet
BUSY_AFTER=$BUSY_PCT

OUT="$RESULTS/recsys-train-$STAMP.json"
"$PY" "$ROOT/benchmarks/_summarize.py" recsys-train "$RUNS" "$OUT" \
  --meta table="$TABLE" batch_size="$BATCH" steps="$STEPS" warmup="$WARMUP" busy_pct_before="$BUSY_BEFORE" \
         busy_pct_after="$BUSY_AFTER" quiet_max="${QUIET_MAX:-10}" herd="${HERD_BIN:-}" stamp="$STAMP"

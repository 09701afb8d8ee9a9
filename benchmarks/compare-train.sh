#!/usr/bin/env bash
# Training/inference throughput: Herd vs the PyTorch twins (per-field and fused layouts), DLRM and
# Wide & Deep, at one batch size. Prints a table with Herd / best-PyTorch-layout ratios and writes
# benchmarks/results/train-<UTC stamp>.json.
#
# Usage: benchmarks/compare-train.sh
# Env:   BATCH (2048)  STEPS (50 timed steps)  WARMUP (10)  MODELS ("dlrm wnd")  REPEATS (3, interleaved)
#        PEER_ARGS (extra torch_ctr.py args, e.g. "--table-size 100000")
#        HERD (herd binary; default: built by scripts/build)  HERD_ARGS (extra `herd bench train` args)
#        QUIET_MAX (10 %) QUIET_SECONDS (1)
# Take final figures only with a release build on a quiet machine.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

BATCH=${BATCH:-2048}; STEPS=${STEPS:-50}; WARMUP=${WARMUP:-10}; MODELS=${MODELS:-"dlrm wnd"}; REPEATS=${REPEATS:-3}
PY=$(peer_python)
check_quiet
BUSY_BEFORE=$BUSY_PCT
HERD_BIN=$(find_herd || true)

RUNS=$(mktemp); trap 'rm -f "$RUNS"' EXIT
# NOTE: the machine's own speed drifts over minutes, so the peers and Herd run interleaved, REPEATS
# times; ratios are taken within each repeat (runs minutes apart) and the median is reported.
for model in $MODELS; do
  for rep in $(seq "$REPEATS"); do
    for layout in per-field fused; do
      say "pytorch $model $layout (batch $BATCH, $STEPS steps, repeat $rep/$REPEATS)"
      # shellcheck disable=SC2086
      j=$(last_json "$PY" "$ROOT/benchmarks/peers/torch_ctr.py" bench --model "$model" --layout "$layout" \
            --batch-size "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --json ${PEER_ARGS:-})
      echo "{\"who\":\"pytorch\",\"model\":\"$model\",\"layout\":\"$layout\",\"rep\":$rep,\"result\":$j}" >> "$RUNS"
    done
    if [[ -n "$HERD_BIN" ]]; then
      say "herd $model (batch $BATCH, repeat $rep/$REPEATS)"
      # shellcheck disable=SC2086
      j=$(last_json "$HERD_BIN" bench train --model "$model" --batch-size "$BATCH" --steps "$STEPS" --json ${HERD_ARGS:-})
      echo "{\"who\":\"herd\",\"model\":\"$model\",\"layout\":null,\"rep\":$rep,\"result\":$j}" >> "$RUNS"
    fi
  done
done
check_quiet
BUSY_AFTER=$BUSY_PCT

OUT="$RESULTS/train-$STAMP.json"
"$PY" "$ROOT/benchmarks/_summarize.py" train "$RUNS" "$OUT" \
  --meta batch_size="$BATCH" steps="$STEPS" warmup="$WARMUP" busy_pct_before="$BUSY_BEFORE" \
         busy_pct_after="$BUSY_AFTER" quiet_max="${QUIET_MAX:-10}" herd="${HERD_BIN:-}" stamp="$STAMP"

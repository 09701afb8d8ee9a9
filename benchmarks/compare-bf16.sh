#!/usr/bin/env bash
# `--precision bf16`: Herd BF16 training/inference throughput against PyTorch FP32 (both embedding
# layouts) and Herd FP32, interleaved per repeat; then quality: Herd FP32 and Herd BF16 trained on
# the same generated Criteo data (same seed, epochs, flags), test AUC compared.
# Goals (issue 2): BF16 training >= 2.5x the best PyTorch FP32 layout; |AUC bf16 - fp32| <= 0.001.
# Writes benchmarks/results/bf16-<UTC stamp>.json.
#
# Usage: benchmarks/compare-bf16.sh [DIR]
#   DIR holds train.txt/test.txt (Criteo TSV); without DIR, `herd generate criteo --rows $ROWS
#   --seed $SEED` into benchmarks/results/data-quality-<rows>-<seed> (reused if present).
# Env:   MODELS ("dlrm wnd")  BATCH (2048)  STEPS (50)  WARMUP (10)  REPEATS (3)  PEER_ARGS  HERD_ARGS
#        ROWS (1000000)  SEED (1)  EPOCHS (1)  TRAIN_ARGS (extra `herd train` args, both precisions)
#        QUALITY_MODELS (the models named in MODELS if set, else dlrm)  SKIP_SPEED=1 / SKIP_QUALITY=1  TOLERANCE (0.001)  GOAL (2.5)
#        NOISE_RUN (1: also train FP32 with seed SEED+1, the seed-to-seed AUC difference as a yardstick)
#        HERD (herd binary; default: built by scripts/build)  QUIET_MAX (10 %) QUIET_SECONDS (1)
# Take final figures only with a release build on a quiet machine.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

QUALITY_MODELS=${QUALITY_MODELS:-${MODELS:-dlrm}}
MODELS=${MODELS:-"dlrm wnd"}; BATCH=${BATCH:-2048}; STEPS=${STEPS:-50}; WARMUP=${WARMUP:-10}; REPEATS=${REPEATS:-3}
ROWS=${ROWS:-1000000}; SEED=${SEED:-1}; EPOCHS=${EPOCHS:-1}
PY=$(peer_python)
HERD_BIN=$(find_herd) || { warn "herd unavailable: nothing to compare"; exit 2; }
check_quiet
BUSY_BEFORE=$BUSY_PCT

RUNS=$(mktemp); trap 'rm -f "$RUNS"' EXIT
if [[ "${SKIP_SPEED:-0}" != 1 ]]; then
  # NOTE: interleaved like compare-train.sh (the machine's speed drifts over minutes).
  for model in $MODELS; do
    for rep in $(seq "$REPEATS"); do
      for layout in per-field fused; do
        say "pytorch fp32 $model $layout (batch $BATCH, repeat $rep/$REPEATS)"
        # shellcheck disable=SC2086
        j=$(last_json "$PY" "$ROOT/benchmarks/peers/torch_ctr.py" bench --model "$model" --layout "$layout" \
              --batch-size "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --json ${PEER_ARGS:-})
        echo "{\"phase\":\"speed\",\"who\":\"pytorch\",\"model\":\"$model\",\"layout\":\"$layout\",\"rep\":$rep,\"result\":$j}" >> "$RUNS"
      done
      for prec in fp32 bf16; do
        say "herd $prec $model (batch $BATCH, repeat $rep/$REPEATS)"
        # shellcheck disable=SC2086
        j=$(last_json "$HERD_BIN" bench train --model "$model" --batch-size "$BATCH" --steps "$STEPS" --warmup "$WARMUP" \
              --precision "$prec" --json ${HERD_ARGS:-})
        echo "{\"phase\":\"speed\",\"who\":\"herd-$prec\",\"model\":\"$model\",\"layout\":null,\"rep\":$rep,\"result\":$j}" >> "$RUNS"
      done
    done
  done
fi

DIR=${1:-}
if [[ "${SKIP_QUALITY:-0}" != 1 ]]; then
  if [[ -z "$DIR" ]]; then
    DIR="$RESULTS/data-quality-$ROWS-$SEED"
    if [[ ! -s "$DIR/train.txt" || ! -s "$DIR/test.txt" ]]; then
      say "generating $ROWS rows (seed $SEED) into $DIR"
      "$HERD_BIN" generate criteo --rows "$ROWS" --seed "$SEED" --out "$DIR" >&2
    fi
  fi
  for f in train.txt test.txt; do [[ -s "$DIR/$f" ]] || { warn "missing $DIR/$f"; exit 2; }; done
  for model in $QUALITY_MODELS; do
    for prec in fp32 bf16; do
      say "herd train $model --precision $prec: $EPOCHS epoch(s), seed $SEED, data $DIR"
      # shellcheck disable=SC2086
      j=$(last_json "$HERD_BIN" train --model "$model" --train "$DIR/train.txt" --valid "$DIR/test.txt" \
            --out "$RESULTS/herd-model-bf16check-$STAMP-$model-$prec" --epochs "$EPOCHS" --seed "$SEED" \
            --precision "$prec" --json ${TRAIN_ARGS:-})
      echo "{\"phase\":\"quality\",\"who\":\"herd-$prec\",\"model\":\"$model\",\"result\":$j}" >> "$RUNS"
    done
    if [[ "${NOISE_RUN:-1}" == 1 ]]; then
      # NOTE: the yardstick for the AUC difference: FP32 against FP32 with another seed.
      say "herd train $model --precision fp32 --seed $((SEED + 1)) (seed-to-seed AUC noise)"
      # shellcheck disable=SC2086
      j=$(last_json "$HERD_BIN" train --model "$model" --train "$DIR/train.txt" --valid "$DIR/test.txt" \
            --out "$RESULTS/herd-model-bf16check-$STAMP-$model-fp32-seed$((SEED + 1))" --epochs "$EPOCHS" --seed "$((SEED + 1))" \
            --precision fp32 --json ${TRAIN_ARGS:-})
      echo "{\"phase\":\"quality\",\"who\":\"herd-fp32-other-seed\",\"model\":\"$model\",\"result\":$j}" >> "$RUNS"
    fi
  done
fi
check_quiet
BUSY_AFTER=$BUSY_PCT

OUT="$RESULTS/bf16-$STAMP.json"
"$PY" "$ROOT/benchmarks/_summarize.py" bf16 "$RUNS" "$OUT" \
  --meta batch_size="$BATCH" steps="$STEPS" warmup="$WARMUP" rows="$ROWS" seed="$SEED" epochs="$EPOCHS" data="${DIR:-}" \
         busy_pct_before="$BUSY_BEFORE" busy_pct_after="$BUSY_AFTER" quiet_max="${QUIET_MAX:-10}" \
         tolerance="${TOLERANCE:-0.001}" goal="${GOAL:-2.5}" herd="$HERD_BIN" stamp="$STAMP"

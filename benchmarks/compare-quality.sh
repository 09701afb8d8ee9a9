#!/usr/bin/env bash
# Model quality: Herd's DLRM vs the PyTorch twin after the same epochs on the same generated data.
# Rule: Herd's test AUC >= twin's - 0.002. Also prints the generator's oracle AUC.
#
# Usage: benchmarks/compare-quality.sh [DIR]
#   DIR holds train.txt, test.txt (Criteo TSV) and oracle.json ({"test_auc": ...}); without DIR,
#   `herd generate criteo --rows $ROWS --seed $SEED --out benchmarks/results/data-quality-<rows>-<seed>`.
# Env:   ROWS (2000000)  EPOCHS (1)  SEED (1)  BATCH (2048)  MODEL (dlrm)
#        LR (unset: each side uses its default; set it to pass --lr to both)
#        PEER_ARGS (extra torch_ctr.py args, e.g. "--table-size 200000 --layout per-field")
#        HERD, HERD_ARGS (extra `herd train` args)  TOLERANCE (0.002)
# Writes benchmarks/results/quality-<UTC stamp>.json.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

ROWS=${ROWS:-2000000}; EPOCHS=${EPOCHS:-1}; SEED=${SEED:-1}; BATCH=${BATCH:-2048}; MODEL=${MODEL:-dlrm}
PY=$(peer_python)
HERD_BIN=$(find_herd || true)

DIR=${1:-}
if [[ -z "$DIR" ]]; then
  if [[ -z "$HERD_BIN" ]]; then
    warn "no data directory given and herd unavailable to generate one: pass DIR with train.txt/test.txt"
    exit 2
  fi
  DIR="$RESULTS/data-quality-$ROWS-$SEED"
  if [[ ! -s "$DIR/train.txt" || ! -s "$DIR/test.txt" ]]; then
    say "generating $ROWS rows (seed $SEED) into $DIR"
    "$HERD_BIN" generate criteo --rows "$ROWS" --seed "$SEED" --out "$DIR" >&2
  fi
fi
for f in train.txt test.txt; do [[ -s "$DIR/$f" ]] || { warn "missing $DIR/$f"; exit 2; }; done

RUNS=$(mktemp); trap 'rm -f "$RUNS"' EXIT
LR_ARGS=(); [[ -n "${LR:-}" ]] && LR_ARGS=(--lr "$LR")

say "pytorch twin: $MODEL, $EPOCHS epoch(s), batch $BATCH, seed $SEED"
# shellcheck disable=SC2086
j=$(last_json "$PY" "$ROOT/benchmarks/peers/torch_ctr.py" train --model "$MODEL" \
      --train "$DIR/train.txt" --test "$DIR/test.txt" --epochs "$EPOCHS" --batch-size "$BATCH" \
      --seed "$SEED" "${LR_ARGS[@]}" --json ${PEER_ARGS:-})
echo "{\"who\":\"pytorch\",\"result\":$j}" >> "$RUNS"

if [[ -n "$HERD_BIN" ]]; then
  say "herd train: $MODEL, $EPOCHS epoch(s)"
  HOUT="$RESULTS/herd-model-$STAMP"
  # shellcheck disable=SC2086
  j=$(last_json "$HERD_BIN" train --model "$MODEL" --train "$DIR/train.txt" --valid "$DIR/test.txt" \
        --out "$HOUT" --epochs "$EPOCHS" "${LR_ARGS[@]}" --json ${HERD_ARGS:-})
  echo "{\"who\":\"herd\",\"result\":$j}" >> "$RUNS"
fi
if [[ -s "$DIR/oracle.json" ]]; then
  echo "{\"who\":\"oracle\",\"result\":$(tr -d '\n' < "$DIR/oracle.json")}" >> "$RUNS"
fi

OUT="$RESULTS/quality-$STAMP.json"
"$PY" "$ROOT/benchmarks/_summarize.py" quality "$RUNS" "$OUT" \
  --meta data="$DIR" rows="$ROWS" epochs="$EPOCHS" seed="$SEED" batch_size="$BATCH" model="$MODEL" \
         lr="${LR:-default}" tolerance="${TOLERANCE:-0.002}" herd="${HERD_BIN:-}" stamp="$STAMP"

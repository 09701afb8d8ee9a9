#!/usr/bin/env bash
# Preprocessing throughput and peak memory: Herd vs the polars twin on one Criteo TSV.
#
# Usage: benchmarks/compare-preprocess.sh [TSV]
#   Without TSV, generates one with `herd generate criteo --rows $ROWS --seed 1 --out DIR`
#   (DIR = benchmarks/results/data-criteo-<rows>, reused if present) and uses DIR/train.txt.
# Env:   ROWS (2000000)  POLARS_ARGS (extra polars_criteo_preprocess.py args, e.g. "--freq-limit 3")
#        HERD, HERD_ARGS (extra `herd bench preprocess` args)  QUIET_MAX (10 %) QUIET_SECONDS (1)
# Prints rows/s and peak RSS for both and Herd/polars ratios; writes
# benchmarks/results/preprocess-<UTC stamp>.json. Final figures: release build, quiet machine.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

ROWS=${ROWS:-2000000}
PY=$(peer_python)
HERD_BIN=$(find_herd || true)

DATA=${1:-}
if [[ -z "$DATA" ]]; then
  if [[ -z "$HERD_BIN" ]]; then
    warn "no TSV given and herd unavailable to generate one: pass a Criteo TSV as the first argument"
    exit 2
  fi
  DIR="$RESULTS/data-criteo-$ROWS"
  if [[ ! -s "$DIR/train.txt" ]]; then
    say "generating $ROWS rows into $DIR"
    "$HERD_BIN" generate criteo --rows "$ROWS" --seed 1 --out "$DIR" >&2
  fi
  DATA="$DIR/train.txt"
fi
[[ -s "$DATA" ]] || { warn "no such TSV: $DATA"; exit 2; }
say "data: $DATA ($(du -h "$DATA" | cut -f1))"

check_quiet
BUSY_BEFORE=$BUSY_PCT
RUNS=$(mktemp); trap 'rm -f "$RUNS"' EXIT

say "polars (all variants, best reported)"
# shellcheck disable=SC2086
j=$(last_json "$PY" "$ROOT/benchmarks/peers/polars_criteo_preprocess.py" --data "$DATA" --variant all \
      --out "$RESULTS/polars-out-$STAMP" --json ${POLARS_ARGS:-})
echo "{\"who\":\"polars\",\"result\":$j}" >> "$RUNS"

if [[ -n "$HERD_BIN" ]]; then
  say "herd bench preprocess"
  # shellcheck disable=SC2086
  j=$(last_json "$HERD_BIN" bench preprocess --data "$DATA" --json ${HERD_ARGS:-})
  echo "{\"who\":\"herd\",\"result\":$j}" >> "$RUNS"
fi
check_quiet
BUSY_AFTER=$BUSY_PCT

OUT="$RESULTS/preprocess-$STAMP.json"
"$PY" "$ROOT/benchmarks/_summarize.py" preprocess "$RUNS" "$OUT" \
  --meta data="$DATA" data_bytes="$(stat -c %s "$DATA")" busy_pct_before="$BUSY_BEFORE" \
         busy_pct_after="$BUSY_AFTER" quiet_max="${QUIET_MAX:-10}" herd="${HERD_BIN:-}" stamp="$STAMP"

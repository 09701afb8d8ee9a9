#!/usr/bin/env bash
# RecSys 2021 preprocessing: Herd vs the polars twin, fit on train and apply to test, with the
# outputs checked equal, rows/s and peak RSS (/usr/bin/time -v) of both.
#
# Usage: benchmarks/compare-recsys-preprocess.sh [DIR]
#   DIR holds train.txt and test.txt in RecSys 2021 format. Without it, generates them with
#   `herd generate recsys2021 --rows $ROWS --seed 1 --out DIR` (DIR = benchmarks/results/
#   data-recsys-<rows>, reused if present).
# Env:   ROWS (1000000)  REPEATS (3: polars and Herd interleaved, median ratio reported)
#        HERD  HERD_ARGS (extra `herd preprocess` args)  POLARS_ARGS (extra twin args)
#        QUIET_MAX (10 %) QUIET_SECONDS (1)  KEEP_OUTPUTS (0: delete the transformed tables afterwards)
# Herd runs `herd preprocess --pipeline examples/recsys2021/pipeline.json --schema
# examples/recsys2021/schema.json --input DIR/train.txt --out O/train` and then `--apply
# O/train/pipeline.fitted.json` on DIR/test.txt; the twin does the same in one process
# (peers/polars_recsys_preprocess.py). peers/check_recsys_preprocess.py then compares the
# transformed train and test tables column by column (ids, bins, labels, cross exact; min-max
# within 1e-6). Rows/s = (train + test rows) / (read + transform + write seconds, as each tool
# reports them); end-to-end wall (process start and imports included) and peak RSS come from
# /usr/bin/time -v (Herd: the larger of its two processes), and CPU seconds (user + sys) of each
# side. The load average is printed before each repeat. Outputs are checked on the last repeat. Writes
# benchmarks/results/recsys-preprocess-<UTC stamp>.json. Final figures: release build, quiet machine.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"

ROWS=${ROWS:-1000000}
PY=$(peer_python)
HERD_BIN=$(find_herd || true)
SCHEMA="$ROOT/examples/recsys2021/schema.json"
PIPELINE="$ROOT/examples/recsys2021/pipeline.json"
[[ -x /usr/bin/time ]] || { warn "/usr/bin/time is missing (apt-get install time)"; exit 2; }

DATA=${1:-}
if [[ -z "$DATA" ]]; then
  if [[ -z "$HERD_BIN" ]]; then
    warn "no data directory given and herd unavailable to generate one: pass a directory with train.txt and test.txt"
    exit 2
  fi
  DATA="$RESULTS/data-recsys-$ROWS"
  if [[ ! -s "$DATA/train.txt" || ! -s "$DATA/test.txt" ]]; then
    say "generating $ROWS rows into $DATA"
    "$HERD_BIN" generate recsys2021 --rows "$ROWS" --seed 1 --out "$DATA" >&2
  fi
fi
for f in train.txt test.txt; do [[ -s "$DATA/$f" ]] || { warn "missing $DATA/$f"; exit 2; }; done
say "data: $DATA (train $(du -h "$DATA/train.txt" | cut -f1), test $(du -h "$DATA/test.txt" | cut -f1))"

OUTS="$RESULTS/recsys-preprocess-out-$STAMP"
RUNS=$(mktemp)
cleanup() { rm -f "$RUNS"; [[ "${KEEP_OUTPUTS:-0}" == 1 ]] || rm -rf "$OUTS"; }
trap cleanup EXIT
check_quiet
BUSY_BEFORE=$BUSY_PCT

REPEATS=${REPEATS:-3}
for ((rep = 1; rep <= REPEATS; rep++)); do
  say "repeat $rep/$REPEATS (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  # NOTE: each side deletes its own previous outputs right before it runs (only the last repeat's
  # outputs are kept for the check). Deleting both at the top of the repeat favoured whichever side
  # ran first: this VM reports freed pages to the host (virtio_balloon free page reporting, 2 MiB
  # blocks, ≈ 2 s after the free), and writing 200 MB into page-cache pages the host has taken back
  # measured 7× slower (pwrite of 7.2 MB: 10 ms against 1.4 ms) — the second side's write phase
  # swung from 0.06 to 0.35 s.
  say "polars twin (fit on train, apply to test)"
  rm -rf "$OUTS/polars"
  # shellcheck disable=SC2086
  j=$(measured_json "$PY" "$ROOT/benchmarks/peers/polars_recsys_preprocess.py" --train "$DATA/train.txt" \
        --test "$DATA/test.txt" --out "$OUTS/polars" --json ${POLARS_ARGS:-})
  echo "{\"who\":\"polars\",\"split\":\"both\",\"repeat\":$rep,\"result\":$j}" >> "$RUNS"

  if [[ -n "$HERD_BIN" ]]; then
    say "herd preprocess --pipeline (train)"
    rm -rf "$OUTS/herd-train" "$OUTS/herd-test"
    # shellcheck disable=SC2086
    j=$(measured_json "$HERD_BIN" preprocess --pipeline "$PIPELINE" --schema "$SCHEMA" --input "$DATA/train.txt" \
          --out "$OUTS/herd-train" --json ${HERD_ARGS:-})
    echo "{\"who\":\"herd\",\"split\":\"train\",\"repeat\":$rep,\"result\":$j}" >> "$RUNS"
    say "herd preprocess --apply (test)"
    # shellcheck disable=SC2086
    j=$(measured_json "$HERD_BIN" preprocess --apply "$OUTS/herd-train/pipeline.fitted.json" --schema "$SCHEMA" \
          --input "$DATA/test.txt" --out "$OUTS/herd-test" --json ${HERD_ARGS:-})
    echo "{\"who\":\"herd\",\"split\":\"test\",\"repeat\":$rep,\"result\":$j}" >> "$RUNS"
  fi
done
check_quiet
BUSY_AFTER=$BUSY_PCT

if [[ -n "$HERD_BIN" ]]; then
  for split in train test; do
    say "checking $split outputs (herd vs polars)"
    j=$(last_json "$PY" "$ROOT/benchmarks/peers/check_recsys_preprocess.py" "$OUTS/herd-$split/table.herdtable" \
          "$OUTS/polars/$split.arrow" --json)
    echo "{\"who\":\"check\",\"split\":\"$split\",\"result\":$j}" >> "$RUNS"
  done
fi

OUT="$RESULTS/recsys-preprocess-$STAMP.json"
"$PY" "$ROOT/benchmarks/_summarize.py" recsys-preprocess "$RUNS" "$OUT" \
  --meta data="$DATA" train_bytes="$(stat -c %s "$DATA/train.txt")" test_bytes="$(stat -c %s "$DATA/test.txt")" \
         busy_pct_before="$BUSY_BEFORE" busy_pct_after="$BUSY_AFTER" repeats="$REPEATS" quiet_max="${QUIET_MAX:-10}" herd="${HERD_BIN:-}" stamp="$STAMP"

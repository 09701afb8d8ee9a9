#!/usr/bin/env bash
# The RecSys 2021 workflow end to end (BigDL Friesian's wnd/two-tower recsys examples, in herd):
#   generate → preprocess (Friesian's wnd_preprocess_recsys) → train Wide & Deep (ranking) and a
#   two-tower model (retrieval) → embeddings of every user and item → retrieval metrics.
# Everything goes into one workspace (see README "Workspace"). The last stdout line is one JSON
# object: wnd_auc, oracle_auc, two_tower_auc, users, items, recall@10 …
# Usage: examples/recsys2021/run.sh [--rows N] [--workspace W] [--epochs E] [--seed S]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROWS=200000
WS=herd-workspace/recsys2021
EPOCHS=3
SEED=1
while (($#)); do
  case "$1" in
    --rows) ROWS="$2"; shift 2 ;;
    --workspace) WS="$2"; shift 2 ;;
    --epochs) EPOCHS="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
HERD=${HERD:-$("$ROOT/scripts/build" | tail -1)}
LOGS="$WS/logs"
mkdir -p "$LOGS"
step() { echo "== $*" >&2; }

step "1. generate $ROWS RecSys-2021-format rows into $WS/data"
"$HERD" generate recsys2021 --rows "$ROWS" --seed "$SEED" --workspace "$WS" >&2
step "2. preprocess (Friesian's wnd_preprocess_recsys) into $WS/features"
"$HERD" preprocess recsys2021 --workspace "$WS" --json | tail -1 > "$LOGS/preprocess.json"
# NOTE: early stopping on validation AUC (patience 2) as in Friesian's W&D example; the best
# weights of the run are what the export holds.
step "3. train Wide & Deep (Friesian's input spec) → $WS/models/wnd/<version>"
"$HERD" train --workspace "$WS" --model wnd --spec recsys2021 --epochs "$EPOCHS" --patience 2 --seed "$SEED" --json | tail -1 > "$LOGS/wnd.json"
step "4. train the two-tower model → $WS/models/twotower/<version>"
"$HERD" train --workspace "$WS" --model twotower --spec recsys2021 --epochs "$EPOCHS" --patience 2 --seed "$SEED" --json | tail -1 > "$LOGS/twotower.json"
step "5. user and item embeddings of the two-tower export → $WS/embeddings"
"$HERD" predict --workspace "$WS" --name twotower --json | tail -1 > "$LOGS/embeddings.json"
step "6. retrieval quality of the embeddings on the test split"
"$HERD" evaluate retrieval --workspace "$WS" --k 10 --json | tail -1 > "$LOGS/retrieval.json"

python3 - "$WS" <<'PY'
import json, sys
ws = sys.argv[1]
load = lambda name: json.load(open(f"{ws}/logs/{name}.json"))
oracle = json.load(open(f"{ws}/data/oracle.json"))
prep, wnd, tt, emb, ret = load("preprocess"), load("wnd"), load("twotower"), load("embeddings"), load("retrieval")
out = {
    "rows": prep["rows_train"] + prep["rows_test"],
    "users": prep["users"], "items": prep["items"],
    "wnd_auc": wnd["auc"], "oracle_auc": oracle["test_auc"], "two_tower_auc": tt["auc"],
    "wnd_export": wnd["export"], "two_tower_export": tt["export"],
    "wnd_samples_per_s": wnd["samples_per_s"], "two_tower_samples_per_s": tt["samples_per_s"],
    "embedding_dim": emb["dim"],
}
for k, v in ret.items():
    if "@" in k: out[k] = v
print(f"W&D test AUC {out['wnd_auc']:.4f} (planted model {out['oracle_auc']:.4f}); two-tower AUC {out['two_tower_auc']:.4f}; "
      f"{out['users']} users, {out['items']} items; exports under {ws}/models, embeddings in {ws}/embeddings", file=sys.stderr)
print(json.dumps(out, sort_keys=True))
PY

#!/usr/bin/env bash
# The RecSys 2021 workflow end to end (BigDL Friesian's wnd/two-tower recsys examples, in herd):
#   generate → preprocess (Friesian's wnd_preprocess_recsys) → train Wide & Deep (ranking) and a
#   two-tower model (retrieval) → embeddings of every user and item → retrieval metrics.
# Everything goes into one workspace (see README "Workspace"). The last stdout line is one JSON
# object: wnd_auc, oracle_auc, two_tower_auc, users, items, two_tower_recall@10, popularity_recall@10 …
# Usage: examples/recsys2021/run.sh [--rows N] [--workspace W] [--epochs E] [--seed S]   (TT_EPOCHS: retrieval two-tower, 8)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROWS=200000
WS=herd-workspace/recsys2021
EPOCHS=3
TT_EPOCHS=${TT_EPOCHS:-8}
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
# NOTE: a second two-tower trained for retrieval: in-batch softmax with the logQ correction over the
# training positives, the tweet id embedded, and a per-item bias keyed by the tweet id
# (two_tower_retrieval.json: "item_bias": true). Unit vectors cannot carry popularity; the bias
# does (started at the log popularity, then trained), and `herd predict` writes it into the
# embeddings (users [u, 1], items [v, τ·b]) so retrieval ranks by the full logit. BCE on engagement
# labels learns p(engage | shown), which leaves out what was shown (popularity, the user's
# timeline), so its recall@10 stays far below the most-popular list; both are reported.
# NOTE: the retrieval user tower reads the user id only: users unseen in training share its
# out-of-vocabulary embedding. Adding the user table's verified flag and follower/following bins
# (as two_tower.json does) lowered recall@10 of seen and unseen users alike on the generated data,
# whose tastes do not depend on them (figures in the README, "The recsys workflows").
step "4b. train the retrieval two-tower (in-batch softmax) → $WS/models/twotower_retrieval/<version>"
"$HERD" train --workspace "$WS" --model twotower --spec "$ROOT/examples/recsys2021/two_tower_retrieval.json" --name twotower_retrieval \
  --epochs "$TT_EPOCHS" --batch-size 256 --lr 0.01 --seed "$SEED" --json | tail -1 > "$LOGS/twotower_retrieval.json"
step "5. retrieval quality of each two-tower's embeddings on the test split (the BCE model's stay in $WS/embeddings)"
"$HERD" predict --workspace "$WS" --name twotower_retrieval --json | tail -1 > /dev/null
"$HERD" evaluate retrieval --workspace "$WS" --k 10 --json | tail -1 > "$LOGS/retrieval_softmax.json"
"$HERD" predict --workspace "$WS" --name twotower --json | tail -1 > "$LOGS/embeddings.json"
"$HERD" evaluate retrieval --workspace "$WS" --k 10 --json | tail -1 > "$LOGS/retrieval.json"

python3 - "$WS" <<'PY'
import json, sys
ws = sys.argv[1]
load = lambda name: json.load(open(f"{ws}/logs/{name}.json"))
oracle = json.load(open(f"{ws}/data/oracle.json"))
prep, wnd, tt, emb, ret = load("preprocess"), load("wnd"), load("twotower"), load("embeddings"), load("retrieval")
sm = load("retrieval_softmax")
out = {
    "rows": prep["rows_train"] + prep["rows_test"],
    "users": prep["users"], "items": prep["items"],
    "wnd_auc": wnd["auc"], "oracle_auc": oracle["test_auc"], "two_tower_auc": tt["auc"],
    "wnd_export": wnd["export"], "two_tower_export": tt["export"],
    "wnd_samples_per_s": wnd["samples_per_s"], "two_tower_samples_per_s": tt["samples_per_s"],
    "embedding_dim": emb["dim"],
}
# The two-towers' retrieval next to the most-popular baseline (same split, same exclusions): the
# plain keys (recall@10, …, recall_ratio) and two_tower_* are the in-batch-softmax retrieval
# model's, two_tower_bce_* the BCE model's above.
for k, v in sm.items():
    if "@" in k: out[k] = v
out["two_tower_recall@10"] = sm["recall@10"]
out["two_tower_ndcg@10"] = sm["ndcg@10"]
out["recall_ratio"] = sm["recall_ratio"]
out["two_tower_bce_recall@10"] = ret["recall@10"]
out["two_tower_bce_ndcg@10"] = ret["ndcg@10"]
# Users/tweets not in the training index (embedded from their other features by herd predict), and
# the test users among them (recall@10_unseen above is theirs).
out["users_unseen"], out["items_unseen"] = prep.get("users_unseen"), prep.get("items_unseen")
out["test_users_unseen"] = sm.get("users_unseen")
print(f"W&D test AUC {out['wnd_auc']:.4f} (planted model {out['oracle_auc']:.4f}); two-tower AUC {out['two_tower_auc']:.4f}; "
      f"recall@10 {out['two_tower_recall@10']:.4f} vs popularity {out['popularity_recall@10']:.4f}; "
      f"{out['users']} users, {out['items']} items; exports under {ws}/models, embeddings in {ws}/embeddings", file=sys.stderr)
print(json.dumps(out, sort_keys=True))
PY

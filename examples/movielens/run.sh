#!/usr/bin/env bash
# The MovieLens-100k workflow end to end:
#
#   examples/movielens/run.sh DIR [WORKSPACE]
#
# DIR holds MovieLens-100k in the GroupLens layout (u.data, u.user, u.item) or as RecBole atomic
# files (ml-100k.inter/.user/.item; e.g. `pip download recbole==1.2.1 --no-deps -d /tmp/rb && unzip -o
# /tmp/rb/recbole-1.2.1-py3-none-any.whl 'recbole/dataset_example/ml-100k/*' -d /tmp/rb`, then
# DIR=/tmp/rb/recbole/dataset_example/ml-100k). WORKSPACE defaults to herd-workspace/movielens.
# HERD=path/to/herd skips the release build; TT_EPOCHS (default 6) sets the two-tower model's
# epochs, EPOCHS (default 4) the ranker's.
#
# Steps: herd preprocess movielens (label = rating >= 4, leave-last-out split by time, features),
# herd train two-tower (in-batch softmax over the training positives with the logQ correction,
# two_tower.json) → herd predict (user/item embeddings) → herd evaluate retrieval (recall@10,
# ndcg@10 and the most-popular baseline on the same split), herd train wnd → herd evaluate (AUC of
# the ranker on each user's held-out rating). The last line is one JSON object with all of it.
set -euo pipefail
DIR=${1:?usage: examples/movielens/run.sh DIR [WORKSPACE]}
WS=${2:-herd-workspace/movielens}
EPOCHS=${EPOCHS:-4}
TT_EPOCHS=${TT_EPOCHS:-6}
cd "$(dirname "$0")/../.."
HERD=${HERD:-$(scripts/build | tail -1)}
mkdir -p "$WS"
"$HERD" preprocess movielens --input "$DIR" --workspace "$WS" --json | tail -1 > "$WS/preprocess.json"
"$HERD" train --workspace "$WS" --model twotower --spec examples/movielens/two_tower.json --name twotower \
  --epochs "$TT_EPOCHS" --batch-size 512 --lr 0.003 --json | tail -1 > "$WS/twotower.train.json"
"$HERD" predict --workspace "$WS" --name twotower --json | tail -1 > "$WS/twotower.predict.json"
"$HERD" evaluate retrieval --workspace "$WS" --k 10 --json | tail -1 > "$WS/retrieval.json"
"$HERD" train --workspace "$WS" --model wnd --spec examples/movielens/wnd.json --name wnd \
  --epochs "$EPOCHS" --batch-size 512 --json | tail -1 > "$WS/wnd.train.json"
"$HERD" evaluate --workspace "$WS" --name wnd --json | tail -1 > "$WS/wnd.eval.json"
python3 - "$WS" <<'PY'
import json, sys
ws = sys.argv[1]
load = lambda name: json.load(open(f"{ws}/{name}.json"))
pre, ret, rank = load("preprocess"), load("retrieval"), load("wnd.eval")
out = {k: ret[k] for k in ret if "@" in k or k in ("users", "items", "recall_ratio")}
out["auc"] = rank["auc"]
out.update({"ratings": pre["ratings"], "train_rows": pre["train_rows"], "test_rows": pre["test_rows"]})
print(f"two-tower recall@10 {out['recall@10']:.4f} vs popularity {out['popularity_recall@10']:.4f}; W&D AUC {out['auc']:.4f}", file=sys.stderr)
print(json.dumps(out, sort_keys=True))
PY

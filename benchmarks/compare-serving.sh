#!/usr/bin/env bash
# The whole online pipeline, Herd vs its Python twin (FastAPI/uvicorn + PyTorch + faiss-cpu +
# redis-py, benchmarks/peers/py_serving.py), on one generated RecSys 2021 workspace:
#   generate (~100k users, ~100k items) → preprocess → train W&D and two-tower briefly → item/user
#   embeddings → a Redis on a free port filled by `herd nearline --redis` and by the twin's loader
#   (and Herd's embedded store) → herd serve and the twin side by side → the twin's probabilities
#   checked equal to Herd's (1e-4) → for each canK: saturation QPS of each stack with `herd loadtest`
#   (closed loop, rising concurrency, the two stacks interleaved), then p99 at half of Herd's
#   saturation QPS (open loop, --rate) on both → table, ratios, ranking FLOP rate vs the GEMM
#   roofline (`herd bench kernels`), JSON in benchmarks/results/serving-<stamp>.json.
#
#   benchmarks/compare-serving.sh                 full run (~10 min on 2 cores, workspace reused)
#   QUICK=1 benchmarks/compare-serving.sh         small workspace, short loads (< 3 min after the build)
# Env: HERD (binary; default scripts/build), CANK="50 200", DURATION (s per load step), ROWS, USERS,
#      ITEMS, REBUILD=1 (regenerate the workspace), EMBEDDED=0 (skip Herd on its embedded store),
#      PY_WORKERS (uvicorn workers, default 2 = cores), ITEM_CACHE (rows of the `herd-cache` stack's
#      near cache, Redis + `?item_cache=N`, reported beside plain Redis; default 200000, 0 = no such stack).
#      HERD_SERVE_ARGS (extra `herd serve` flags for every Herd stack, e.g. --enable-http-on-request-threads).
set -euo pipefail
source "$(dirname "$0")/_common.sh"
cd "$ROOT"
HERD=$(find_herd) || { warn "no herd binary"; exit 1; }
PY=${HERD_PEERS_PYTHON:-$(peer_python)}
command -v redis-server >/dev/null || { warn "redis-server missing: scripts/bootstrap installs it"; exit 1; }
export HERD PY RESULTS STAMP
exec "$PY" "$ROOT/benchmarks/_serving_bench.py" "$@"

#!/usr/bin/env bash
# Experiment (not a goal): can the ranker's ReLU sparsity lower its FLOPs? Dumps the W&D ranker's hidden
# activations for real canK-200 requests of a serving workspace (benchmarks/compare-serving.sh makes
# one) and times the dense packed FP32 kernel against register tiles that skip the k where all their
# rows are zero (sparse_gemm.c), one thread, on layers 2 (1024 → 512) and 3 (512 → 256).
#   WORKSPACE=DIR benchmarks/experiments/relu-sparsity/run.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../../_common.sh"
WS=${WORKSPACE:?set WORKSPACE to a serving workspace (benchmarks/compare-serving.sh makes one)}
PY=$(peer_python)
TMP=$(mktemp -d)
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --pidfile "$TMP/redis.pid" >/dev/null
trap 'kill "$(cat "$TMP/redis.pid")" 2>/dev/null; rm -rf "$TMP"' EXIT
sleep 0.3
"$PY" "$HERE/../../peers/py_serving.py" load "$WS" --redis "redis://127.0.0.1:$PORT" >/dev/null
"$PY" "$HERE/dump_activations.py" "$WS" "redis://127.0.0.1:$PORT" "$TMP" 2> >(grep -v "^\[py_serving\]" >&2)
cc -O3 -march=native -Wall -o "$TMP/sparse_gemm" "$HERE/sparse_gemm.c" -lm
"$TMP/sparse_gemm" "$TMP/act0.f32" 4000 1024 512
"$TMP/sparse_gemm" "$TMP/act1.f32" 4000 512 256

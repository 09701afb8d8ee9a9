#!/usr/bin/env bash
# Single-threaded GEMM GFLOP/s: OpenBLAS sgemm/sbgemm and oneDNN sgemm/gemm_bf16bf16f32 on MLP
# shapes. Prints the CPU's AVX-512/BF16 flags first: without avx512_bf16 both BF16 paths emulate.
set -euo pipefail
cd "$(dirname "$0")"
out="${TMPDIR:-/tmp}/herd-gemm-backends"
cc -O2 -march=native -o "$out" gemm_backends.c $(pkg-config --cflags --libs openblas) -ldnnl -ldl
echo "cpu flags: $(grep -o -w 'avx512[a-z_0-9]*\|amx[a-z_0-9]*\|avx2\|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$out"

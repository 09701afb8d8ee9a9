#ifndef HERD_KERNELS_H
#define HERD_KERNELS_H
// Tiny C helpers for what Swift cannot express directly.

/// Hints the CPU to fetch the cache line holding `p` for reading (embedding rows about to be
/// gathered: random rows of large tables are memory-latency bound).
static inline void herd_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/// Same, for a line about to be written (optimizer updates of embedding rows).
static inline void herd_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }

#include <stddef.h>
#include <stdint.h>

/// BF16 GEMM against a weight packed once (serving's frozen layers), on CPUs with AVX512_BF16:
/// `C[M, N] = A[M, K] · Wᵀ` for `W [N, K]` (a `Linear` weight `[O, I]`), BF16 operands (raw bits,
/// row-major, leading dimensions in elements), FP32 accumulation, `C` overwritten. Pack `W` with
/// `herd_bf16_pack_weight` into `herd_bf16_packed_count(n, k)` elements (64-byte aligned is not
/// required). Call only when `herd_bf16_packed_available()` returns 1.
size_t herd_bf16_packed_count(int64_t n, int64_t k);
void herd_bf16_pack_weight(const uint16_t *w, int64_t ldw, int64_t n, int64_t k, uint16_t *out);
void herd_bf16_gemm_packed(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                           const uint16_t *packed, float *c, int64_t ldc);
int herd_bf16_packed_available(void);
/// `herd_bf16_gemm_packed` with a fused epilogue: `C = act(A · Wᵀ + bias)` (`bias` NULL: none;
/// `relu` nonzero: ReLU) and, when `out` is not NULL, `C` also rounded to BF16 (nearest even)
/// into `out` (row stride `ldo`): the next BF16 layer's input, without a pass of its own; `c`
/// NULL: only `out` is written.
void herd_bf16_gemm_packed_epilogue(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                                    const uint16_t *packed, const float *bias, int relu, float *c, int64_t ldc,
                                    uint16_t *out, int64_t ldo);

/// FP32 GEMM against a weight packed once (serving's frozen FP32 layers), on AVX-512 CPUs:
/// `C[M, N] = act(A[M, K] · Wᵀ + bias[N])` for `W [N, K]` (a `Linear` weight `[O, I]`), row-major,
/// leading dimensions in elements, `bias` optional (NULL: none), `relu` nonzero for ReLU, `C`
/// overwritten. Pack `W` with `herd_f32_pack_weight` into `herd_f32_packed_count(n, k)` floats.
/// Call only when `herd_f32_packed_available()` returns 1.
size_t herd_f32_packed_count(int64_t n, int64_t k);
void herd_f32_pack_weight(const float *w, int64_t ldw, int64_t n, int64_t k, float *out);
void herd_f32_gemm_packed(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *packed,
                          const float *bias, int relu, float *c, int64_t ldc);
int herd_f32_packed_available(void);
/// `herd_f32_gemm_packed` with sparse terms and a BF16 output (serving's first layer):
/// `C[i, :] = act(A[i, :] · Wᵀ + Σ_{e ∈ row_start[i] ..< row_start[i+1]} sparse_vals[e] · wt[sparse_cols[e], :] + bias)`
/// with `wt` a row-major `[*, ldwt]` matrix (the transposed weight of the sparse columns, `n`
/// columns read per row), the A·Wᵀ terms first (K order), then the sparse terms in order, then
/// the bias. `k` may be 0 (then `a` and `packed` are unused and may be NULL); `row_start` NULL:
/// no sparse terms (`row_start` holds `m + 1` entries, indexing `sparse_cols` / `sparse_vals`).
/// `c` NULL: no FP32 store; `out` not NULL: the result also rounded to BF16 (nearest even, as
/// `herd_bf16_gemm_packed_epilogue` does) into `out` (row stride `ldo`).
void herd_f32_gemm_packed_sparse(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *packed,
                                 const int32_t *row_start, const int32_t *sparse_cols, const float *sparse_vals,
                                 const float *wt, int64_t ldwt, const float *bias, int relu, float *c, int64_t ldc,
                                 uint16_t *out, int64_t ldo);
/// The epilogue of `herd_f32_gemm_packed_sparse` on `m` rows of `n` accumulators computed without
/// bias, row `i` read from `rows[i]`: `rows[i] + bias` (bias NULL: as it is), ReLU when `relu`,
/// stored as FP32 to row `i` of `c` (row stride `ldc`; unless NULL) and rounded to BF16 into row
/// `i` of `out` (row stride `ldo`; unless NULL) — the kernel's own operations, so the result equals
/// the kernel's with that bias bit for bit. Serving's first-layer row cache.
void herd_f32_rows_bias_epilogue(int64_t m, int64_t n, const float *const *rows, const float *bias, int relu, float *c,
                                 int64_t ldc, uint16_t *out, int64_t ldo);

/// FP32 GEMM through oneDNN's matmul primitive (oneDNN 2.x, `libdnnl.so.2` loaded on first use; the
/// package does not link it), row-major: `C[M, N] = alpha · op(A) · op(B) + beta · C`, or
/// `C = relu?(op(A) · op(B) + bias[N])` when `bias` or `relu` is given (then alpha 1, beta 0). `op(A)` is `A [M, K]` (row stride `lda`) or, with
/// `trans_a`, `A [K, M]`; likewise `op(B)`. Runs on the calling thread; primitives are created once
/// per shape and kept per thread (least recently used of 48 evicted). Returns 0 on success, -1
/// when oneDNN is missing or refuses the shape (the caller then uses another GEMM; C untouched).
int herd_onednn_matmul(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c, int64_t ldc, const float *bias, int relu);
/// 1 when libdnnl.so.2 (oneDNN 2.x) was found and loaded, else 0.
int herd_onednn_matmul_loaded(void);

#if defined(__linux__)
#include <malloc.h>
/// Serves large allocations from the heap instead of fresh mmap'd pages (no page faults for
/// per-step buffers) and keeps freed memory for reuse. glibc only; a no-op elsewhere.
static inline void herd_keep_allocations_in_heap(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 28);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}
#else
static inline void herd_keep_allocations_in_heap(void) {}
#endif

#if defined(__linux__)
#include <sys/mman.h>
/// Asks the kernel to back `[p, p + bytes)` with transparent huge pages (2 MiB) when it is
/// first touched; with THP in `madvise` mode (Debian's default) nothing else gets them. Returns
/// 0 on success; failure is harmless (normal pages).
static inline int herd_advise_huge_pages(void *p, unsigned long bytes) { return madvise(p, bytes, MADV_HUGEPAGE); }
#else
static inline int herd_advise_huge_pages(void *p, unsigned long bytes) { (void)p; (void)bytes; return -1; }
#endif

#endif

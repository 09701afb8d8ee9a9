// FP32 GEMM against a weight packed once (serving): C[M, N] = act(A[M, K] · Wᵀ + bias), W [N, K],
// on AVX-512 (`vfmadd231ps`). See herd_kernels.h.
//
// NOTE: why not oneDNN's matmul (the FP32 default) for frozen layers: with Herd's plain weight
// layout it copies the weight into its blocked layout inside every call, which at serving's
// 50-row forwards costs ≈ 20 % of a 1024 → 512 layer (measured single-threaded: 93 GFLOP/s plain
// against 114 with a weight reordered once). This kernel reads a weight packed at freeze time,
// the same panel layout as the BF16 kernel's, with bias and ReLU applied on the registers.
#include "herd_kernels.h"
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include "avx512_epilogue.h"
#define HERD_F32_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))
#define HERD_HAS_F32_KERNEL 1
#else
#define HERD_HAS_F32_KERNEL 0
#endif

// Packed layout: panels of 16 output columns; panel p holds, for each kk of K, the 16 values
// W[16p + j][kk] (0 beyond N): one 64-byte vector per kk, the FMA's B operand as stored.
size_t herd_f32_packed_count(int64_t n, int64_t k) { return (size_t)(((n + 15) / 16) * k * 16); }

void herd_f32_pack_weight(const float *w, int64_t ldw, int64_t n, int64_t k, float *out) {
    int64_t panels = (n + 15) / 16;
    for (int64_t p = 0; p < panels; p++) {
        float *panel = out + p * k * 16;
        for (int64_t j = 0; j < 16; j++) {
            int64_t col = p * 16 + j;
            if (col < n) {
                const float *row = w + col * ldw;
                for (int64_t kk = 0; kk < k; kk++) panel[kk * 16 + j] = row[kk];
            } else {
                for (int64_t kk = 0; kk < k; kk++) panel[kk * 16 + j] = 0;
            }
        }
    }
}

#if HERD_HAS_F32_KERNEL

// One block of MR rows × NP panels (16 columns each) over the whole K: MR·NP accumulators in
// registers; per k, NP vector loads of W, MR broadcasts of A, MR·NP FMAs; then each row's sparse
// terms (a row of `wt` scaled by the term's value, added to that row's accumulators), bias and
// ReLU on the accumulators before the (masked) stores: FP32 into `c` and/or BF16 into `out`.
static inline __attribute__((always_inline)) HERD_F32_TARGET
void block(const float *a, int64_t lda, const float *wp, int64_t k, const int32_t *rows, const int32_t *cols,
           const float *vals, const float *wt, int64_t ldwt, float *c, int64_t ldc, uint16_t *out, int64_t ldo,
           int64_t col0, int64_t n, const float *bias, int relu, const int MR, const int NP) {
    // NOTE: the first k step writes the accumulators (a product, exactly what an FMA onto 0
    // gives) instead of zeroing them first: LLVM turned the zeroing loop into a memset of a stack
    // copy of `acc` per block (perf: ≈ 1.4 % of `herd serve`'s CPU in memset).
    __m512 acc[6][4];
    __mmask16 masks[4];
    for (int q = 0; q < NP; q++) {
        int64_t left = n - (col0 + 16 * q);
        masks[q] = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
    }
    const int64_t pstride = k * 16;
    if (k > 0) {
        __m512 b[4];
        for (int q = 0; q < NP; q++) b[q] = _mm512_loadu_ps(wp + q * pstride);
        for (int r = 0; r < MR; r++) {
            __m512 av = _mm512_set1_ps(a[r * lda]);
            for (int q = 0; q < NP; q++) acc[r][q] = _mm512_mul_ps(av, b[q]);
        }
    } else {
        for (int r = 0; r < MR; r++)
            for (int q = 0; q < NP; q++) acc[r][q] = _mm512_setzero_ps();
    }
    for (int64_t kk = 1; kk < k; kk++) {
        __m512 b[4];
        for (int q = 0; q < NP; q++) b[q] = _mm512_loadu_ps(wp + q * pstride + kk * 16);
        for (int r = 0; r < MR; r++) {
            __m512 av = _mm512_set1_ps(a[r * lda + kk]);
            for (int q = 0; q < NP; q++) acc[r][q] = _mm512_fmadd_ps(av, b[q], acc[r][q]);
        }
    }
    if (rows) {
        // NOTE: one literal row index per copy (not a loop over r): with a runtime inner loop,
        // a loop over r left `acc` indexed dynamically and LLVM kept it on the stack.
#define HERD_SPARSE_ROW(R)                                                                                              \
        if (R < MR) {                                                                                                   \
            for (int32_t e = rows[R]; e < rows[R + 1]; e++) {                                                           \
                __m512 v = _mm512_set1_ps(vals[e]);                                                                     \
                const float *w = wt + (int64_t)cols[e] * ldwt + col0;                                                   \
                for (int q = 0; q < NP; q++) acc[R][q] = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(masks[q], w + 16 * q), acc[R][q]); \
            }                                                                                                           \
        }
        HERD_SPARSE_ROW(0) HERD_SPARSE_ROW(1) HERD_SPARSE_ROW(2) HERD_SPARSE_ROW(3) HERD_SPARSE_ROW(4) HERD_SPARSE_ROW(5)
#undef HERD_SPARSE_ROW
    }
    for (int q = 0; q < NP; q++) {
        int64_t col = col0 + 16 * q;
        __mmask16 mask = masks[q];
        // NOTE: no bias: the accumulators stored as they are (not + 0, which turns -0 into +0), so
        // a row computed without bias and given it later (`herd_f32_rows_bias_epilogue`, serving's
        // row cache) ends bit for bit as if the bias had been added here.
        if (bias) {
            __m512 bv = _mm512_maskz_loadu_ps(mask, bias + col);
            for (int r = 0; r < MR; r++) {
                herd_epilogue16(_mm512_add_ps(acc[r][q], bv), mask, relu, c ? c + r * ldc + col : NULL,
                                out ? out + r * ldo + col : NULL);
            }
        } else {
            for (int r = 0; r < MR; r++) {
                herd_epilogue16(acc[r][q], mask, relu, c ? c + r * ldc + col : NULL, out ? out + r * ldo + col : NULL);
            }
        }
    }
}

#define HERD_F32_NP_CASES(MR)                                                                                            \
    switch (np) {                                                                                                        \
    case 4: block(a, lda, wp, k, rows, cols, vals, wt, ldwt, c, ldc, out, ldo, col0, n, bias, relu, MR, 4); break;       \
    case 3: block(a, lda, wp, k, rows, cols, vals, wt, ldwt, c, ldc, out, ldo, col0, n, bias, relu, MR, 3); break;       \
    case 2: block(a, lda, wp, k, rows, cols, vals, wt, ldwt, c, ldc, out, ldo, col0, n, bias, relu, MR, 2); break;       \
    default: block(a, lda, wp, k, rows, cols, vals, wt, ldwt, c, ldc, out, ldo, col0, n, bias, relu, MR, 1); break;      \
    }

static HERD_F32_TARGET void dispatch(const float *a, int64_t lda, const float *wp, int64_t k, const int32_t *rows,
                                     const int32_t *cols, const float *vals, const float *wt, int64_t ldwt, float *c,
                                     int64_t ldc, uint16_t *out, int64_t ldo, int64_t col0, int64_t n, const float *bias,
                                     int relu, int mr, int np) {
    switch (mr) {
    case 6: HERD_F32_NP_CASES(6) break;
    case 5: HERD_F32_NP_CASES(5) break;
    case 4: HERD_F32_NP_CASES(4) break;
    case 3: HERD_F32_NP_CASES(3) break;
    case 2: HERD_F32_NP_CASES(2) break;
    default: HERD_F32_NP_CASES(1) break;
    }
}

HERD_F32_TARGET
void herd_f32_gemm_packed_sparse(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *packed,
                                 const int32_t *row_start, const int32_t *sparse_cols, const float *sparse_vals,
                                 const float *wt, int64_t ldwt, const float *bias, int relu, float *c, int64_t ldc,
                                 uint16_t *out, int64_t ldo) {
    const int64_t panels = (n + 15) / 16;
    // NOTE: column blocks of 4 panels (64 columns × K: 256 KB of W at K = 1024, within a Zen 4
    // core's 1 MB L2) outside, row blocks of 6 inside, so a W block stays in L2 while every row
    // block of A passes over it.
    for (int64_t p0 = 0; p0 < panels; p0 += 4) {
        int np = (int)(panels - p0 < 4 ? panels - p0 : 4);
        const float *wp = packed ? packed + p0 * k * 16 : NULL;
        for (int64_t r0 = 0; r0 < m; r0 += 6) {
            int mr = (int)(m - r0 < 6 ? m - r0 : 6);
            dispatch(a ? a + r0 * lda : NULL, lda, wp, k, row_start ? row_start + r0 : NULL, sparse_cols, sparse_vals, wt, ldwt,
                     c ? c + r0 * ldc : NULL, ldc, out ? out + r0 * ldo : NULL, ldo, p0 * 16, n, bias, relu, mr, np);
        }
    }
}

void herd_f32_gemm_packed(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *packed,
                          const float *bias, int relu, float *c, int64_t ldc) {
    herd_f32_gemm_packed_sparse(m, n, k, a, lda, packed, NULL, NULL, NULL, NULL, 0, bias, relu, c, ldc, NULL, 0);
}

HERD_F32_TARGET
void herd_f32_rows_bias_epilogue(int64_t m, int64_t n, const float *const *rows, const float *bias, int relu, float *c,
                                 int64_t ldc, uint16_t *out, int64_t ldo) {
    for (int64_t i = 0; i < m; i++) {
        const float *row = rows[i];
        // NOTE: the rows lie apart (cache entries, possibly out of L2): the next row's first lines
        // are fetched while this one is finished (the hardware prefetcher follows within a row).
        if (i + 1 < m) {
            const char *next = (const char *)rows[i + 1];
            for (int64_t b = 0; b < 512 && b < n * 4; b += 64) _mm_prefetch(next + b, _MM_HINT_T0);
        }
        for (int64_t col = 0; col < n; col += 16) {
            int64_t left = n - col;
            __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            __m512 v = _mm512_maskz_loadu_ps(mask, row + col);
            if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, bias + col));
            herd_epilogue16(v, mask, relu, c ? c + i * ldc + col : NULL, out ? out + i * ldo + col : NULL);
        }
    }
}

int herd_f32_packed_available(void) {
    __builtin_cpu_init();
    // NOTE: avx512bw and avx512vl for the BF16 output's 16-bit stores (every AVX-512 server CPU has them).
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") ? 1 : 0;
}

#else

void herd_f32_gemm_packed(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *packed,
                          const float *bias, int relu, float *c, int64_t ldc) {
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)packed; (void)bias; (void)relu; (void)c; (void)ldc;
}

void herd_f32_gemm_packed_sparse(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *packed,
                                 const int32_t *row_start, const int32_t *sparse_cols, const float *sparse_vals,
                                 const float *wt, int64_t ldwt, const float *bias, int relu, float *c, int64_t ldc,
                                 uint16_t *out, int64_t ldo) {
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)packed; (void)row_start; (void)sparse_cols; (void)sparse_vals;
    (void)wt; (void)ldwt; (void)bias; (void)relu; (void)c; (void)ldc; (void)out; (void)ldo;
}

void herd_f32_rows_bias_epilogue(int64_t m, int64_t n, const float *const *rows, const float *bias, int relu, float *c,
                                 int64_t ldc, uint16_t *out, int64_t ldo) {
    (void)m; (void)n; (void)rows; (void)bias; (void)relu; (void)c; (void)ldc; (void)out; (void)ldo;
}

int herd_f32_packed_available(void) { return 0; }

#endif

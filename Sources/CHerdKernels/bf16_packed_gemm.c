// BF16 GEMM against a weight packed once (serving): C[M, N] = A[M, K] · Wᵀ, W [N, K], with BF16
// operands and FP32 accumulation, on AVX512_BF16 (`vdpbf16ps`). See herd_kernels.h.
#include "herd_kernels.h"
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include "avx512_epilogue.h"
#define HERD_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define HERD_HAS_BF16_KERNEL 1
#else
#define HERD_HAS_BF16_KERNEL 0
#endif

// Packed layout: panels of 16 output columns; panel p holds, for each pair kk of K (K rounded
// up to even), 16 × 2 BF16 values: [j][0] = W[16p + j][2kk], [j][1] = W[16p + j][2kk + 1]
// (0 beyond N or K). One pair row of a panel is one 64-byte vector, the `vdpbf16ps` B operand.
size_t herd_bf16_packed_count(int64_t n, int64_t k) {
    int64_t panels = (n + 15) / 16, pairs = (k + 1) / 2;
    return (size_t)(panels * pairs * 32);
}

void herd_bf16_pack_weight(const uint16_t *w, int64_t ldw, int64_t n, int64_t k, uint16_t *out) {
    int64_t panels = (n + 15) / 16, pairs = (k + 1) / 2;
    for (int64_t p = 0; p < panels; p++) {
        uint16_t *panel = out + p * pairs * 32;
        for (int64_t kk = 0; kk < pairs; kk++) {
            for (int64_t j = 0; j < 16; j++) {
                int64_t col = p * 16 + j;
                for (int64_t h = 0; h < 2; h++) {
                    int64_t kc = 2 * kk + h;
                    panel[kk * 32 + j * 2 + h] = (col < n && kc < k) ? w[col * ldw + kc] : 0;
                }
            }
        }
    }
}

#if HERD_HAS_BF16_KERNEL

// One block of MR rows × NP panels (16 columns each) over the whole K: MR·NP accumulators in
// registers; per pair of K, NP vector loads of W, MR broadcasts of an A pair, MR·NP vdpbf16ps.
static inline __attribute__((always_inline)) HERD_BF16_TARGET
void block(const uint16_t *a, int64_t lda, const uint16_t *wp, int64_t pairs, int64_t k,
           float *c, int64_t ldc, int64_t col0, int64_t n, const float *bias, int relu, uint16_t *out, int64_t ldo,
           const int MR, const int NP) {
    // NOTE: the first pair step writes the accumulators (a dot product onto a zero register)
    // instead of zeroing them first: LLVM turned the zeroing loop into a memset of a stack copy
    // of `acc` per block. With K = 1 that step is the odd column's (a, 0) pair.
    __m512 acc[6][4];
    const int64_t full = k / 2;
    const int64_t pstride = pairs * 32;
    {
        __m512bh b[4];
        for (int q = 0; q < NP; q++) b[q] = (__m512bh)_mm512_loadu_si512((const void *)(wp + q * pstride));
        for (int r = 0; r < MR; r++) {
            uint32_t pair = a[r * lda];
            if (full > 0) memcpy(&pair, a + r * lda, 4);
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)pair);
            for (int q = 0; q < NP; q++) acc[r][q] = _mm512_dpbf16_ps(_mm512_setzero_ps(), av, b[q]);
        }
    }
    for (int64_t kk = 1; kk < full; kk++) {
        __m512bh b[4];
        for (int q = 0; q < NP; q++) b[q] = (__m512bh)_mm512_loadu_si512((const void *)(wp + q * pstride + kk * 32));
        for (int r = 0; r < MR; r++) {
            uint32_t pair;
            memcpy(&pair, a + r * lda + 2 * kk, 4);
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)pair);
            for (int q = 0; q < NP; q++) acc[r][q] = _mm512_dpbf16_ps(acc[r][q], av, b[q]);
        }
    }
    if ((k & 1) && full > 0) {  // last K column alone: its pair is (a, 0) against (w, 0)
        __m512bh b[4];
        for (int q = 0; q < NP; q++) b[q] = (__m512bh)_mm512_loadu_si512((const void *)(wp + q * pstride + full * 32));
        for (int r = 0; r < MR; r++) {
            uint32_t pair = a[r * lda + k - 1];
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)pair);
            for (int q = 0; q < NP; q++) acc[r][q] = _mm512_dpbf16_ps(acc[r][q], av, b[q]);
        }
    }
    for (int q = 0; q < NP; q++) {
        int64_t col = col0 + 16 * q, left = n - col;
        __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __m512 bv = bias ? _mm512_maskz_loadu_ps(mask, bias + col) : _mm512_setzero_ps();
        for (int r = 0; r < MR; r++) {
            herd_epilogue16(bias ? _mm512_add_ps(acc[r][q], bv) : acc[r][q], mask, relu, c ? c + r * ldc + col : NULL,
                            out ? out + r * ldo + col : NULL);
        }
    }
}

#define HERD_NP_CASES(MR)                                                                        \
    switch (np) {                                                                                \
    case 4: block(a, lda, wp, pairs, k, c, ldc, col0, n, bias, relu, out, ldo, MR, 4); break;     \
    case 3: block(a, lda, wp, pairs, k, c, ldc, col0, n, bias, relu, out, ldo, MR, 3); break;     \
    case 2: block(a, lda, wp, pairs, k, c, ldc, col0, n, bias, relu, out, ldo, MR, 2); break;     \
    default: block(a, lda, wp, pairs, k, c, ldc, col0, n, bias, relu, out, ldo, MR, 1); break;    \
    }

static HERD_BF16_TARGET void dispatch(const uint16_t *a, int64_t lda, const uint16_t *wp, int64_t pairs, int64_t k,
                                      float *c, int64_t ldc, int64_t col0, int64_t n, const float *bias, int relu,
                                      uint16_t *out, int64_t ldo, int mr, int np) {
    switch (mr) {
    case 6: HERD_NP_CASES(6) break;
    case 5: HERD_NP_CASES(5) break;
    case 4: HERD_NP_CASES(4) break;
    case 3: HERD_NP_CASES(3) break;
    case 2: HERD_NP_CASES(2) break;
    default: HERD_NP_CASES(1) break;
    }
}

HERD_BF16_TARGET
void herd_bf16_gemm_packed_epilogue(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                                    const uint16_t *packed, const float *bias, int relu, float *c, int64_t ldc,
                                    uint16_t *out, int64_t ldo) {
    const int64_t panels = (n + 15) / 16, pairs = (k + 1) / 2;
    // NOTE: column blocks of 4 panels (64 columns × K: 128 KB of W at K = 1024) outside, row
    // blocks of 6 inside, so a W block stays in L2 while every row block of A passes over it.
    for (int64_t p0 = 0; p0 < panels; p0 += 4) {
        int np = (int)(panels - p0 < 4 ? panels - p0 : 4);
        const uint16_t *wp = packed + p0 * pairs * 32;
        for (int64_t r0 = 0; r0 < m; r0 += 6) {
            int mr = (int)(m - r0 < 6 ? m - r0 : 6);
            dispatch(a + r0 * lda, lda, wp, pairs, k, c ? c + r0 * ldc : NULL, ldc, p0 * 16, n, bias, relu,
                     out ? out + r0 * ldo : NULL, ldo, mr, np);
        }
    }
}

void herd_bf16_gemm_packed(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                           const uint16_t *packed, float *c, int64_t ldc) {
    herd_bf16_gemm_packed_epilogue(m, n, k, a, lda, packed, NULL, 0, c, ldc, NULL, 0);
}

int herd_bf16_packed_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") ? 1 : 0;
}

#else

void herd_bf16_gemm_packed(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                           const uint16_t *packed, float *c, int64_t ldc) {
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)packed; (void)c; (void)ldc;
}

void herd_bf16_gemm_packed_epilogue(int64_t m, int64_t n, int64_t k, const uint16_t *a, int64_t lda,
                                    const uint16_t *packed, const float *bias, int relu, float *c, int64_t ldc,
                                    uint16_t *out, int64_t ldo) {
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)packed; (void)bias; (void)relu; (void)c; (void)ldc; (void)out; (void)ldo;
}

int herd_bf16_packed_available(void) { return 0; }

#endif

// The packed GEMM kernels' shared epilogue (f32_packed_gemm.c, bf16_packed_gemm.c): one vector of
// 16 output columns of a row, bias already added.
#ifndef HERD_AVX512_EPILOGUE_H
#define HERD_AVX512_EPILOGUE_H
#include <immintrin.h>
#include <stdint.h>

/// ReLU (when `relu`), then the masked columns stored as FP32 to `c` (unless NULL) and rounded to
/// BF16 into `out` (unless NULL).
///
/// NOTE: ReLU as Swift's max(v, 0) — 0 where 0 >= v, so NaN stays NaN and -0 becomes 0 — and the
/// rounding to nearest even in integer arithmetic as BF16.roundBits does (a NaN stays a NaN), so the
/// BF16 output equals rounding the FP32 one exactly.
static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl")))
void herd_epilogue16(__m512 v, __mmask16 mask, int relu, float *c, uint16_t *out) {
    if (relu) v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(_mm512_setzero_ps(), v, _CMP_GE_OQ), _mm512_setzero_ps());
    if (c) _mm512_mask_storeu_ps(c, mask, v);
    if (out) {
        __m512i u = _mm512_castps_si512(v);
        __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
        __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb), 16);
        __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        rounded = _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
        _mm256_mask_storeu_epi16(out, mask, _mm512_cvtepi32_epi16(rounded));
    }
}

#endif

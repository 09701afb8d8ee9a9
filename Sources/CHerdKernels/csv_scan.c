// The CSV reader's line splitter (see include/herd_csv_scan.h).
#include "herd_csv_scan.h"
#if defined(__AVX512BW__) || defined(__AVX2__) || defined(__SSE2__)
#include <immintrin.h>
#endif

/// Bit i set ⇔ p[i] == c, for the 64 bytes at p.
static inline uint64_t eq_mask64(const uint8_t *p, uint8_t c) {
#if defined(__AVX512BW__)
    return _mm512_cmpeq_epi8_mask(_mm512_loadu_si512((const void *)p), _mm512_set1_epi8((char)c));
#elif defined(__AVX2__)
    __m256i k = _mm256_set1_epi8((char)c);
    uint32_t lo = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)p), k));
    uint32_t hi = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + 32)), k));
    return (uint64_t)lo | ((uint64_t)hi << 32);
#elif defined(__SSE2__)
    __m128i k = _mm_set1_epi8((char)c);
    uint64_t m = 0;
    for (int j = 0; j < 4; j++) {
        uint64_t b = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * j)), k));
        m |= b << (16 * j);
    }
    return m;
#else
    uint64_t m = 0;
    for (int j = 0; j < 64; j++) m |= (uint64_t)(p[j] == c) << j;
    return m;
#endif
}

size_t herd_csv_split_line(const uint8_t *p, const uint8_t *end, uint8_t sep, uint32_t *seps, size_t max_seps, size_t *found) {
    size_t n = (size_t)(end - p), i = 0, k = 0;
    while (i + 64 <= n) {
        uint64_t s = eq_mask64(p + i, sep);
        uint64_t l = eq_mask64(p + i, '\n');
        if (l) s &= (l & (0 - l)) - 1;  // separators before the first newline
        while (s) {
            if (k < max_seps) seps[k] = (uint32_t)(i + (size_t)__builtin_ctzll(s));
            k++;
            s &= s - 1;
        }
        if (l) {
            *found = k;
            return i + (size_t)__builtin_ctzll(l);
        }
        i += 64;
    }
    for (; i < n; i++) {
        uint8_t c = p[i];
        if (c == '\n') break;
        if (c == sep) {
            if (k < max_seps) seps[k] = (uint32_t)i;
            k++;
        }
    }
    *found = k;
    return i;
}

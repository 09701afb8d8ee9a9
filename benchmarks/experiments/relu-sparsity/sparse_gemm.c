// Does skipping the ranker's zero activations beat the dense packed GEMM? A one-thread
// microbenchmark on real ReLU outputs (dumped by dump_activations.py), not part of Herd.
//
//   y [M, N] = x [M, K] · Wᵀ, W packed in 16-column panels as in Sources/CHerdKernels/f32_packed_gemm.c.
//   dense MR×NP:  the serving kernel's register tile (MR rows × NP panels), every k.
//   skip  MR×NP:  the same tile over only the k where some of its MR rows is non-zero (a per-tile
//                 list of k and the tile's compacted x values, built inside the timed call).
// Prints dense-equivalent GFLOP/s (2·M·N·K per call, whatever was skipped) and the kept fraction of k;
// each variant's first calls are checked against a double-precision loop (exit 1 on a mismatch).
//
//   cc -O3 -march=native -o sparse_gemm sparse_gemm.c -lm && ./sparse_gemm act.f32 ROWS K N
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void pack(const float *w, int64_t n, int64_t k, float *out) {
    for (int64_t p = 0; p < n / 16; p++)
        for (int64_t j = 0; j < 16; j++)
            for (int64_t kk = 0; kk < k; kk++) out[(p * k + kk) * 16 + j] = w[(p * 16 + j) * k + kk];
}

// MR rows × NP panels over `cnt` steps: step i uses weight row ks[i] (or i when ks is NULL) and
// the MR values xs[i·MR + r] (or x[r·k + i] when ks is NULL).
static inline __attribute__((always_inline)) void tile(const int32_t *ks, const float *xs, const float *x, int64_t cnt,
                                                       const float *wp, int64_t k, float *y, int64_t ldy, const int MR,
                                                       const int NP) {
    __m512 acc[6][8];
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < NP; q++) acc[r][q] = _mm512_setzero_ps();
    for (int64_t i = 0; i < cnt; i++) {
        int64_t kk = ks ? ks[i] : i;
        __m512 b[8];
        for (int q = 0; q < NP; q++) b[q] = _mm512_loadu_ps(wp + (q * k + kk) * 16);
        for (int r = 0; r < MR; r++) {
            __m512 a = _mm512_set1_ps(ks ? xs[i * MR + r] : x[r * k + i]);
            for (int q = 0; q < NP; q++) acc[r][q] = _mm512_fmadd_ps(a, b[q], acc[r][q]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int q = 0; q < NP; q++) _mm512_storeu_ps(y + r * ldy + 16 * q, acc[r][q]);
}

// Dense: column blocks of NP panels outside, row tiles inside (as the serving kernel).
#define DENSE(NAME, MR, NP)                                                                          \
    static double NAME(int64_t m, int64_t n, int64_t k, const float *x, const float *wp, float *y,   \
                       int32_t *ks, float *xs) {                                                     \
        (void)ks; (void)xs;                                                                          \
        for (int64_t p0 = 0; p0 < n / 16; p0 += NP)                                                  \
            for (int64_t r0 = 0; r0 < m; r0 += MR)                                                   \
                tile(NULL, NULL, x + r0 * k, k, wp + p0 * k * 16, k, y + r0 * n + p0 * 16, n, MR, NP); \
        return 1.0;                                                                                  \
    }
// Skip: per row tile, the list of k with a non-zero in the tile, then the same loop order.
#define SKIP(NAME, MR, NP)                                                                           \
    static double NAME(int64_t m, int64_t n, int64_t k, const float *x, const float *wp, float *y,   \
                       int32_t *ks, float *xs) {                                                     \
        int64_t tiles = m / MR, kept = 0, cnt[1024];                                                 \
        for (int64_t t = 0; t < tiles; t++) {                                                        \
            int64_t c = 0;                                                                           \
            for (int64_t kk = 0; kk < k; kk++) {                                                     \
                int nz = 0;                                                                          \
                for (int r = 0; r < MR; r++) nz |= x[(t * MR + r) * k + kk] != 0;                    \
                if (!nz) continue;                                                                   \
                ks[t * k + c] = (int32_t)kk;                                                         \
                for (int r = 0; r < MR; r++) xs[(t * k + c) * MR + r] = x[(t * MR + r) * k + kk];    \
                c++;                                                                                 \
            }                                                                                        \
            cnt[t] = c;                                                                              \
            kept += c;                                                                               \
        }                                                                                            \
        for (int64_t p0 = 0; p0 < n / 16; p0 += NP)                                                  \
            for (int64_t t = 0; t < tiles; t++)                                                      \
                tile(ks + t * k, xs + t * k * MR, NULL, cnt[t], wp + p0 * k * 16, k,                 \
                     y + t * MR * n + p0 * 16, n, MR, NP);                                           \
        return (double)kept / (double)(tiles * k);                                                   \
    }

DENSE(dense6x4, 6, 4)
SKIP(skip6x4, 6, 4)
SKIP(skip4x4, 4, 4)
SKIP(skip3x4, 3, 4)
SKIP(skip2x8, 2, 8)
SKIP(skip1x8, 1, 8)

typedef double (*kernel)(int64_t, int64_t, int64_t, const float *, const float *, float *, int32_t *, float *);

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s ACTIVATIONS.f32 ROWS K N  (ROWS × K floats; N a multiple of 128)\n", argv[0]);
        return 2;
    }
    const int64_t rows = atol(argv[2]), k = atol(argv[3]), n = atol(argv[4]), m = 192, calls = rows / 200;
    if (k > 1024 || n % 128 != 0 || calls < 1) { fprintf(stderr, "need K ≤ 1024, N %% 128 == 0, ROWS ≥ 200\n"); return 2; }
    float *x = malloc(rows * k * 4);
    FILE *f = fopen(argv[1], "rb");
    if (!f || fread(x, 4, rows * k, f) != (size_t)(rows * k)) { fprintf(stderr, "cannot read %s\n", argv[1]); return 2; }
    fclose(f);
    float *w = malloc(n * k * 4), *wp = aligned_alloc(64, n * k * 4), *y = aligned_alloc(64, m * n * 4);
    srand(1);
    for (int64_t i = 0; i < n * k; i++) w[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    pack(w, n, k, wp);
    int32_t *ks = malloc(m * k * 4);
    float *xs = malloc(m * k * 4);
    int64_t zeros = 0;
    for (int64_t i = 0; i < rows * k; i++) zeros += x[i] == 0;
    printf("[%lld × %lld] · [%lld × %lld]ᵀ, %lld calls of %lld rows, zero activations %.3f\n", (long long)m, (long long)k,
           (long long)n, (long long)k, (long long)calls, (long long)m, (double)zeros / (double)(rows * k));
    struct { const char *name; kernel run; } ks_[] = {{"dense 6×4", dense6x4}, {"skip 6×4", skip6x4}, {"skip 4×4", skip4x4},
                                                      {"skip 3×4", skip3x4}, {"skip 2×8", skip2x8}, {"skip 1×8", skip1x8}};
    double base = 0;
    for (size_t v = 0; v < sizeof ks_ / sizeof ks_[0]; v++) {
        double best = 1e30, kept = 0;
        int64_t checked = calls < 3 ? calls : 3;
        for (int64_t c = 0; c < checked; c++) {  // the first calls checked against the double loop
            const float *xc = x + c * 200 * k;
            kept += ks_[v].run(m, n, k, xc, wp, y, ks, xs) / (double)checked;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    double s = 0;
                    for (int64_t kk = 0; kk < k; kk++) s += (double)xc[i * k + kk] * w[j * k + kk];
                    if (fabs(y[i * n + j] - s) > 1e-3 * (1 + fabs(s))) {
                        fprintf(stderr, "%s: y[%lld, %lld] = %g, reference %g\n", ks_[v].name, (long long)i, (long long)j, y[i * n + j], s);
                        return 1;
                    }
                }
        }
        for (int rep = 0; rep < 15; rep++) {
            double t0 = now();
            for (int64_t c = 0; c < calls; c++) ks_[v].run(m, n, k, x + c * 200 * k, wp, y, ks, xs);
            double t = now() - t0;
            if (t < best) best = t;
        }
        double gf = 2.0 * m * n * k * calls / best * 1e-9;
        if (v == 0) base = gf;
        printf("  %-10s %6.1f GFLOP/s dense-equivalent  %.2f× dense   k kept %.3f\n", ks_[v].name, gf, gf / base, kept);
    }
    return 0;
}

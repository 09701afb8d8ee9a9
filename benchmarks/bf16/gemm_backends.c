// BF16 vs FP32 GEMM backends on MLP shapes, single-threaded (as Herd runs them inside each
// data-parallel worker). Build and run with benchmarks/bf16/run-gemm-backends.sh.
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dlfcn.h>

// Exported by libdnnl 2.6 but not declared in its public header (row-major, like dnnl_sgemm).
dnnl_status_t dnnl_gemm_bf16bf16f32(char transa, char transb, dnnl_dim_t M, dnnl_dim_t N, dnnl_dim_t K, float alpha,
                                    const uint16_t *A, dnnl_dim_t lda, const uint16_t *B, dnnl_dim_t ldb, float beta,
                                    float *C, dnnl_dim_t ldc);
extern char *openblas_get_corename(void);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint16_t to_bf16(float f) {  // round to nearest even (no NaN inputs here)
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFF + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

typedef void (*kernel_fn)(int m, int n, int k, const void *a, const void *b, float *c);
static void k_sgemm(int m, int n, int k, const void *a, const void *b, float *c) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, a, k, b, k, 0, c, n);
}
// cblas_sbgemm is declared by Debian's cblas.h but exported only by OpenBLAS builds with
// BUILD_BFLOAT16=1, so it is looked up at run time.
typedef void (*sbgemm_fn)(int, int, int, int, int, int, float, const uint16_t *, int, const uint16_t *, int, float, float *, int);
static sbgemm_fn sbgemm_ptr;
static void k_sbgemm(int m, int n, int k, const void *a, const void *b, float *c) {
    sbgemm_ptr(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, a, k, b, k, 0, c, n);
}
// BF16 emulated on FP32 units: operands rounded to BF16 precision but stored as FP32, then sgemm
// (bf16 x bf16 products are exact in FP32, so this is sbgemm's arithmetic).
static void round_bf16_inplace(float *x, long n) {
    for (long i = 0; i < n; i++) { uint32_t u; memcpy(&u, &x[i], 4); u += 0x7FFF + ((u >> 16) & 1); u &= 0xFFFF0000u; memcpy(&x[i], &u, 4); }
}
static int dnnl_status;
static void k_dnnl_sgemm(int m, int n, int k, const void *a, const void *b, float *c) {
    dnnl_status = dnnl_sgemm('N', 'T', m, n, k, 1, a, k, b, k, 0, c, n);
}
static void k_dnnl_bf16(int m, int n, int k, const void *a, const void *b, float *c) {
    dnnl_status = dnnl_gemm_bf16bf16f32('N', 'T', m, n, k, 1, a, k, b, k, 0, c, n);
}

// A layer's three training GEMMs (row-major, as HerdLayers.Linear runs them): forward
// y[M,O] = x[M,I]·W[O,I]ᵀ ('N','T'), weight gradient dW[O,I] = dy[M,O]ᵀ·x[M,I] ('T','N', K = M),
// input gradient dx[M,I] = dy[M,O]·W[O,I] ('N','N').
static double time_call(void (*f)(void *), void *arg) {
    f(arg);
    double best = 1e9, start = now();
    int reps = 0;
    while (reps < 5 || now() - start < 0.3) {
        double t0 = now();
        f(arg);
        double dt = now() - t0;
        if (dt < best) best = dt;
        reps++;
    }
    return best;
}
struct layer_call { char ta, tb; int m, n, k, lda, ldb, ldc; const void *a, *b; float *c; int bf16; };
static void run_layer_call(void *p) {
    struct layer_call *l = p;
    if (l->bf16)
        dnnl_status = dnnl_gemm_bf16bf16f32(l->ta, l->tb, l->m, l->n, l->k, 1, l->a, l->lda, l->b, l->ldb, 0, l->c, l->ldc);
    else
        cblas_sgemm(CblasRowMajor, l->ta == 'T' ? CblasTrans : CblasNoTrans, l->tb == 'T' ? CblasTrans : CblasNoTrans,
                    l->m, l->n, l->k, 1, l->a, l->lda, l->b, l->ldb, 0, l->c, l->ldc);
}
static void layer_shapes(int rows) {
    // DLRM bottom 13-512-256-64-16, top 367-512-256-1; W&D deep 429-1024-512-256-1.
    int layers[][2] = {{13, 512}, {512, 256}, {256, 64}, {64, 16}, {367, 512}, {256, 1}, {429, 1024}, {1024, 512}};
    printf("\nlayer training GEMMs at %d rows (one data-parallel shard), ms for sgemm / dnnl bf16 (x = bf16 speed-up):\n", rows);
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        int in = layers[i][0], out = layers[i][1];
        float *x = calloc((size_t)rows * in, 4), *w = calloc((size_t)out * in, 4), *dy = calloc((size_t)rows * out, 4), *c = calloc((size_t)rows * (in > out ? in : out) + (size_t)in * out, 4);
        uint16_t *xh = calloc((size_t)rows * in, 2), *wh = calloc((size_t)out * in, 2), *dyh = calloc((size_t)rows * out, 2);
        for (long j = 0; j < (long)rows * in; j++) { x[j] = (j % 7) * 0.1f; xh[j] = to_bf16(x[j]); }
        for (long j = 0; j < (long)out * in; j++) { w[j] = (j % 5) * 0.1f; wh[j] = to_bf16(w[j]); }
        for (long j = 0; j < (long)rows * out; j++) { dy[j] = (j % 3) * 0.1f; dyh[j] = to_bf16(dy[j]); }
        struct layer_call calls[3][2];
        for (int b = 0; b < 2; b++) {
            calls[0][b] = (struct layer_call){'N', 'T', rows, out, in, in, in, out, b ? (void *)xh : x, b ? (void *)wh : w, c, b};
            calls[1][b] = (struct layer_call){'T', 'N', out, in, rows, out, in, in, b ? (void *)dyh : dy, b ? (void *)xh : x, c, b};
            calls[2][b] = (struct layer_call){'N', 'N', rows, in, out, out, in, in, b ? (void *)dyh : dy, b ? (void *)wh : w, c, b};
        }
        double t[3][2];
        for (int g = 0; g < 3; g++) for (int b = 0; b < 2; b++) t[g][b] = time_call(run_layer_call, &calls[g][b]) * 1e3;
        printf("  %4d -> %-4d  fwd %.3f / %.3f (%.2fx)  dW %.3f / %.3f (%.2fx)  dx %.3f / %.3f (%.2fx)  all %.2fx\n", in, out,
               t[0][0], t[0][1], t[0][0] / t[0][1], t[1][0], t[1][1], t[1][0] / t[1][1], t[2][0], t[2][1], t[2][0] / t[2][1],
               (t[0][0] + t[1][0] + t[2][0]) / (t[0][1] + t[1][1] + t[2][1]));
        free(x); free(w); free(dy); free(c); free(xh); free(wh); free(dyh);
    }
}

static double bench(kernel_fn f, int m, int n, int k, const void *a, const void *b, float *c) {
    f(m, n, k, a, b, c);
    double best = 1e9, start = now();
    int reps = 0;
    while (reps < 5 || now() - start < 1.0) {
        double t0 = now();
        f(m, n, k, a, b, c);
        double dt = now() - t0;
        if (dt < best) best = dt;
        reps++;
    }
    return 2.0 * m * n * k / best / 1e9;
}

int main(void) {
    openblas_set_num_threads(1);
    sbgemm_ptr = (sbgemm_fn)dlsym(RTLD_DEFAULT, "cblas_sbgemm");
    printf("cblas_sbgemm exported by the loaded OpenBLAS: %s\n", sbgemm_ptr ? "yes" : "no");
    printf("OpenBLAS core: %s\n", openblas_get_corename());
    int shapes[][3] = {{1024, 512, 512}, {1024, 1024, 429}, {2048, 512, 367}, {1024, 256, 512}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * n * k), *c = malloc(sizeof(float) * m * n);
        float *ref = malloc(sizeof(float) * m * n);
        uint16_t *ah = malloc(2 * m * k), *bh = malloc(2 * n * k);
        srand(1);
        for (int i = 0; i < m * k; i++) { a[i] = rand() / (float)RAND_MAX - 0.5f; ah[i] = to_bf16(a[i]); }
        for (int i = 0; i < n * k; i++) { b[i] = rand() / (float)RAND_MAX - 0.5f; bh[i] = to_bf16(b[i]); }
        double sg = bench(k_sgemm, m, n, k, a, b, ref);
        double sb = sbgemm_ptr ? bench(k_sbgemm, m, n, k, ah, bh, c) : 0;
        double dg = bench(k_dnnl_sgemm, m, n, k, a, b, c);
        int sgs = dnnl_status;
        double db = bench(k_dnnl_bf16, m, n, k, ah, bh, c);
        int dbs = dnnl_status;
        if (dbs) db = 0;
        // Cost of rounding one FP32 operand [m, k] to BF16 precision in place, as GB/s of input.
        float *ar = malloc(sizeof(float) * m * k);
        double t0 = now();
        int reps = 0;
        while (now() - t0 < 0.3) { memcpy(ar, a, sizeof(float) * m * k); round_bf16_inplace(ar, (long)m * k); reps++; }
        double conv = 4.0 * m * k * reps / (now() - t0) / 1e9;
        free(ar);
        printf("%dx%dx%d (NT): sgemm %.1f  sbgemm %.1f%s  dnnl_sgemm %.1f%s  dnnl_gemm_bf16bf16f32 %.1f%s GFLOP/s;"
               " copy+round-to-bf16 %.1f GB/s\n",
               m, n, k, sg, sb, sbgemm_ptr ? "" : " (absent)", dg, sgs ? " (failed)" : "", db, dbs ? " (failed)" : "", conv);
        if (dbs) printf("  dnnl_gemm_bf16bf16f32 status %d (3 = dnnl_unimplemented: needs avx512_core)\n", dbs);
        free(a); free(b); free(c); free(ref); free(ah); free(bh);
    }
    layer_shapes(1024);
    return 0;
}

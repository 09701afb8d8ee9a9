// FP32 GEMM through oneDNN's matmul primitive, loaded at run time (dlopen "libdnnl.so.2"), so the
// package builds and runs without oneDNN. See herd_kernels.h for the contract.
//
// NOTE: why primitives and not `dnnl_sgemm`: the primitive is created once per shape and kept, so
// a call only rebinds pointers and runs the brgemm kernel (`dnnl_sgemm` re-derives its plan every
// call), and bias + ReLU run as post-ops on the output tile while it is still in registers
// (OpenBLAS needs a second pass over C). Single-threaded, per CPU-second, on this project's
// Zen 4 machine: ≈ 110–114 GFLOP/s on DLRM/W&D MLP shapes (1024-row shards) against ≈ 95 for
// OpenBLAS 0.3.21 plus a separate bias/ReLU pass.
//
// Only the oneDNN 2.x C API is used (3.x replaced the `*_desc_init` calls): the few types and
// constants needed are declared below with the values of 2.x's dnnl_types.h, and the library's
// version is checked before anything else is called.
#include "herd_kernels.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef int dnnl_status_t;
typedef int64_t dnnl_dim_t;
typedef dnnl_dim_t dnnl_dims_t[12];
typedef struct dnnl_opaque *dnnl_engine_t, *dnnl_stream_t, *dnnl_primitive_desc_t, *dnnl_primitive_t, *dnnl_memory_t,
    *dnnl_primitive_attr_t, *dnnl_post_ops_t;
// dnnl_memory_desc_t is 696 bytes and dnnl_matmul_desc_t 2800 in 2.6; room to spare, aligned.
typedef struct { _Alignas(64) unsigned char bytes[1024]; } md_t;
typedef struct { _Alignas(64) unsigned char bytes[4096]; } matmul_desc_t;
typedef struct { int arg; dnnl_memory_t memory; } exec_arg_t;
typedef struct { int major, minor, patch; const char *hash; unsigned cpu_runtime, gpu_runtime; } version_t;

enum {
    DNNL_SUCCESS = 0, DNNL_F32 = 3, DNNL_CPU = 1, DNNL_STREAM_DEFAULT = 1, DNNL_SCRATCHPAD_USER = 1,
    DNNL_QUERY_IMPL_INFO_STR = 8, DNNL_QUERY_SCRATCHPAD_MD = 136, DNNL_ELTWISE_RELU = 0x1f,
    ARG_SRC = 1, ARG_DST = 17, ARG_WEIGHTS = 33, ARG_BIAS = 41, ARG_SCRATCHPAD = 80,
};

static struct {
    const version_t *(*version)(void);
    dnnl_status_t (*engine_create)(dnnl_engine_t *, int, size_t);
    dnnl_status_t (*stream_create)(dnnl_stream_t *, dnnl_engine_t, unsigned);
    dnnl_status_t (*stream_wait)(dnnl_stream_t);
    dnnl_status_t (*stream_destroy)(dnnl_stream_t);
    dnnl_status_t (*md_init_by_strides)(md_t *, int, const dnnl_dims_t, int, const dnnl_dims_t);
    size_t (*md_get_size)(const md_t *);
    dnnl_status_t (*matmul_desc_init)(matmul_desc_t *, const md_t *, const md_t *, const md_t *, const md_t *);
    dnnl_status_t (*attr_create)(dnnl_primitive_attr_t *);
    dnnl_status_t (*attr_destroy)(dnnl_primitive_attr_t);
    dnnl_status_t (*attr_set_post_ops)(dnnl_primitive_attr_t, dnnl_post_ops_t);
    dnnl_status_t (*attr_set_scratchpad_mode)(dnnl_primitive_attr_t, int);
    dnnl_status_t (*attr_set_output_scales)(dnnl_primitive_attr_t, dnnl_dim_t, int, const float *);
    dnnl_status_t (*post_ops_create)(dnnl_post_ops_t *);
    dnnl_status_t (*post_ops_destroy)(dnnl_post_ops_t);
    dnnl_status_t (*post_ops_append_eltwise)(dnnl_post_ops_t, float, int, float, float);
    dnnl_status_t (*post_ops_append_sum)(dnnl_post_ops_t, float);
    dnnl_status_t (*pd_create)(dnnl_primitive_desc_t *, const void *, dnnl_primitive_attr_t, dnnl_engine_t, const void *);
    dnnl_status_t (*pd_destroy)(dnnl_primitive_desc_t);
    dnnl_status_t (*pd_query)(dnnl_primitive_desc_t, int, int, void *);
    const md_t *(*pd_query_md)(dnnl_primitive_desc_t, int, int);
    dnnl_status_t (*primitive_create)(dnnl_primitive_t *, dnnl_primitive_desc_t);
    dnnl_status_t (*primitive_destroy)(dnnl_primitive_t);
    dnnl_status_t (*primitive_execute)(dnnl_primitive_t, dnnl_stream_t, int, const exec_arg_t *);
    dnnl_status_t (*memory_create)(dnnl_memory_t *, const md_t *, dnnl_engine_t, void *);
    dnnl_status_t (*memory_destroy)(dnnl_memory_t);
    dnnl_status_t (*memory_set_data_handle)(dnnl_memory_t, void *);
    void (*omp_set_num_threads)(int);
} api;

static dnnl_engine_t engine;
static int loaded;  // 1 usable, -1 not
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;

#define CACHE_SLOTS 48

// One cached primitive: its shape key and the memory objects its calls rebind.
typedef struct {
    int valid, usable;
    int ta, tb, relu, has_bias;
    int64_t m, n, k, lda, ldb, ldc;
    float alpha, beta;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst, bias, scratch;
    void *scratch_buf;
    unsigned long last_use;
} entry_t;

typedef struct {
    dnnl_stream_t stream;
    unsigned long clock;
    entry_t slots[CACHE_SLOTS];
} thread_cache_t;

// Frees the primitive and memory objects of `e` (any of them may be missing) and marks it unusable.
static void release_parts(entry_t *e) {
    if (e->prim) api.primitive_destroy(e->prim);
    dnnl_memory_t mems[5] = {e->src, e->wei, e->dst, e->bias, e->scratch};
    for (int i = 0; i < 5; i++) if (mems[i]) api.memory_destroy(mems[i]);
    free(e->scratch_buf);
    e->prim = NULL;
    e->src = e->wei = e->dst = e->bias = e->scratch = NULL;
    e->scratch_buf = NULL;
    e->usable = 0;
}

static void release_entry(entry_t *e) {
    if (e->valid) release_parts(e);
    memset(e, 0, sizeof *e);
}

static void destroy_cache(void *p) {
    thread_cache_t *tc = p;
    for (int i = 0; i < CACHE_SLOTS; i++) release_entry(&tc->slots[i]);
    if (tc->stream) api.stream_destroy(tc->stream);
    free(tc);
}

#define LOAD(field, name)                                            \
    do {                                                             \
        *(void **)&api.field = dlsym(lib, name);                     \
        if (!api.field) return;                                      \
    } while (0)

static void load_library_inner(void) {
    // NOTE: Herd owns the threads: every call runs on the calling thread. OpenMP's team size is
    // also set to 1 per calling thread (`omp_set_num_threads`) in case the environment asked
    // for more, since Herd already runs one GEMM per core.
    setenv("OMP_NUM_THREADS", "1", 0);
    void *lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return;
    LOAD(version, "dnnl_version");
    const version_t *v = api.version();
    if (!v || v->major != 2) return;
    LOAD(engine_create, "dnnl_engine_create");
    LOAD(stream_create, "dnnl_stream_create");
    LOAD(stream_wait, "dnnl_stream_wait");
    LOAD(stream_destroy, "dnnl_stream_destroy");
    LOAD(md_init_by_strides, "dnnl_memory_desc_init_by_strides");
    LOAD(md_get_size, "dnnl_memory_desc_get_size");
    LOAD(matmul_desc_init, "dnnl_matmul_desc_init");
    LOAD(attr_create, "dnnl_primitive_attr_create");
    LOAD(attr_destroy, "dnnl_primitive_attr_destroy");
    LOAD(attr_set_post_ops, "dnnl_primitive_attr_set_post_ops");
    LOAD(attr_set_scratchpad_mode, "dnnl_primitive_attr_set_scratchpad_mode");
    LOAD(attr_set_output_scales, "dnnl_primitive_attr_set_output_scales");
    LOAD(post_ops_create, "dnnl_post_ops_create");
    LOAD(post_ops_destroy, "dnnl_post_ops_destroy");
    LOAD(post_ops_append_eltwise, "dnnl_post_ops_append_eltwise");
    LOAD(post_ops_append_sum, "dnnl_post_ops_append_sum");
    LOAD(pd_create, "dnnl_primitive_desc_create");
    LOAD(pd_destroy, "dnnl_primitive_desc_destroy");
    LOAD(pd_query, "dnnl_primitive_desc_query");
    LOAD(pd_query_md, "dnnl_primitive_desc_query_md");
    LOAD(primitive_create, "dnnl_primitive_create");
    LOAD(primitive_destroy, "dnnl_primitive_destroy");
    LOAD(primitive_execute, "dnnl_primitive_execute");
    LOAD(memory_create, "dnnl_memory_create");
    LOAD(memory_destroy, "dnnl_memory_destroy");
    LOAD(memory_set_data_handle, "dnnl_memory_set_data_handle");
    *(void **)&api.omp_set_num_threads = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (!api.omp_set_num_threads) *(void **)&api.omp_set_num_threads = dlsym(lib, "omp_set_num_threads");
    if (api.engine_create(&engine, DNNL_CPU, 0) != DNNL_SUCCESS) return;
    if (pthread_key_create(&cache_key, destroy_cache) != 0) return;
    loaded = 1;
}

static void load_library(void) {
    load_library_inner();
    if (loaded != 1) loaded = -1;
}

int herd_onednn_matmul_loaded(void) {
    pthread_once(&load_once, load_library);
    return loaded == 1;
}

static thread_cache_t *thread_cache(void) {
    thread_cache_t *tc = pthread_getspecific(cache_key);
    if (tc) return tc;
    tc = calloc(1, sizeof *tc);
    if (!tc) return NULL;
    if (api.stream_create(&tc->stream, engine, DNNL_STREAM_DEFAULT) != DNNL_SUCCESS) {
        free(tc);
        return NULL;
    }
    if (api.omp_set_num_threads) api.omp_set_num_threads(1);
    pthread_setspecific(cache_key, tc);
    return tc;
}

// Builds the primitive for `e`'s key; leaves e->usable 0 when oneDNN refuses or would run its
// slow reference implementation.
static void build_entry(entry_t *e) {
    md_t src, wei, dst, bias;
    dnnl_dims_t sd = {e->m, e->k}, wd = {e->k, e->n}, dd = {e->m, e->n}, bd = {1, e->n};
    dnnl_dims_t ss = {e->ta ? 1 : e->lda, e->ta ? e->lda : 1};
    dnnl_dims_t ws = {e->tb ? 1 : e->ldb, e->tb ? e->ldb : 1};
    dnnl_dims_t ds = {e->ldc, 1}, bs = {e->n, 1};
    if (api.md_init_by_strides(&src, 2, sd, DNNL_F32, ss) || api.md_init_by_strides(&wei, 2, wd, DNNL_F32, ws) ||
        api.md_init_by_strides(&dst, 2, dd, DNNL_F32, ds) || api.md_init_by_strides(&bias, 2, bd, DNNL_F32, bs))
        return;
    matmul_desc_t desc;
    if (api.matmul_desc_init(&desc, &src, &wei, e->has_bias ? &bias : NULL, &dst)) return;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (api.attr_create(&attr)) return;
    int ok = api.attr_set_scratchpad_mode(attr, DNNL_SCRATCHPAD_USER) == DNNL_SUCCESS;
    // alpha as oneDNN's output scale: dst = sum-post-op(alpha · A·B) = alpha · A·B + beta · dst.
    if (ok && e->alpha != 1) ok = api.attr_set_output_scales(attr, 1, 0, &e->alpha) == DNNL_SUCCESS;
    if (ok && (e->beta != 0 || e->relu)) {
        ok = api.post_ops_create(&po) == DNNL_SUCCESS;
        if (ok && e->beta != 0) ok = api.post_ops_append_sum(po, e->beta) == DNNL_SUCCESS;
        if (ok && e->relu) ok = api.post_ops_append_eltwise(po, 1.0f, DNNL_ELTWISE_RELU, 0, 0) == DNNL_SUCCESS;
        if (ok) ok = api.attr_set_post_ops(attr, po) == DNNL_SUCCESS;
    }
    if (ok) ok = api.pd_create(&pd, &desc, attr, engine, NULL) == DNNL_SUCCESS;
    if (ok) {
        const char *impl = NULL;
        // NOTE: "ref" is oneDNN's naive loop (orders of magnitude slower): OpenBLAS takes such shapes.
        ok = api.pd_query(pd, DNNL_QUERY_IMPL_INFO_STR, 0, &impl) == DNNL_SUCCESS && impl && strncmp(impl, "ref", 3) != 0;
    }
    if (ok) {
        const md_t *smd = api.pd_query_md(pd, DNNL_QUERY_SCRATCHPAD_MD, 0);
        size_t bytes = smd ? api.md_get_size(smd) : 0;
        ok = api.primitive_create(&e->prim, pd) == DNNL_SUCCESS;
        if (ok) {
            ok = api.memory_create(&e->src, &src, engine, NULL) == DNNL_SUCCESS &&
                 api.memory_create(&e->wei, &wei, engine, NULL) == DNNL_SUCCESS &&
                 api.memory_create(&e->dst, &dst, engine, NULL) == DNNL_SUCCESS &&
                 (!e->has_bias || api.memory_create(&e->bias, &bias, engine, NULL) == DNNL_SUCCESS);
            if (ok && bytes > 0) {
                e->scratch_buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
                ok = e->scratch_buf && api.memory_create(&e->scratch, smd, engine, e->scratch_buf) == DNNL_SUCCESS;
            }
            e->usable = 1;  // from here on release_entry frees what was made
            if (!ok) release_parts(e);
        }
    }
    if (pd) api.pd_destroy(pd);
    if (po) api.post_ops_destroy(po);
    api.attr_destroy(attr);
}

int herd_onednn_matmul(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c, int64_t ldc, const float *bias, int relu) {
    if (!herd_onednn_matmul_loaded() || m <= 0 || n <= 0 || k <= 0) return -1;
    // Bias/ReLU are defined for `C = A·B + bias` only (C overwritten, alpha 1).
    if ((bias || relu) && (beta != 0 || alpha != 1)) return -1;
    thread_cache_t *tc = thread_cache();
    if (!tc) return -1;
    int has_bias = bias != NULL;
    relu = relu != 0;
    trans_a = trans_a != 0;
    trans_b = trans_b != 0;
    entry_t *e = NULL, *victim = &tc->slots[0];
    for (int i = 0; i < CACHE_SLOTS; i++) {
        entry_t *s = &tc->slots[i];
        if (s->valid && s->m == m && s->n == n && s->k == k && s->lda == lda && s->ldb == ldb && s->ldc == ldc &&
            s->ta == trans_a && s->tb == trans_b && s->alpha == alpha && s->beta == beta && s->relu == relu && s->has_bias == has_bias) {
            e = s;
            break;
        }
        // Victim: the first free slot, else the least recently used.
        if (victim->valid && (!s->valid || s->last_use < victim->last_use)) victim = s;
    }
    if (!e) {
        release_entry(victim);
        e = victim;
        e->valid = 1;
        e->ta = trans_a; e->tb = trans_b; e->relu = relu; e->has_bias = has_bias;
        e->m = m; e->n = n; e->k = k; e->lda = lda; e->ldb = ldb; e->ldc = ldc; e->alpha = alpha; e->beta = beta;
        build_entry(e);
    }
    e->last_use = ++tc->clock;
    if (!e->usable) return -1;
    if (api.memory_set_data_handle(e->src, (void *)a) || api.memory_set_data_handle(e->wei, (void *)b) ||
        api.memory_set_data_handle(e->dst, c) || (has_bias && api.memory_set_data_handle(e->bias, (void *)bias)))
        return -1;
    exec_arg_t args[5] = {{ARG_SRC, e->src}, {ARG_WEIGHTS, e->wei}, {ARG_DST, e->dst}};
    int nargs = 3;
    if (has_bias) args[nargs++] = (exec_arg_t){ARG_BIAS, e->bias};
    if (e->scratch) args[nargs++] = (exec_arg_t){ARG_SCRATCHPAD, e->scratch};
    if (api.primitive_execute(e->prim, tc->stream, nargs, args) != DNNL_SUCCESS) return -1;
    return api.stream_wait(tc->stream) == DNNL_SUCCESS ? 0 : -1;
}

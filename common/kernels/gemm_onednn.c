/* gemm_onednn.c: the oneDNN engine of gemm.h.  One matmul primitive per
 * product shape (transposes, sizes, leading dimensions, alpha, beta,
 * precision), made on first use and kept in a small cache; the memory
 * objects are kept with it and pointed at the caller's arrays on each call.
 * Transposes and leading dimensions are strides of plain layouts, so no
 * operand is copied in f32.  In bf16 the two inputs are converted into
 * compact bf16 arrays first (gemm_to_bf16): scratch arrays, or kept copies
 * for versioned inputs (weights, and temporaries read by several products). */
#include "kernels/gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/ts.h"

#define GEMM_CACHE 48
#define GEMM_WCACHE 3            /* bf16 weight copies kept: one denoiser's large layers (the next
                                    denoiser's step changes its version anyway) */
#define GEMM_TEMPS 4             /* temporaries' copies kept: den_backward reads an activation and a
                                    gradient in each of two layers (x and g at the first, a_1 and g at
                                    the last); rec_cl reads its logits' gradient and one side's rows */
#define GEMM_WMIN (1 << 16)      /* smaller versioned inputs are converted on each use */
#define GEMM_WSAMPLES 8

typedef struct {                 /* a versioned input's bf16 copy, as stored */
    const float *src;
    int64_t rows, cols, ld;
    uint64_t version, stamp;
    float sample[GEMM_WSAMPLES];
    uint16_t *bf;
    size_t cap;
} gemm_wcopy;

typedef struct {
    int used, ok, ta, tb;
    gemm_precision p;
    int64_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    uint64_t stamp;                      /* last use, for eviction */
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
    char impl[64];                       /* oneDNN's name for it (its pd is gone) */
} gemm_entry;

static struct {
    int tried, ready;
    dnnl_engine_t eng;
    dnnl_stream_t st;
    gemm_entry cache[GEMM_CACHE];
    uint64_t clock;
    char last_impl[64];
    uint16_t *bf[2];                     /* bf16 copies of unversioned A and B */
    size_t bf_cap[2];
    gemm_wcopy w[GEMM_WCACHE];           /* weights' copies */
    gemm_wcopy t[GEMM_TEMPS];            /* temporaries' copies */
} gx;

static int gemm_onednn_init(void)
{
    if (gx.tried) return gx.ready;
    gx.tried = 1;
    if (dnnl_engine_create(&gx.eng, dnnl_cpu, 0) != dnnl_success) return 0;
    if (dnnl_stream_create(&gx.st, gx.eng, dnnl_stream_default_flags) != dnnl_success) return 0;
    gx.ready = 1;
    return 1;
}

int gemm_onednn_usable(void)
{
    if (!gemm_onednn_init()) return 0;
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return ((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core) == (unsigned)dnnl_cpu_isa_avx512_core;
}

const char *gemm_onednn_impl(void) { return gx.last_impl[0] ? gx.last_impl : "none"; }

static void gemm_entry_free(gemm_entry *e)
{
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->a) dnnl_memory_destroy(e->a);
    if (e->b) dnnl_memory_destroy(e->b);
    if (e->c) dnnl_memory_destroy(e->c);
    memset(e, 0, sizeof *e);
}

/* A plain 2-D descriptor of a matrix used as rows x cols: stored as is
 * (row length ld) or, when t, stored transposed (cols x rows, row length ld). */
static int gemm_md(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, int t, int64_t ld, dnnl_data_type_t dt)
{
    dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {t ? 1 : ld, t ? ld : 1};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides) == dnnl_success ? 0 : -1;
}

/* Make the primitive for e's shape; e->ok says whether it may be used. */
static void gemm_entry_make(gemm_entry *e)
{
    dnnl_data_type_t in = e->p == GEMM_BF16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_matmul_desc_t mmd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    e->ok = 0;
    if (gemm_md(&amd, e->M, e->K, e->ta, e->lda, in) || gemm_md(&bmd, e->K, e->N, e->tb, e->ldb, in) ||
        gemm_md(&cmd, e->M, e->N, 0, e->ldc, dnnl_f32))
        return;
    if (dnnl_matmul_desc_init(&mmd, &amd, &bmd, NULL, &cmd) != dnnl_success) return;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return;
    int good = 1;
    if (e->alpha != 1.0f) good &= dnnl_primitive_attr_set_output_scales(attr, 1, 0, &e->alpha) == dnnl_success;
    if (e->beta != 0.0f) {
        good &= dnnl_post_ops_create(&po) == dnnl_success;
        good &= good && dnnl_post_ops_append_sum(po, e->beta) == dnnl_success;
        good &= good && dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    }
    if (good && dnnl_primitive_desc_create(&pd, &mmd, attr, gx.eng, NULL) == dnnl_success) {
        const char *impl = NULL;
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        snprintf(e->impl, sizeof e->impl, "%s", impl ? impl : "?");   /* impl lives in pd */
        /* oneDNN's reference code is orders of magnitude slower than sgemm */
        if (impl && !strstr(impl, "ref") && dnnl_primitive_create(&e->prim, pd) == dnnl_success &&
            dnnl_memory_create(&e->a, &amd, gx.eng, DNNL_MEMORY_NONE) == dnnl_success &&
            dnnl_memory_create(&e->b, &bmd, gx.eng, DNNL_MEMORY_NONE) == dnnl_success &&
            dnnl_memory_create(&e->c, &cmd, gx.eng, DNNL_MEMORY_NONE) == dnnl_success)
            e->ok = 1;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
}

static gemm_entry *gemm_entry_get(int ta, int tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                                  int64_t ldc, float alpha, float beta, gemm_precision p)
{
    gemm_entry *e, *oldest = &gx.cache[0];
    for (int i = 0; i < GEMM_CACHE; i++) {
        e = &gx.cache[i];
        if (e->used && e->ta == ta && e->tb == tb && e->M == M && e->N == N && e->K == K && e->lda == lda &&
            e->ldb == ldb && e->ldc == ldc && e->alpha == alpha && e->beta == beta && e->p == p) {
            e->stamp = ++gx.clock;
            return e;
        }
        if (!e->used || (oldest->used && e->stamp < oldest->stamp)) oldest = e;
    }
    e = oldest;
    gemm_entry_free(e);
    *e = (gemm_entry){.used = 1, .ta = ta, .tb = tb, .p = p, .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb,
                      .ldc = ldc, .alpha = alpha, .beta = beta, .stamp = ++gx.clock};
    gemm_entry_make(e);
    return e;
}

/* x stored rows x cols (row length ld) as compact bf16 into *buf, grown
 * (and *cap with it) when too small; NULL when memory runs out. */
static const uint16_t *gemm_bf16_into(uint16_t **buf, size_t *cap, const float *x, int64_t rows, int64_t cols,
                                      int64_t ld)
{
    size_t need = (size_t)(rows * cols);
    if (need > *cap) {
        free(*buf);
        *buf = ts_alloc_uninit(need * sizeof(uint16_t));     /* overwritten below */
        *cap = *buf ? need : 0;
        if (!*buf) return NULL;
    }
    if (ld == cols) gemm_to_bf16(x, *buf, rows * cols);
    else for (int64_t i = 0; i < rows; i++) gemm_to_bf16(x + i * ld, *buf + i * cols, cols);
    return *buf;
}

static void gemm_wsample(const float *x, int64_t rows, int64_t cols, int64_t ld, float *out)
{
    for (int k = 0; k < GEMM_WSAMPLES; k++) {
        int64_t i = (rows - 1) * k / (GEMM_WSAMPLES - 1);
        int64_t j = (cols - 1) * ((k * 5) % GEMM_WSAMPLES) / (GEMM_WSAMPLES - 1);
        out[k] = x[i * ld + j];
    }
}

/* The bf16 copy of versioned input x (stored rows x cols, row length ld)
 * from one of the n copies in pool: kept from an earlier call, or made now
 * in an unused slot, else the least recently used slot large enough for
 * it, else the least recently used one; never in the slot holding `busy`
 * (the other input of the same product). */
static const uint16_t *gemm_kept_bf16(gemm_wcopy *pool, int n, const uint16_t *busy, const float *x, int64_t rows,
                                      int64_t cols, int64_t ld, uint64_t version)
{
    float sample[GEMM_WSAMPLES];
    gemm_wsample(x, rows, cols, ld, sample);
    size_t need = (size_t)(rows * cols);
    gemm_wcopy *lru = NULL, *fit = NULL;
    for (int i = 0; i < n; i++) {
        gemm_wcopy *c = &pool[i];
        if (c->bf && c->src == x && c->rows == rows && c->cols == cols && c->ld == ld && c->version == version &&
            !memcmp(c->sample, sample, sizeof sample)) {
            c->stamp = ++gx.clock;
            return c->bf;
        }
        if (c->bf && c->bf == busy) continue;
        if (!lru || !c->bf || (lru->bf && c->stamp < lru->stamp)) lru = c;
        if (c->cap >= need && (!fit || c->stamp < fit->stamp)) fit = c;
    }
    if (lru && !lru->bf) fit = NULL;             /* an unused slot first */
    gemm_wcopy *slot = fit ? fit : lru;
    if (!slot) return NULL;
    if (!gemm_bf16_into(&slot->bf, &slot->cap, x, rows, cols, ld)) { slot->stamp = 0; slot->src = NULL; return NULL; }
    slot->src = x; slot->rows = rows; slot->cols = cols; slot->ld = ld; slot->version = version;
    memcpy(slot->sample, sample, sizeof sample);
    slot->stamp = ++gx.clock;
    return slot->bf;
}

/* Input `which` (0 A, 1 B) of a product as compact bf16: a kept copy when
 * it is versioned (weights: wb) and large enough to be worth keeping, else
 * a scratch copy made now. */
static const uint16_t *gemm_input_bf16(int which, const float *x, int64_t rows, int64_t cols, int64_t ld,
                                       uint64_t version, int wb, const uint16_t *busy)
{
    if ((wb || version) && rows * cols >= GEMM_WMIN)
        return wb ? gemm_kept_bf16(gx.w, GEMM_WCACHE, busy, x, rows, cols, ld, version)
                  : gemm_kept_bf16(gx.t, GEMM_TEMPS, busy, x, rows, cols, ld, version);
    return gemm_bf16_into(&gx.bf[which], &gx.bf_cap[which], x, rows, cols, ld);
}

int gemm_onednn_v(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  uint64_t va, const float *B, int64_t ldb, uint64_t vb, int wb, float beta, float *C, int64_t ldc,
                  gemm_precision p)
{
    if (M == 0 || N == 0) return 0;
    if (K == 0 || !gemm_onednn_init()) return -1;
    const void *a = A, *b = B;
    if (p == GEMM_BF16) {                        /* compact bf16 copies, as stored */
        int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
        const uint16_t *abf = gemm_input_bf16(0, A, ar, ac, lda, va, 0, NULL);
        if (!abf) return -1;
        if (!(b = gemm_input_bf16(1, B, br, bc, ldb, vb, wb, abf))) return -1;
        a = abf;
        lda = ac;
        ldb = bc;
    }
    gemm_entry *e = gemm_entry_get(ta, tb, M, N, K, lda, ldb, ldc, alpha, beta, p);
    memcpy(gx.last_impl, e->impl, sizeof gx.last_impl);
    if (!e->ok) return -1;
    if (dnnl_memory_set_data_handle(e->a, (void *)a) != dnnl_success ||
        dnnl_memory_set_data_handle(e->b, (void *)b) != dnnl_success ||
        dnnl_memory_set_data_handle(e->c, C) != dnnl_success)
        return -1;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
    if (dnnl_primitive_execute(e->prim, gx.st, 3, args) != dnnl_success) return -1;
    return dnnl_stream_wait(gx.st) == dnnl_success ? 0 : -1;
}

int gemm_onednn(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, float beta, float *C, int64_t ldc, gemm_precision p)
{
    return gemm_onednn_v(ta, tb, M, N, K, alpha, A, lda, 0, B, ldb, 0, 0, beta, C, ldc, p);
}

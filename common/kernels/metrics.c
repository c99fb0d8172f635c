/* metrics.c: top-K ranking and Recall / Precision / NDCG at K (see
 * metrics.h and ALGORITHM.md section 9).
 *
 * Users go in blocks: one product (gemm_run; OpenBLAS, as
 * evaluate never sets another engine) gives the block's scores [block x
 * items] (BLAS runs outside any OpenMP region of ours and uses every core
 * itself), then an OpenMP loop over the block's users masks the excluded
 * items (score -inf) and keeps the k best with a bounded heap whose root is
 * the worst item kept.  Items are scanned in index order and only a
 * strictly higher score displaces the root, so among equal scores the lower
 * index wins.  Per-user metrics are stored and summed in user order, so the
 * result does not depend on the number of threads. */
#include "kernels/metrics.h"
#include "kernels/dn.h"
#include "kernels/gemm.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of scores per block: about 8 MiB, 64 to 1024 users. */
#ifndef METRICS_BLOCK_BYTES
#define METRICS_BLOCK_BYTES (8u << 20)
#endif

__attribute__((format(printf, 3, 4))) static int metrics_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int64_t metrics_block_rows(int64_t items)
{
    int64_t rows = (int64_t)METRICS_BLOCK_BYTES / (4 * (items > 0 ? items : 1));
    return rows < 64 ? 64 : rows > 1024 ? 1024 : rows;
}

/* ---- checks ---------------------------------------------------------- */

/* The first non-finite value of a [rows x dim] matrix, as an error. */
static int metrics_check_finite(const float *a, int64_t rows, int64_t dim, const char *name, char *err,
                                size_t errlen)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < dim; c++) {
            float v = a[r * dim + c];
            if (!isfinite(v))
                return metrics_fail(err, errlen, "%s holds %s at row %lld, column %lld", name,
                                    isnan(v) ? "NaN" : "an infinity", (long long)r, (long long)c);
        }
    return 0;
}

/* The largest Euclidean norm of the rows of a [rows x dim] matrix. */
static double metrics_max_norm(const float *a, int64_t rows, int64_t dim)
{
    double best = 0;
    for (int64_t r = 0; r < rows; r++) {
        double ss = 0;
        for (int64_t c = 0; c < dim; c++) ss += (double)a[r * dim + c] * a[r * dim + c];
        if (ss > best) best = ss;
    }
    return sqrt(best);
}

int metrics_check(const metrics_scorer *s, const char *user_name, const char *item_name, const char *exclude_name,
                  char *err, size_t errlen)
{
    if (s->users < 0 || s->items < 0 || s->users > INT32_MAX || s->items > INT32_MAX)
        return metrics_fail(err, errlen, "%lld users x %lld items: each must be below 2^31", (long long)s->users,
                            (long long)s->items);
    if (s->dim < 1 || s->dim > INT_MAX)
        return metrics_fail(err, errlen, "embeddings %lld wide: need 1 to 2^31-1 columns", (long long)s->dim);
    if (metrics_check_finite(s->user, s->users, s->dim, user_name, err, errlen) < 0) return -1;
    if (metrics_check_finite(s->item, s->items, s->dim, item_name, err, errlen) < 0) return -1;
    /* Cauchy-Schwarz bounds every score and every partial sum of one */
    double bound = metrics_max_norm(s->user, s->users, s->dim) * metrics_max_norm(s->item, s->items, s->dim);
    if (bound > 0.5 * FLT_MAX)
        return metrics_fail(err, errlen, "scores could overflow float32: the largest %s row norm times the largest "
                            "%s row norm is %g", user_name, item_name, bound);
    const ts_csr *x = s->exclude;
    if (x && (x->rows != s->users || x->cols != s->items))
        return metrics_fail(err, errlen, "%s is %lld x %lld but the embeddings give %lld users x %lld items",
                            exclude_name, (long long)x->rows, (long long)x->cols, (long long)s->users,
                            (long long)s->items);
    return 0;
}

/* A dense 2-D float32 matrix record of bag (widened to float32 in place). */
static int metrics_matrix(ts_bag *bag, const char *name, const float **a, int64_t *rows, int64_t *cols, char *err,
                          size_t errlen)
{
    ts_record *r = ts_bag_get(bag, name);
    if (!r) return metrics_fail(err, errlen, "missing input: no record '%s' in the inputs", name);
    if (r->kind != TS_DENSE || r->ndim != 2)
        return metrics_fail(err, errlen, "%s must be a dense matrix (rows x width), not %s", name,
                            r->kind == TS_CSR ? "a csr matrix" : r->kind == TS_DENSE ? "a tensor of another rank"
                                                                                      : "a metadata record");
    if (r->dtype != DT_F32 && r->dtype != DT_F16 && r->dtype != DT_F64)
        return metrics_fail(err, errlen, "%s is %s, not a float tensor", name, dt_name(r->dtype));
    if (r->dtype != DT_F32 && ts_record_to_f32(r) < 0)
        return metrics_fail(err, errlen, "out of memory widening %s to float32", name);
    *a = r->data;
    *rows = r->shape[0];
    *cols = r->shape[1];
    return 0;
}

/* A csr record of bag. */
static int metrics_csr(const ts_bag *bag, const char *name, const ts_csr **m, char *err, size_t errlen)
{
    ts_record *r = ts_bag_get(bag, name);
    if (!r) return metrics_fail(err, errlen, "missing input: no record '%s' in the inputs", name);
    if (r->kind != TS_CSR) return metrics_fail(err, errlen, "%s must be a csr matrix (users x items)", name);
    *m = &r->csr;
    return 0;
}

int metrics_load(ts_bag *bag, const char *user, const char *item, const char *exclude, metrics_scorer *s,
                 char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    int64_t udim = 0, idim = 0;
    if (metrics_matrix(bag, user, &s->user, &s->users, &udim, err, errlen) < 0) return -1;
    if (metrics_matrix(bag, item, &s->item, &s->items, &idim, err, errlen) < 0) return -1;
    if (udim != idim)
        return metrics_fail(err, errlen, "%s is %lld wide but %s is %lld wide", user, (long long)udim, item,
                            (long long)idim);
    s->dim = udim;
    if (exclude && metrics_csr(bag, exclude, &s->exclude, err, errlen) < 0) return -1;
    const ts_csr *x = s->exclude;
    if (x && x->rows != s->users)
        return metrics_fail(err, errlen, "%s has %lld rows (users) but %s has %lld", exclude, (long long)x->rows,
                            user, (long long)s->users);
    if (x && x->cols != s->items)
        return metrics_fail(err, errlen, "%s has %lld columns (items) but %s has %lld rows", exclude,
                            (long long)x->cols, item, (long long)s->items);
    return metrics_check(s, user, item, exclude, err, errlen);
}

int metrics_held(const ts_bag *bag, const char *name, const metrics_scorer *s, const ts_csr **held, char *err,
                 size_t errlen)
{
    if (metrics_csr(bag, name, held, err, errlen) < 0) return -1;
    if ((*held)->rows != s->users || (*held)->cols != s->items)
        return metrics_fail(err, errlen, "%s is %lld x %lld but the embeddings give %lld users x %lld items", name,
                            (long long)(*held)->rows, (long long)(*held)->cols, (long long)s->users,
                            (long long)s->items);
    return 0;
}

/* Set the excluded items of user u in row [items] to -inf. */
static void metrics_mask(const ts_csr *x, int64_t u, float *row)
{
    if (!x) return;
    for (int64_t p = x->indptr[u]; p < x->indptr[u + 1]; p++) row[x->indices[p]] = -INFINITY;
}

/* ---- blocks ------------------------------------------------------------ */

/* Scratch for one block of users. */
typedef struct {
    int64_t rows;    /* users per block */
    float *ubuf;     /* [rows x dim] gathered user embeddings */
    float *sbuf;     /* [rows x items] scores */
} metrics_ws;

static int metrics_ws_init(metrics_ws *w, const metrics_scorer *s, int64_t n)
{
    w->rows = metrics_block_rows(s->items);
    if (w->rows > n) w->rows = n > 0 ? n : 1;
    w->ubuf = ts_alloc((size_t)w->rows * (size_t)s->dim * sizeof(float));
    w->sbuf = ts_alloc((size_t)w->rows * (size_t)(s->items > 0 ? s->items : 1) * sizeof(float));
    return w->ubuf && w->sbuf ? 0 : -1;
}

static void metrics_ws_free(metrics_ws *w)
{
    free(w->ubuf);
    free(w->sbuf);
}

/* Scores of n users (uids[n], or users first.. when uids is NULL) into
 * w->sbuf [n x items]: one sgemm. */
static void metrics_score(const metrics_scorer *s, const int32_t *uids, int64_t first, int64_t n, metrics_ws *w)
{
    const float *u = w->ubuf;   /* [n x dim] */
    if (uids)
        for (int64_t b = 0; b < n; b++)
            memcpy(w->ubuf + b * s->dim, s->user + (int64_t)uids[b] * s->dim, (size_t)s->dim * sizeof(float));
    else
        u = s->user + first * s->dim;
    if (n == 0 || s->items == 0) return;
    gemm_run(0, 1, n, s->items, s->dim, 1.0f, u, s->dim, s->item, s->dim, 0.0f, w->sbuf, s->items);
}

/* Mask and select the k best for user u from its row of scores [items]. */
static inline void metrics_rank_row(const metrics_scorer *s, int64_t u, float *row, int k, int32_t *top_i,
                                    float *top_s)
{
    metrics_mask(s->exclude, u, row);
    dn_topk(row, s->items, k, top_s, top_i);
}

/* Rank the n users just scored: top_i / top_s [n x k], row b for user
 * uids[b] (or first + b). */
static void metrics_rank_block(const metrics_scorer *s, const int32_t *uids, int64_t first, int64_t n, int k,
                               metrics_ws *w, int32_t *top_i, float *top_s)
{
#pragma omp parallel for schedule(dynamic, 8)
    for (int64_t b = 0; b < n; b++)
        metrics_rank_row(s, uids ? uids[b] : first + b, w->sbuf + b * s->items, k, top_i + b * k, top_s + b * k);
}

/* ---- top-K ------------------------------------------------------------- */

int metrics_topk(const metrics_scorer *s, const int32_t *uids, int64_t n, int k, int32_t *items, float *scores,
                 char *err, size_t errlen)
{
    if (k < 1) return metrics_fail(err, errlen, "k must be at least 1, not %d", k);
    for (int64_t b = 0; uids && b < n; b++)
        if (uids[b] < 0 || uids[b] >= s->users)
            return metrics_fail(err, errlen, "user id %d out of range: there are %lld users (0 to %lld)", uids[b],
                                (long long)s->users, (long long)s->users - 1);
    metrics_ws w;
    if (metrics_ws_init(&w, s, n) < 0) {
        metrics_ws_free(&w);
        return metrics_fail(err, errlen, "out of memory for a block of scores");
    }
    for (int64_t first = 0; first < n; first += w.rows) {
        int64_t m = n - first < w.rows ? n - first : w.rows;
        const int32_t *ids = uids ? uids + first : NULL;
        metrics_score(s, ids, first, m, &w);
        metrics_rank_block(s, ids, first, m, k, &w, items + first * k, scores + first * k);
    }
    metrics_ws_free(&w);
    return 0;
}

/* ---- metrics ----------------------------------------------------------- */

static int metrics_cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Sorted distinct K values into out->k; -1 with err when one is bad. */
static int metrics_set_ks(metrics_result *out, const int *ks, int nk, char *err, size_t errlen)
{
    if (nk < 1 || nk > METRICS_MAXK)
        return metrics_fail(err, errlen, "need 1 to %d K values, not %d", METRICS_MAXK, nk);
    int tmp[METRICS_MAXK];
    for (int i = 0; i < nk; i++) {
        if (ks[i] < 1) return metrics_fail(err, errlen, "K must be at least 1, not %d", ks[i]);
        tmp[i] = ks[i];
    }
    qsort(tmp, (size_t)nk, sizeof *tmp, metrics_cmp_int);
    out->nk = 0;
    for (int i = 0; i < nk; i++)
        if (i == 0 || tmp[i] != tmp[i - 1]) out->k[out->nk++] = tmp[i];
    return 0;
}

/* The users with at least one held-out item: ids [*n], malloc'd. */
static int32_t *metrics_held_users(const ts_csr *held, int64_t *n)
{
    int32_t *ids = malloc((size_t)(held->rows > 0 ? held->rows : 1) * sizeof *ids);
    if (!ids) return NULL;
    *n = 0;
    for (int64_t u = 0; u < held->rows; u++)
        if (held->indptr[u + 1] > held->indptr[u]) ids[(*n)++] = (int32_t)u;
    return ids;
}

/* Recall, Precision and NDCG of one user at every K into m [nk x 3], from
 * its list top [kk] (best first, -1 padded).  mark [items] is zero on entry
 * and on return; idcg [kk + 1] holds sums of 1/log2(r + 2) for r < n. */
static void metrics_user(const ts_csr *held, int64_t u, const int32_t *top, int kk, const metrics_result *res,
                         const double *idcg, uint8_t *mark, double *m)
{
    int64_t h = 0;   /* distinct held-out items */
    for (int64_t p = held->indptr[u]; p < held->indptr[u + 1]; p++)
        if (!mark[held->indices[p]]) {
            mark[held->indices[p]] = 1;
            h++;
        }
    int hits = 0, ki = 0;
    double dcg = 0;
    for (int r = 0; r <= kk && ki < res->nk; r++) {
        /* K values that end before rank r, or every K left once ranks run out */
        while (ki < res->nk && (res->k[ki] == r || r == kk)) {
            int64_t ideal = h < res->k[ki] ? h : res->k[ki];   /* <= kk */
            m[3 * ki + 0] = (double)hits / (double)h;
            m[3 * ki + 1] = (double)hits / (double)res->k[ki];
            m[3 * ki + 2] = dcg / idcg[ideal];
            ki++;
        }
        if (r < kk && top[r] >= 0 && mark[top[r]]) {
            hits++;
            dcg += 1.0 / log2((double)r + 2.0);
        }
    }
    for (int64_t p = held->indptr[u]; p < held->indptr[u + 1]; p++) mark[held->indices[p]] = 0;
}

/* Everything one evaluation allocates. */
typedef struct {
    metrics_ws w;
    int32_t *uids;      /* [n] users with held-out items */
    int32_t *top_i;     /* [rows x kk] */
    float *top_s;       /* [rows x kk] */
    double *per;        /* [rows x nk x 3] per-user metrics */
    double *idcg;       /* [kk + 1] */
    uint8_t *mark;      /* [threads x items] */
} metrics_eval_mem;

static void metrics_eval_free(metrics_eval_mem *e)
{
    metrics_ws_free(&e->w);
    free(e->uids);
    free(e->top_i);
    free(e->top_s);
    free(e->per);
    free(e->idcg);
    free(e->mark);
}

static int metrics_eval_alloc(metrics_eval_mem *e, const metrics_scorer *s, const ts_csr *held, int kk, int nk,
                              int64_t *n)
{
    memset(e, 0, sizeof *e);
    e->uids = metrics_held_users(held, n);
    if (!e->uids || metrics_ws_init(&e->w, s, *n) < 0) return -1;
    size_t rows = (size_t)e->w.rows;
    e->top_i = malloc(rows * (size_t)kk * sizeof *e->top_i);
    e->top_s = malloc(rows * (size_t)kk * sizeof *e->top_s);
    e->per = malloc(rows * (size_t)nk * 3 * sizeof *e->per);
    e->idcg = malloc(((size_t)kk + 1) * sizeof *e->idcg);
    e->mark = calloc((size_t)omp_get_max_threads() * (size_t)(s->items > 0 ? s->items : 1), 1);
    if (!e->top_i || !e->top_s || !e->per || !e->idcg || !e->mark) return -1;
    e->idcg[0] = 1.0;   /* never used: a counted user has h >= 1 and K >= 1 */
    double sum = 0;
    for (int r = 0; r < kk; r++) e->idcg[r + 1] = sum += 1.0 / log2((double)r + 2.0);
    return 0;
}

int metrics_evaluate(const metrics_scorer *s, const ts_csr *held, const int *ks, int nk, metrics_result *out,
                     char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (metrics_set_ks(out, ks, nk, err, errlen) < 0) return -1;
    if (held->rows != s->users || held->cols != s->items)
        return metrics_fail(err, errlen, "held-out matrix is %lld x %lld but the embeddings give %lld users x %lld "
                            "items", (long long)held->rows, (long long)held->cols, (long long)s->users,
                            (long long)s->items);
    int kmax = out->k[out->nk - 1];
    int kk = s->items < kmax ? (int)s->items : kmax;   /* list length */
    if (kk < 1) kk = 1;
    metrics_eval_mem e;
    int64_t n;
    if (metrics_eval_alloc(&e, s, held, kk, out->nk, &n) < 0) {
        metrics_eval_free(&e);
        return metrics_fail(err, errlen, "out of memory for a block of scores");
    }
    double sums[METRICS_MAXK][3] = {{0}};
    for (int64_t first = 0; first < n; first += e.w.rows) {
        int64_t m = n - first < e.w.rows ? n - first : e.w.rows;
        double t0 = omp_get_wtime();
        metrics_score(s, e.uids + first, first, m, &e.w);
        double t1 = omp_get_wtime();
#pragma omp parallel for schedule(dynamic, 8)
        for (int64_t b = 0; b < m; b++) {
            int64_t u = e.uids[first + b];
            metrics_rank_row(s, u, e.w.sbuf + b * s->items, kk, e.top_i + b * kk, e.top_s + b * kk);
            metrics_user(held, u, e.top_i + b * kk, kk, out, e.idcg,
                         e.mark + (size_t)omp_get_thread_num() * (size_t)s->items, e.per + b * out->nk * 3);
        }
        for (int64_t b = 0; b < m; b++)   /* in user order: the same sums for any thread count */
            for (int ki = 0; ki < out->nk; ki++)
                for (int j = 0; j < 3; j++) sums[ki][j] += e.per[(b * out->nk + ki) * 3 + j];
        out->sgemm_seconds += t1 - t0;
        out->select_seconds += omp_get_wtime() - t1;
    }
    out->users = n;
    for (int ki = 0; ki < out->nk && n > 0; ki++) {
        out->recall[ki] = sums[ki][0] / (double)n;
        out->precision[ki] = sums[ki][1] / (double)n;
        out->ndcg[ki] = sums[ki][2] / (double)n;
    }
    metrics_eval_free(&e);
    return 0;
}

/* graph.c: the normalised user-item graph (ALGORITHM.md section 2) and the
 * release's edge dropout; see graph.h. */
#include "kernels/graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/sp.h"

/* 1 if every row of m has strictly increasing columns (sorted, no repeats). */
static int graph_is_canonical(const ts_csr *m)
{
    for (int64_t r = 0; r < m->rows; r++)
        for (int64_t k = m->indptr[r] + 1; k < m->indptr[r + 1]; k++)
            if (m->indices[k] <= m->indices[k - 1]) return 0;
    return 1;
}

/* Number of distinct values in a sorted run c[0..n). */
static int64_t graph_distinct(const int32_t *c, int64_t n)
{
    int64_t k = n > 0;
    for (int64_t j = 1; j < n; j++) k += c[j] != c[j - 1];
    return k;
}

/* indptr of the graph: row lengths are 1 (self loop) plus the distinct
 * neighbours, users from R's rows, items from Rt's rows.
 *   R   U x I sorted, Rt  I x U sorted;  ptr [U+I+1] */
static void graph_row_pointers(const ts_csr *R, const ts_csr *Rt, int64_t *ptr)
{
    const int64_t U = R->rows, I = R->cols;
    ptr[0] = 0;
    for (int64_t u = 0; u < U; u++)
        ptr[u + 1] = 1 + graph_distinct(R->indices + R->indptr[u], R->indptr[u + 1] - R->indptr[u]);
    for (int64_t i = 0; i < I; i++)
        ptr[U + i + 1] = 1 + graph_distinct(Rt->indices + Rt->indptr[i], Rt->indptr[i + 1] - Rt->indptr[i]);
    for (int64_t r = 0; r < U + I; r++) ptr[r + 1] += ptr[r];
}

/* Append the distinct columns of a sorted run c[0..n), shifted by off, to
 * ix starting at at; returns the new end. */
static int64_t graph_put_run(const int32_t *c, int64_t n, int64_t off, int32_t *ix, int64_t at)
{
    for (int64_t j = 0; j < n; j++)
        if (j == 0 || c[j] != c[j - 1]) ix[at++] = (int32_t)(c[j] + off);
    return at;
}

/* Columns of the graph, sorted per row: a user row is its self loop then
 * its items (shifted by U); an item row its users then its self loop.
 *   ptr [U+I+1], ix [nnz] */
static void graph_fill_columns(const ts_csr *R, const ts_csr *Rt, const int64_t *ptr, int32_t *ix)
{
    const int64_t U = R->rows, I = R->cols;
    for (int64_t u = 0; u < U; u++) {
        int64_t at = ptr[u];
        ix[at++] = (int32_t)u;
        graph_put_run(R->indices + R->indptr[u], R->indptr[u + 1] - R->indptr[u], U, ix, at);
    }
    for (int64_t i = 0; i < I; i++) {
        int64_t at = graph_put_run(Rt->indices + Rt->indptr[i], Rt->indptr[i + 1] - Rt->indptr[i], 0, ix, ptr[U + i]);
        ix[at] = (int32_t)(U + i);
    }
}

/* D^-1/2 A D^-1/2 on a binary structure: degree = row length; value
 * (float)(d[r] * d[c]) with d = pow(degree, -0.5), 0 for degree 0.
 *   ptr [n+1], ix [nnz], val [nnz] out */
static int graph_normalise(int64_t n, const int64_t *ptr, const int32_t *ix, float *val)
{
    double *dinv = malloc((size_t)(n ? n : 1) * sizeof *dinv);   /* [n] */
    if (!dinv) return -1;
    for (int64_t r = 0; r < n; r++) {
        int64_t deg = ptr[r + 1] - ptr[r];
        dinv[r] = deg > 0 ? pow((double)deg, -0.5) : 0.0;
    }
    for (int64_t r = 0; r < n; r++)
        for (int64_t k = ptr[r]; k < ptr[r + 1]; k++) val[k] = (float)(dinv[r] * dinv[ix[k]]);
    free(dinv);
    return 0;
}

/* The graph from R and Rt, both with sorted (possibly repeated) columns. */
static int graph_assemble(const ts_csr *R, const ts_csr *Rt, ts_csr *out)
{
    const int64_t n = R->rows + R->cols;
    int64_t *ptr = malloc((size_t)(n + 1) * sizeof *ptr);   /* [n+1] */
    if (!ptr) return -1;
    graph_row_pointers(R, Rt, ptr);
    int64_t nnz = ptr[n];
    int32_t *ix = malloc((size_t)(nnz ? nnz : 1) * sizeof *ix);   /* [nnz] */
    float *val = malloc((size_t)(nnz ? nnz : 1) * sizeof *val);   /* [nnz] */
    if (!ix || !val) goto oom;
    graph_fill_columns(R, Rt, ptr, ix);
    if (graph_normalise(n, ptr, ix, val) < 0) goto oom;
    *out = (ts_csr){.rows = n, .cols = n, .nnz = nnz, .indptr = ptr, .indices = ix, .values = val};
    return 0;
oom:
    free(ptr); free(ix); free(val);
    return -1;
}

int graph_from_interactions(const ts_csr *R, ts_csr *out)
{
    memset(out, 0, sizeof *out);
    if (R->rows < 0 || R->cols < 0 || R->rows + R->cols > INT32_MAX) return -1;
    ts_csr Rt, Rs = {0};   /* Rt: I x U; Rs: R sorted, when R is not */
    if (sp_transpose(R, &Rt) < 0) return -1;
    const ts_csr *S = R;
    if (!graph_is_canonical(R)) {
        if (sp_transpose(&Rt, &Rs) < 0) { ts_csr_free(&Rt); return -1; }
        S = &Rs;
    }
    int st = graph_assemble(S, &Rt, out);
    ts_csr_free(&Rt);
    ts_csr_free(&Rs);
    return st;
}

int graph_normalized(int64_t users, int64_t items, int64_t n, const int32_t *u, const int32_t *i, ts_csr *out)
{
    memset(out, 0, sizeof *out);
    if (users < 0 || items < 0 || n < 0 || users + items > INT32_MAX) return -1;
    for (int64_t k = 0; k < n; k++)
        if (u[k] < 0 || u[k] >= users || i[k] < 0 || i[k] >= items) return -1;
    /* the edge list as an items x users csr, rows bucketed by item; its
     * transpose is R with sorted columns */
    ts_csr E = {.rows = items, .cols = users, .nnz = n};
    E.indptr = calloc((size_t)items + 1, sizeof *E.indptr);            /* [items+1] */
    E.indices = malloc((size_t)(n ? n : 1) * sizeof *E.indices);      /* [n] users */
    E.values = malloc((size_t)(n ? n : 1) * sizeof *E.values);        /* [n] ones */
    int64_t *fill = malloc((size_t)(items ? items : 1) * sizeof *fill); /* [items] */
    int st = -1;
    ts_csr R = {0};
    if (!E.indptr || !E.indices || !E.values || !fill) goto done;
    for (int64_t k = 0; k < n; k++) E.indptr[i[k] + 1]++;
    for (int64_t c = 0; c < items; c++) E.indptr[c + 1] += E.indptr[c];
    memcpy(fill, E.indptr, (size_t)items * sizeof *fill);
    for (int64_t k = 0; k < n; k++) {
        int64_t at = fill[i[k]]++;
        E.indices[at] = u[k];
        E.values[at] = 1.0f;
    }
    if (sp_transpose(&E, &R) == 0) st = graph_from_interactions(&R, out);
done:
    free(fill);
    ts_csr_free(&E);
    ts_csr_free(&R);
    return st;
}

void graph_dropout(ts_csr *G, double keep, rng_t *rng)
{
    if (keep >= 1) return;
    int64_t w = 0;
    for (int64_t r = 0; r < G->rows; r++) {
        const int64_t a = G->indptr[r], b = G->indptr[r + 1];
        G->indptr[r] = w;
        for (int64_t k = a; k < b; k++)
            if (rng_uniform(rng) < keep) {
                G->indices[w] = G->indices[k];
                G->values[w] = (float)(G->values[k] / keep);
                w++;
            }
    }
    G->indptr[G->rows] = w;
    G->nnz = w;
}

int graph_regenerated(int64_t users, int64_t items, int k, const int32_t *top, double keep, uint64_t seed,
                      int64_t epoch, int modality, ts_csr *out)
{
    int64_t n = users * k;
    int32_t *u = malloc((size_t)(n > 0 ? n : 1) * sizeof *u);   /* [users x k] each edge's user */
    if (!u) return -1;
    for (int64_t e = 0; e < n; e++) u[e] = (int32_t)(e / k);
    int rc = graph_normalized(users, items, n, u, top, out);
    free(u);
    if (rc < 0) return -1;
    rng_t rng;
    rng_seed(&rng, seed, rng_stream(RNG_EDGE_DROP, epoch, modality, 0));
    graph_dropout(out, keep, &rng);
    return 0;
}

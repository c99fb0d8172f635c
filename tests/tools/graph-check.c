/* graph-check: runs the sparse kernels and the graph recipe on tensors that
 * a test wrote, so tests/tools/graph_check.py can compare them with numpy;
 * and times sp_spmm on a real graph.
 *
 *   graph-check spmm IN OUT ALPHA BETA   IN: csr A, dense x (cols x d), y
 *                                        (rows x d); OUT: y = alpha A x + beta y,
 *                                        or + beta c when IN has a dense c
 *                                        (rows x d): sp_spmm_add
 *   graph-check transpose IN OUT         IN: csr A; OUT: csr At
 *   graph-check normalized IN OUT U I    IN: dense <i4 u, i (edges); OUT: csr G
 *   graph-check interactions IN OUT      IN: csr R; OUT: csr G
 *   graph-check dropout IN OUT KEEP SEED IN: csr G; OUT: G after graph_dropout
 *                                        with rng (SEED, RNG_TEST)
 *   graph-check bench IN [NAME] [D] [REPS]  median time of sp_spmm of the csr
 *                                        NAME (graph/ui) with D (64) columns
 * Exit 0, 1 when the library refuses (message on stderr), 2 on misuse. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels/graph.h"
#include "kernels/rng.h"
#include "kernels/sp.h"
#include "io/ts.h"

static void die(const char *what)
{
    fprintf(stderr, "graph-check: %s\n", what);
    exit(1);
}

static void bag_load(ts_bag *bag, const char *path)
{
    char err[600];
    if (ts_bag_read(bag, path, err, sizeof err) < 0) die(err);
}

static ts_record *need(ts_bag *bag, const char *name, ts_kind kind)
{
    ts_record *r = ts_bag_get(bag, name);
    if (!r || r->kind != kind) {
        fprintf(stderr, "graph-check: no %s record '%s'\n", kind == TS_CSR ? "csr" : "dense", name);
        exit(2);
    }
    if (kind == TS_DENSE && r->dtype != DT_F32 && r->dtype != DT_I32) die("dense inputs must be <f4 or <i4");
    return r;
}

/* Write one record to path (raw msgpack, framed). */
static void save(const char *path, const ts_record *r)
{
    char err[600];
    ts_writer *w = ts_writer_open(path, 0, "graph-check");
    if (!w || ts_write(w, r) < 0 || ts_writer_close(w, err, sizeof err) < 0) die("cannot write output");
}

static void save_csr(const char *path, const char *name, ts_csr *m)
{
    ts_record *r = ts_csr_new(name, m);
    if (!r) die("out of memory");
    save(path, r);
    ts_record_free(r);
}

static int run_spmm(char **a)
{
    ts_bag bag = {0};
    bag_load(&bag, a[0]);
    ts_record *A = need(&bag, "A", TS_CSR), *x = need(&bag, "x", TS_DENSE), *y = need(&bag, "y", TS_DENSE);
    int64_t d = x->shape[1];
    if (x->ndim != 2 || y->ndim != 2 || x->shape[0] != A->csr.cols || y->shape[0] != A->csr.rows || y->shape[1] != d)
        die("shapes of A, x, y do not agree");
    ts_record *c = ts_bag_get(&bag, "c");
    if (c && (c->kind != TS_DENSE || c->dtype != DT_F32 || c->ndim != 2 || c->shape[0] != y->shape[0] ||
              c->shape[1] != d))
        die("c must be dense <f4 of y's shape");
    if (c) sp_spmm_add(&A->csr, x->data, d, (float)atof(a[2]), (float)atof(a[3]), c->data, y->data);
    else sp_spmm(&A->csr, x->data, d, (float)atof(a[2]), (float)atof(a[3]), y->data);
    save(a[1], y);
    ts_bag_free(&bag);
    return 0;
}

static int run_transpose(char **a)
{
    ts_bag bag = {0};
    bag_load(&bag, a[0]);
    ts_csr At;
    if (sp_transpose(&need(&bag, "A", TS_CSR)->csr, &At) < 0) die("sp_transpose failed");
    save_csr(a[1], "At", &At);
    ts_bag_free(&bag);
    return 0;
}

static int run_normalized(char **a)
{
    ts_bag bag = {0};
    bag_load(&bag, a[0]);
    ts_record *u = need(&bag, "u", TS_DENSE), *i = need(&bag, "i", TS_DENSE);
    if (u->dtype != DT_I32 || i->dtype != DT_I32 || ts_numel(u) != ts_numel(i)) die("u and i must be <i4 of one length");
    ts_csr G;
    if (graph_normalized(atoll(a[2]), atoll(a[3]), ts_numel(u), u->data, i->data, &G) < 0)
        die("graph_normalized refused the edge list");
    save_csr(a[1], "G", &G);
    ts_bag_free(&bag);
    return 0;
}

static int run_interactions(char **a)
{
    ts_bag bag = {0};
    bag_load(&bag, a[0]);
    ts_csr G;
    if (graph_from_interactions(&need(&bag, "R", TS_CSR)->csr, &G) < 0) die("graph_from_interactions failed");
    save_csr(a[1], "G", &G);
    ts_bag_free(&bag);
    return 0;
}

static int run_dropout(char **a)
{
    ts_bag bag = {0};
    bag_load(&bag, a[0]);
    ts_record *G = need(&bag, "G", TS_CSR);
    rng_t rng;
    rng_seed(&rng, strtoull(a[3], NULL, 10), RNG_TEST);
    graph_dropout(&G->csr, atof(a[2]), &rng);
    save(a[1], G);
    ts_bag_free(&bag);
    return 0;
}

static int cmp_double(const void *p, const void *q)
{
    double x = *(const double *)p, y = *(const double *)q;
    return (x > y) - (x < y);
}

static int run_bench(int argc, char **a)
{
    const char *name = argc > 1 ? a[1] : "graph/ui";
    int64_t d = argc > 2 ? atoll(a[2]) : 64;
    int reps = argc > 3 ? atoi(a[3]) : 21;
    if (d < 1 || reps < 1 || reps > 10000) return 2;
    ts_bag bag = {0};
    bag_load(&bag, a[0]);
    const ts_csr *G = &need(&bag, name, TS_CSR)->csr;
    float *x = ts_alloc((size_t)(G->cols * d) * sizeof *x);   /* [cols x d] */
    float *y = ts_alloc((size_t)(G->rows * d) * sizeof *y);   /* [rows x d] */
    double *t = malloc((size_t)reps * sizeof *t);
    if (!x || !y || !t) die("out of memory");
    rng_t rng;
    rng_seed(&rng, 1, RNG_TEST);
    for (int64_t k = 0; k < G->cols * d; k++) x[k] = (float)rng_normal(&rng);
    sp_spmm(G, x, d, 1.0f, 0.0f, y);   /* warm-up */
    for (int k = 0; k < reps; k++) {
        double t0 = cli_seconds();
        sp_spmm(G, x, d, 1.0f, 0.0f, y);
        t[k] = cli_seconds() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    printf("sp_spmm %lldx%lld nnz %lld d %lld threads %d: median %.3f ms (min %.3f, max %.3f) of %d\n",
           (long long)G->rows, (long long)G->cols, (long long)G->nnz, (long long)d, omp_get_max_threads(),
           1e3 * t[reps / 2], 1e3 * t[0], 1e3 * t[reps - 1], reps);
    free(x); free(y); free(t);
    ts_bag_free(&bag);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    char **a = argv + 2;
    int n = argc - 2;
    if (!strcmp(cmd, "spmm") && n == 4) return run_spmm(a);
    if (!strcmp(cmd, "transpose") && n == 2) return run_transpose(a);
    if (!strcmp(cmd, "normalized") && n == 4) return run_normalized(a);
    if (!strcmp(cmd, "interactions") && n == 2) return run_interactions(a);
    if (!strcmp(cmd, "dropout") && n == 4) return run_dropout(a);
    if (!strcmp(cmd, "bench") && n >= 1 && n <= 4) return run_bench(n, a);
    fprintf(stderr, "usage: graph-check spmm|transpose|normalized|interactions|dropout|bench ... (see the source)\n");
    return 2;
}

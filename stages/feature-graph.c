/* feature-graph: the modality graphs without diffusion, a stand-in for
 * `diffuse | augment` that tests what the diffusion adds (issue 13's
 * similarity-graph variant).
 *
 * For every modality m and user u, the mean feature vector of u's training
 * items is scored against every item by cosine similarity,
 *
 *     s(u, i) = <mean_{j in R_u} f_j, f_i> / (|mean| |f_i|)   (0 for a zero vector),
 *
 * and the top --rebuild-k items (training items not masked, ties to the
 * lower id: augment's selection) become edges; the graph recipe and the
 * epoch's edge dropout are augment's (graph_regenerated), so train reads
 * the same kind of `graph/<m>` records. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels/dn.h"
#include "kernels/gemm.h"
#include "kernels/graph.h"
#include "kernels/sp.h"

typedef struct {
    int rebuild_k, batch, seed, epoch;
    double keep_rate;
} options;

/* Every user's k most similar items: top [U x k]. */
static void similar_items(const options *o, const ts_csr *R, const ts_record *feat, int32_t *top)
{
    int64_t U = R->rows, I = R->cols, D = feat->shape[1], B = o->batch;
    int k = o->rebuild_k;
    const float *F = feat->data;                                   /* [I x D] */
    float *Fn = ts_alloc_uninit((size_t)(I * D) * 4);              /* [I x D] rows of unit length (or zero) */
    float *M = ts_alloc_uninit((size_t)(U * D) * 4);               /* [U x D] users' mean training-item features */
    float *S = ts_alloc_uninit((size_t)(B * I) * 4);               /* [B x I] one batch's scores */
    float *score = malloc((size_t)(B * k) * 4);                    /* [B x k] */
    if (!Fn || !M || !S || !score) cli_die("out of memory");
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < I; i++) {
        double n2 = 0;
        for (int64_t d = 0; d < D; d++) n2 += (double)F[i * D + d] * F[i * D + d];
        float inv = n2 > 0 ? (float)(1 / sqrt(n2)) : 0.0f;
        for (int64_t d = 0; d < D; d++) Fn[i * D + d] = F[i * D + d] * inv;
    }
    sp_spmm(R, F, D, 1.0f, 0.0f, M);                               /* sums over the training items */
#pragma omp parallel for schedule(static)
    for (int64_t u = 0; u < U; u++) {
        int64_t n = R->indptr[u + 1] - R->indptr[u];
        double n2 = 0;
        for (int64_t d = 0; d < D; d++) n2 += (double)M[u * D + d] * M[u * D + d];
        float inv = n > 0 && n2 > 0 ? (float)(1 / sqrt(n2)) : 0.0f;   /* the mean's direction: the sum's */
        for (int64_t d = 0; d < D; d++) M[u * D + d] *= inv;
    }
    for (int64_t u0 = 0; u0 < U; u0 += B) {
        int64_t b = U - u0 < B ? U - u0 : B;
        cli_progress(u0, U, "%s, user", feat->name);
        gemm_run(0, 1, b, I, D, 1.0f, M + u0 * D, D, Fn, D, 0.0f, S, I);   /* S = M_b Fn^T */
        int64_t short_row = -1;
#pragma omp parallel for schedule(static) reduction(max : short_row)
        for (int64_t q = 0; q < b; q++)
            if (dn_topk(S + q * I, I, k, score + q * k, top + (u0 + q) * k) < k) short_row = u0 + q;
        if (short_row >= 0) cli_die("%s: user %lld: fewer than %d finite similarities", feat->name, (long long)short_row, k);
    }
    cli_progress_end();
    free(Fn); free(M); free(S); free(score);
}

int main(int argc, char **argv)
{
    options o = {.rebuild_k = 1, .batch = 1024, .seed = 421, .epoch = 0, .keep_rate = 0.5};
    cli_opt opts[] = {
        {"rebuild-k", 0, CLI_INT, &o.rebuild_k, "K", "edges per user: the K most similar items"},
        {"keep-rate", 0, CLI_FLOAT, &o.keep_rate, "X", "edge dropout: keep probability (1: no dropout)"},
        {"epoch", 0, CLI_INT, &o.epoch, "E", "the epoch whose edge dropout to draw (augment's streams)"},
        {"seed", 0, CLI_INT, &o.seed, "N", "seed of the edge dropout (with the epoch)"},
        {"batch", 0, CLI_INT, &o.batch, "B", "users per product (memory only)"},
        {0},
    };
    cli_stage c = {
        .stage = "feature-graph",
        .args = "[INPUT...]",
        .summary = "Write `graph/<m>` for every modality from feature similarity instead of diffusion:\n"
                   "each user's mean training-item feature vector against every item's (cosine), the\n"
                   "top --rebuild-k items as edges, build-graph's normalisation, augment's edge dropout.\n"
                   "Needs `train` and `feat/<m>`.",
        .details = "example: convert-pkl DIR | build-graph --pass | feature-graph --pass --epoch 0 | train --pass | evaluate\n"
                   "in the recipes: make tiktok VARIANT=simgraph",
        .opts = opts,
        .writes_stream = 1,
        .uses = "train,feat/*",
    };
    cli_parse(&c, argc, argv);
    if (o.rebuild_k < 1 || o.batch < 1) cli_usage_error("--rebuild-k and --batch must be positive");
    if (!(o.keep_rate > 0 && o.keep_rate <= 1)) cli_usage_error("--keep-rate must be in (0, 1]");
    if (o.epoch < 0) cli_usage_error("--epoch must be 0 or more");
    char err[256];
    if (gemm_setup(NULL, "f32", err, sizeof err) < 0) cli_usage_error("%s", err);

    ts_bag bag = {0};
    cli_read_inputs(&c, &bag);
    cli_need_finite_features(&bag);
    const ts_csr *R = cli_need_csr(&bag, "train", -1, -1);
    if (o.rebuild_k > R->cols) cli_usage_error("--rebuild-k %d exceeds the %lld items", o.rebuild_k, (long long)R->cols);
    if (!rng_fits(o.epoch, 63, 0)) cli_usage_error("--epoch %d does not fit the random streams' fields", o.epoch);

    ts_record *recs[65];                                           /* a graph per modality, the log */
    int ng = 0;
    double start = cli_seconds();
    char json[8192];
    size_t jn = (size_t)snprintf(json, sizeof json, "{\"stage\": \"feature-graph\", \"epoch\": %d", o.epoch);
    for (size_t i = 0; i < bag.n && ng < 64; i++) {
        ts_record *f = bag.recs[i];
        if (!f->name || strncmp(f->name, "feat/", 5) != 0) continue;
        if (f->kind != TS_DENSE || ts_record_to_f32(f) < 0 || f->ndim != 2 || f->shape[0] != R->cols || f->shape[1] < 1)
            cli_die("'%s' must be a float [%lld x D] tensor, one row per item", f->name, (long long)R->cols);
        int32_t *top = malloc((size_t)(R->rows * o.rebuild_k > 0 ? R->rows * o.rebuild_k : 1) * 4);   /* [U x k] */
        if (!top) cli_die("out of memory");
        similar_items(&o, R, f, top);
        ts_csr g;
        if (graph_regenerated(R->rows, R->cols, o.rebuild_k, top, o.keep_rate, (uint64_t)o.seed, o.epoch, ng, &g) < 0)
            cli_die("%s: cannot build the graph", f->name);
        free(top);
        char gname[96];
        snprintf(gname, sizeof gname, "graph/%.63s", f->name + 5);
        cli_note("%s: %lld edges by similarity, %lld entries kept", gname, (long long)(R->rows * o.rebuild_k),
                 (long long)g.nnz);
        if (jn < sizeof json)
            jn += (size_t)snprintf(json + jn, sizeof json - jn, ", \"edges/%.63s\": %lld", f->name + 5, (long long)g.nnz);
        if (!(recs[ng++] = ts_csr_new(gname, &g))) cli_die("out of memory");
    }
    if (ng == 0) cli_die("no item features (`feat/<m>`) in the inputs: no modality graph to make");
    if (jn < sizeof json) snprintf(json + jn, sizeof json - jn, ", \"seconds\": %.3f}", cli_seconds() - start);
    if (!(recs[ng] = ts_meta_new("log/feature-graph", json))) cli_die("out of memory");

    ts_writer *out = cli_open(&c);
    for (int i = 0; i <= ng; i++) cli_write(out, recs[i]);
    cli_close(&c, out, &bag);
    for (int i = 0; i <= ng; i++) ts_record_free(recs[i]);
    ts_bag_free(&bag);
    return 0;
}

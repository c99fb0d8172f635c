/* augment: regenerate one user-item graph per modality (ALGORITHM.md
 * section 7, graph re-generation).
 *
 * For every user, the reverse process of the modality's denoiser runs from
 * the user's training row (no forward noising by default; the first step's
 * first layer then reads the sparse row directly); the top --rebuild-k
 * items of the result become edges (u, item); section 2's recipe (the code
 * build-graph uses) turns them into a normalised graph; edge dropout keeps
 * every stored entry with probability --keep-rate and divides kept values
 * by it.  Writes `graph/<m>` for every modality. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "denoise.h"
#include "graph.h"

typedef struct {
    int sampling_steps, sampling_noise, rebuild_k, batch, seed;
    double keep_rate;
} options;

/* The schedule and sizes diffuse trained with (`denoise/hyper`). */
static void read_hyper(cli_stage *c, ts_bag *bag, den_schedule *s, den_config *dc)
{
    ts_record *h = cli_need(c, bag, "denoise/hyper");
    if (h->kind != TS_DENSE || h->dtype != DT_F64 || ts_numel(h) != 6) cli_die("'denoise/hyper' must be 6 <f8");
    const double *v = h->data;
    if (den_schedule_make(s, (int)v[0], v[1], v[2], v[3]) < 0) cli_die("'denoise/hyper' holds no valid schedule");
    dc->emb = (int64_t)v[4];
    dc->norm = v[5] != 0;
}

/* A denoiser's parameters from the bag into one block; the hidden sizes
 * are read off the weights' shapes. */
static float *load_denoiser(cli_stage *c, ts_bag *bag, const char *mod, den_config *dc, den_layout *l)
{
    char name[160];
    dc->ndims = 0;
    for (int k = 0; k < DEN_MAXDIMS; k++) {           /* in-layers give dims reversed */
        snprintf(name, sizeof name, "denoise/%.63s/in%d/weight", mod, k);
        ts_record *r = ts_bag_get(bag, name);
        if (!r) break;
        dc->dims[dc->ndims++] = r->shape[0];
    }
    if (dc->ndims == 0) cli_die("missing input: no denoiser for modality '%s' (denoise/%s/...): run diffuse first", mod, mod);
    for (int i = 0; i < dc->ndims / 2; i++) {
        int64_t t = dc->dims[i]; dc->dims[i] = dc->dims[dc->ndims - 1 - i]; dc->dims[dc->ndims - 1 - i] = t;
    }
    den_layout_make(dc, l);
    float *p = ts_alloc((size_t)l->total * 4);
    if (!p) cli_die("out of memory");
    for (int k = 0; k < l->nlayers; k++)
        for (int bias = 0; bias < 2; bias++) {
            snprintf(name, sizeof name, "denoise/%.63s/%.15s/%s", mod, l->name[k], bias ? "bias" : "weight");
            ts_record *r = cli_need(c, bag, name);
            int64_t n = bias ? l->out[k] : l->in[k] * l->out[k];
            if (r->kind != TS_DENSE || ts_numel(r) != n || ts_record_to_f32(r) < 0)
                cli_die("'%s' does not match the denoiser's shape", name);
            memcpy(p + (bias ? l->b[k] : l->w[k]), r->data, (size_t)n * 4);
        }
    return p;
}

/* Top k of a row, ties to the lower index; idx [k]. */
static void top_k(const float *x, int64_t n, int k, int32_t *idx)
{
    for (int j = 0; j < k; j++) idx[j] = -1;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        int pos = k;
        while (pos > 0 && (idx[pos - 1] < 0 || v > x[idx[pos - 1]])) pos--;
        if (pos == k) continue;
        for (int j = k - 1; j > pos; j--) idx[j] = idx[j - 1];
        idx[pos] = (int32_t)i;
    }
}

/* Every user's top items after the reverse process: u, i [U * k]. */
static void regenerate(const options *o, const den_config *dc, const den_layout *l, const float *p,
                       const den_schedule *s, const ts_csr *R, int mi, const char *mod, int64_t epoch, int32_t *eu,
                       int32_t *ei)
{
    int64_t U = R->rows, I = R->cols, B = o->batch;
    den_work *w = den_work_new(dc, l, B);
    float *x = ts_alloc((size_t)(B * I) * 4), *wt = ts_alloc((size_t)(I * l->out[1]) * 4);
    if (!w || !x || !wt) cli_die("out of memory");
    den_first_layer_t(dc, l, p, wt);
    int sparse_first = o->sampling_steps == 0;
    for (int64_t r0 = 0; r0 < U; r0 += B) {
        int64_t b = U - r0 < B ? U - r0 : B;
        cli_progress(r0, U, "epoch %lld, graph/%s, user", (long long)epoch, mod);
        memset(x, 0, (size_t)(b * I) * 4);
        for (int64_t k = 0; k < b; k++)
            for (int64_t q = R->indptr[r0 + k]; q < R->indptr[r0 + k + 1]; q++) x[k * I + R->indices[q]] = R->values[q];
        rng_t rng;
        rng_seed(&rng, (uint64_t)o->seed, rng_stream(RNG_SAMPLE, epoch, mi, r0));   /* fits: checked in main */
        if (o->sampling_steps > 0) {                /* q_sample to step sampling_steps - 1 */
            int t = o->sampling_steps - 1 < s->steps ? o->sampling_steps - 1 : s->steps - 1;
            float *noise = ts_alloc((size_t)(b * I) * 4);
            if (!noise) cli_die("out of memory");
            rng_normal_fill(&rng, noise, b * I);
            float a = (float)sqrt(s->abar[t]), sd = (float)sqrt(1 - s->abar[t]);
            for (int64_t i = 0; i < b * I; i++) x[i] = a * x[i] + sd * noise[i];
            free(noise);
        }
        ts_csr view = {.rows = b, .cols = I, .nnz = R->indptr[r0 + b] - R->indptr[r0],
                       .indptr = R->indptr + r0, .indices = R->indices, .values = R->values};
        den_reverse(dc, l, p, w, s, x, b, sparse_first ? &view : NULL, sparse_first ? wt : NULL,
                    o->sampling_noise ? &rng : NULL);
#pragma omp parallel for schedule(static)
        for (int64_t k = 0; k < b; k++) {
            top_k(x + k * I, I, o->rebuild_k, ei + (r0 + k) * o->rebuild_k);
            for (int j = 0; j < o->rebuild_k; j++) eu[(r0 + k) * o->rebuild_k + j] = (int32_t)(r0 + k);
        }
    }
    cli_progress_end();
    den_work_free(w);
    free(x);
    free(wt);
}

int main(int argc, char **argv)
{
    options o = {.sampling_steps = 0, .sampling_noise = 0, .rebuild_k = 1, .batch = 1024, .seed = 421, .keep_rate = 0.5};
    cli_opt opts[] = {
        {"sampling-steps", 0, CLI_INT, &o.sampling_steps, "N", "noise the row to step N-1 first (0: start from the row)"},
        {"sampling-noise", 0, CLI_INT, &o.sampling_noise, "0|1", "add the posterior noise in the reverse steps"},
        {"rebuild-k", 0, CLI_INT, &o.rebuild_k, "K", "regenerated edges per user"},
        {"keep-rate", 0, CLI_FLOAT, &o.keep_rate, "X", "edge dropout: keep probability (1: no dropout)"},
        {"batch", 0, CLI_INT, &o.batch, "B", "users per reverse-process batch (memory only)"},
        {"seed", 0, CLI_INT, &o.seed, "N", "seed of the edge dropout and sampling noise (with the epoch)"},
        {0},
    };
    cli_stage c = {
        .stage = "augment",
        .args = "[INPUT...]",
        .summary = "Regenerate `graph/<m>` for every modality: each user's row through the reverse\n"
                   "process of `denoise/<m>/...`, the top --rebuild-k items as edges, the normalised graph\n"
                   "of build-graph, then edge dropout.  Needs `train`, `feat/<m>` (for the modality\n"
                   "names), the denoisers and `denoise/hyper` from diffuse.",
        .details = "example: ... | diffuse --pass | augment --pass | train --pass | evaluate",
        .opts = opts,
        .writes_stream = 1,
        .uses = "train,feat/*,denoise/*",
    };
    cli_parse(&c, argc, argv);
    if (o.rebuild_k < 1 || o.batch < 1 || o.sampling_steps < 0) cli_usage_error("--rebuild-k and --batch must be positive");
    if (!(o.keep_rate > 0 && o.keep_rate <= 1)) cli_usage_error("--keep-rate must be in (0, 1]");

    ts_bag bag = {0};
    cli_read_inputs(&c, &bag);

    cli_need_finite_features(&bag);
    const ts_csr *R = cli_need_csr(&c, &bag, "train", -1, -1);
    if (o.rebuild_k > R->cols) cli_usage_error("--rebuild-k %d exceeds the %lld items", o.rebuild_k, (long long)R->cols);
    den_schedule s;
    den_config dc = {.items = R->cols};
    read_hyper(&c, &bag, &s, &dc);
    ts_record *ep = ts_bag_get(&bag, "denoise/epoch");
    int64_t epoch = ep && ep->dtype == DT_I64 ? *(int64_t *)ep->data - 1 : 0;  /* the epoch diffuse just ran */
    if (!rng_fits(epoch, 63, R->rows - 1))
        cli_die("epoch %lld or %lld users do not fit the random streams' fields (common/rng.h)", (long long)epoch,
                (long long)R->rows);

    ts_writer *out = NULL;
    ts_record *graphs[64];
    int ng = 0;
    double start = cli_seconds();
    char json[2048];
    size_t jn = (size_t)snprintf(json, sizeof json, "{\"stage\": \"augment\", \"epoch\": %lld", (long long)epoch);
    for (size_t i = 0; i < bag.n && ng < 64; i++) {
        const char *name = bag.recs[i]->name;
        if (!name || strncmp(name, "feat/", 5) != 0) continue;
        const char *mod = name + 5;
        double t0 = cli_seconds();
        den_layout l;
        float *p = load_denoiser(&c, &bag, mod, &dc, &l);
        int64_t ne = R->rows * o.rebuild_k;
        int32_t *eu = malloc((size_t)ne * 4), *ei = malloc((size_t)ne * 4);
        if (!eu || !ei) cli_die("out of memory");
        regenerate(&o, &dc, &l, p, &s, R, ng, mod, epoch, eu, ei);
        ts_csr g;
        if (graph_normalized(R->rows, R->cols, ne, eu, ei, &g) < 0) cli_die("%s: cannot build the graph", mod);
        int64_t before = g.nnz;
        rng_t rng;
        rng_seed(&rng, (uint64_t)o.seed, rng_stream(RNG_EDGE_DROP, epoch, ng, 0));
        graph_dropout(&g, o.keep_rate, &rng);
        char gname[96];
        snprintf(gname, sizeof gname, "graph/%.63s", mod);
        cli_note("%s: %lld edges regenerated, %lld of %lld entries kept, %.2f s", gname, (long long)ne,
                 (long long)g.nnz, (long long)before, cli_seconds() - t0);
        if (jn < sizeof json)
            jn += (size_t)snprintf(json + jn, sizeof json - jn, ", \"edges/%.63s\": %lld", mod, (long long)g.nnz);
        graphs[ng] = ts_csr_new(gname, &g);
        if (!graphs[ng]) cli_die("out of memory");
        ng++;
        free(p); free(eu); free(ei);
    }
    if (ng == 0) cli_die("no item features (`feat/<m>`) in the inputs: no modality to regenerate");
    if (jn < sizeof json) snprintf(json + jn, sizeof json - jn, ", \"seconds\": %.3f}", cli_seconds() - start);
    ts_record *log = ts_meta_new("log/augment", json);
    if (!log) cli_die("out of memory");
    out = cli_open(&c);
    for (int i = 0; i < ng; i++) cli_write(&c, out, graphs[i]);
    cli_write(&c, out, log);
    cli_close(&c, out, &bag);
    for (int i = 0; i < ng; i++) ts_record_free(graphs[i]);
    ts_record_free(log);
    ts_bag_free(&bag);
    return 0;
}

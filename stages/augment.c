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

#include "cli/cli.h"
#include "model/den.h"
#include "kernels/dn.h"
#include "kernels/graph.h"
#include "kernels/sp.h"

typedef struct {
    int sampling_steps, sampling_noise, rebuild_k, batch, seed;
    double keep_rate;
    const char *precision;
} options;

/* Every user's top items after the reverse process: u, i [U * k]. */
static void regenerate(const options *o, const den_config *dc, const den_layout *l, const float *p,
                       const den_schedule *s, const ts_csr *R, int mi, const char *mod, int64_t epoch, int32_t *eu,
                       int32_t *ei)
{
    int64_t U = R->rows, I = R->cols, B = o->batch;
    den_work *w = den_work_new(dc, l, B);
    if (w) den_work_weights(w, (uint64_t)mi + 1);            /* one version per denoiser */
    int k = o->rebuild_k;
    float *x = ts_alloc((size_t)(B * I) * 4), *wt = ts_alloc((size_t)(I * l->out[1]) * 4);
    float *top = malloc((size_t)(B * k) * 4);                 /* [B x k] the chosen items' scores */
    if (!w || !x || !wt || !top) cli_die("out of memory");
    den_first_layer_t(dc, l, p, wt);
    int sparse_first = o->sampling_steps == 0;
    for (int64_t r0 = 0; r0 < U; r0 += B) {
        int64_t b = U - r0 < B ? U - r0 : B;
        cli_progress(r0, U, "epoch %lld, graph/%s, user", (long long)epoch, mod);
        for (int64_t k = 0; k < b; k++) sp_row_dense(R, r0 + k, x + k * I);
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
        if (den_reverse(dc, l, p, w, s, x, b, sparse_first ? &view : NULL, sparse_first ? wt : NULL,
                        o->sampling_noise ? &rng : NULL) < 0)
            cli_die("out of memory for the reverse process");
        int64_t short_row = -1;                     /* a row with fewer than k finite scores */
#pragma omp parallel for schedule(static) reduction(max : short_row)
        for (int64_t q = 0; q < b; q++) {
            if (dn_topk(x + q * I, I, k, top + q * k, ei + (r0 + q) * k) < k) short_row = r0 + q;
            for (int j = 0; j < k; j++) eu[(r0 + q) * k + j] = (int32_t)(r0 + q);
        }
        if (short_row >= 0)
            cli_die("graph/%s: user %lld: the reverse process gave fewer than %d finite scores (is the denoiser's "
                    "state finite?)", mod, (long long)short_row, k);
    }
    cli_progress_end();
    den_work_free(w);
    free(x);
    free(wt);
    free(top);
}

int main(int argc, char **argv)
{
    options o = {.sampling_steps = 0, .sampling_noise = 0, .rebuild_k = 1, .batch = 1024, .seed = 421, .keep_rate = 0.5,
                 .precision = "f32"};
    cli_opt opts[] = {
        {"sampling-steps", 0, CLI_INT, &o.sampling_steps, "N", "noise the row to step N-1 first (0: start from the row)"},
        {"sampling-noise", 0, CLI_INT, &o.sampling_noise, "0|1", "add the posterior noise in the reverse steps"},
        {"rebuild-k", 0, CLI_INT, &o.rebuild_k, "K", "regenerated edges per user"},
        {"keep-rate", 0, CLI_FLOAT, &o.keep_rate, "X", "edge dropout: keep probability (1: no dropout)"},
        {"batch", 0, CLI_INT, &o.batch, "B", "users per reverse-process batch (memory only)"},
        {"precision", 0, CLI_STR, &o.precision, "f32|bf16", "inputs of the dense products (bf16: f32 sums)"},
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
    cli_gemm_setup(o.precision);
    if (o.rebuild_k < 1 || o.batch < 1 || o.sampling_steps < 0) cli_usage_error("--rebuild-k and --batch must be positive");
    if (!(o.keep_rate > 0 && o.keep_rate <= 1)) cli_usage_error("--keep-rate must be in (0, 1]");

    ts_bag bag = {0};
    cli_read_inputs(&c, &bag);

    cli_need_finite_features(&bag);
    const ts_csr *R = cli_need_csr(&bag, "train", -1, -1);
    if (o.rebuild_k > R->cols) cli_usage_error("--rebuild-k %d exceeds the %lld items", o.rebuild_k, (long long)R->cols);
    char err[512];
    den_hyper h;
    den_schedule s;
    if (den_hyper_load(&bag, &h, err, sizeof err) < 0) cli_die("%s", err);
    if (den_schedule_make(&s, h.steps, h.noise_scale, h.noise_min, h.noise_max) < 0)
        cli_die("'denoise/hyper/...' holds no valid schedule");
    den_config dc = {.items = R->cols, .emb = h.emb, .norm = h.norm};
    int64_t epoch = cli_i64(&bag, DEN_EPOCH, 1) - 1;          /* the epoch diffuse just ran */
    if (!rng_fits(epoch, 63, R->rows - 1))
        cli_die("epoch %lld or %lld users do not fit the random streams' fields (common/kernels/rng.h)", (long long)epoch,
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
        float *p;
        if (den_params_load(&bag, mod, &dc, &l, &p, err, sizeof err) < 0) cli_die("%s", err);
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
    if (jn < sizeof json)
        snprintf(json + jn, sizeof json - jn, ", %s, \"seconds\": %.3f}", cli_gemm_json(), cli_seconds() - start);
    ts_record *log = ts_meta_new("log/augment", json);
    if (!log) cli_die("out of memory");
    out = cli_open(&c);
    for (int i = 0; i < ng; i++) cli_write(out, graphs[i]);
    cli_write(out, log);
    cli_close(&c, out, &bag);
    for (int i = 0; i < ng; i++) ts_record_free(graphs[i]);
    ts_record_free(log);
    ts_bag_free(&bag);
    return 0;
}

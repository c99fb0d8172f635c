/* augment: regenerate one user-item graph per modality (ALGORITHM.md
 * section 7, graph re-generation).
 *
 * For every user, the reverse process of the modality's denoiser runs from
 * the user's training row (no forward noising by default; the first step's
 * first layer then reads the sparse row directly); the top --rebuild-k
 * items of the result become edges (u, item); section 2's recipe (the code
 * build-graph uses) turns them into a normalised graph; edge dropout keeps
 * every stored entry with probability --keep-rate and divides kept values
 * by it.  Writes `graph/<m>` for every modality.
 *
 * Sharded: --users A:B (or --shard i/n) runs the reverse process for those
 * users only and writes their chosen items as `shard/<A>-<B>/topk/<m>`;
 * --merge joins the shards of all users into the same `graph/<m>` records
 * one run writes (the reverse process's random streams are per batch of
 * --batch users, so shard bounds fall on batch bounds). */
#include <inttypes.h>
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
    int sampling_steps, sampling_noise, rebuild_k, batch, seed, merge;
    double keep_rate;
    const char *precision, *users, *shard, *reverse;
} options;

/* The users [u0, u1) a run computes: all, --users A:B or --shard i/n. */
static void shard_range(const options *o, int64_t U, int64_t *u0, int64_t *u1)
{
    *u0 = 0, *u1 = U;
    int64_t a, b, B = o->batch;
    if (o->users) {
        char *e;
        a = strtoll(o->users, &e, 10);
        if (e == o->users || *e != ':') cli_usage_error("--users takes A:B (or A: for all from A), e.g. 0:4096");
        const char *bs = e + 1;
        b = *bs ? strtoll(bs, &e, 10) : U;
        if (*bs && (e == bs || *e)) cli_usage_error("--users takes A:B (or A: for all from A), e.g. 0:4096");
        if (a < 0 || b < a || a > U) cli_usage_error("--users %s: not a range within the %lld users", o->users, (long long)U);
        if (b > U) b = U;
        if (a % B || (b % B && b != U))
            cli_usage_error("--users %s: bounds must be multiples of --batch %d (or the user count %lld): the "
                            "reverse process draws its randomness per batch", o->users, o->batch, (long long)U);
        *u0 = a, *u1 = b;
    } else if (o->shard) {
        int n = -1;
        if (sscanf(o->shard, "%" SCNd64 "/%" SCNd64 "%n", &a, &b, &n) != 2 || n < 0 || o->shard[n] || b < 1 || a < 0 ||
            a >= b || b > 1000000)
            cli_usage_error("--shard takes i/n with 0 <= i < n <= 1000000, e.g. 0/2");
        int64_t nb = (U + B - 1) / B;                        /* batches, split as evenly as whole batches allow */
        *u0 = a * nb / b * B, *u1 = (a + 1) * nb / b * B;
        if (*u1 > U) *u1 = U;
        if (*u0 > *u1) *u0 = *u1;
    }
}

/* Whether the reverse process runs folded: asked for, and possible (norm 1
 * needs the layer-by-layer order). */
static int reverse_folded(const options *o, const den_config *dc)
{
    return strcmp(o->reverse, "folded") == 0 && !dc->norm;
}

/* The top k items of users [u0, u1) after the reverse process, best first:
 * top [(u1-u0) x k]. */
static void regenerate(const options *o, const den_config *dc, const den_layout *l, const float *p,
                       const den_schedule *s, const ts_csr *R, int mi, const char *mod, int64_t epoch, int64_t u0,
                       int64_t u1, int32_t *top)
{
    int64_t I = R->cols, B = o->batch;
    den_work *w = den_work_new(dc, l, B);
    if (w) den_work_weights(w, (uint64_t)mi + 1);            /* one version per denoiser */
    int k = o->rebuild_k;
    float *x = ts_alloc((size_t)(B * I) * 4), *wt = ts_alloc((size_t)(I * l->out[1]) * 4);
    float *score = malloc((size_t)(B * k) * 4);               /* [B x k] the chosen items' scores */
    int folded = reverse_folded(o, dc);
    float *fold = folded ? ts_alloc((size_t)den_fold_size(l) * 4) : NULL;   /* [h1 x hl + h1] */
    if (!w || !x || !wt || !score || (folded && !fold)) cli_die("out of memory");
    den_first_layer_t(dc, l, p, wt);
    if (folded) den_fold_make(dc, l, p, fold);
    int sparse_first = o->sampling_steps == 0;
    for (int64_t r0 = u0; r0 < u1; r0 += B) {
        int64_t b = u1 - r0 < B ? u1 - r0 : B;
        cli_progress(r0 - u0, u1 - u0, "epoch %lld, graph/%s, user", (long long)epoch, mod);
        if (!(folded && sparse_first))              /* the folded process reads the sparse rows only */
            for (int64_t q = 0; q < b; q++) sp_row_dense(R, r0 + q, x + q * I);
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
        const ts_csr *x0 = sparse_first ? &view : NULL;
        const float *w0 = sparse_first ? wt : NULL;
        rng_t *nr = o->sampling_noise ? &rng : NULL;
        if ((folded ? den_reverse_folded(dc, l, p, w, s, x, b, x0, w0, fold, nr) : den_reverse(dc, l, p, w, s, x, b, x0, w0, nr)) < 0)
            cli_die("out of memory for the reverse process");
        int64_t short_row = -1;                     /* a row with fewer than k finite scores */
#pragma omp parallel for schedule(static) reduction(max : short_row)
        for (int64_t q = 0; q < b; q++)
            if (dn_topk(x + q * I, I, k, score + q * k, top + (r0 - u0 + q) * k) < k) short_row = r0 + q;
        if (short_row >= 0)
            cli_die("graph/%s: user %lld: the reverse process gave fewer than %d finite scores (is the denoiser's "
                    "state finite?)", mod, (long long)short_row, k);
    }
    cli_progress_end();
    den_work_free(w);
    free(x);
    free(wt);
    free(fold);
    free(score);
}

/* --merge: the epoch the shards were made in (`shard/<A>-<B>/epoch`,
 * equal in all of them). */
static int64_t shards_epoch(const ts_bag *bag)
{
    int64_t epoch = -1;
    for (size_t r = 0; r < bag->n; r++) {
        const ts_record *t = bag->recs[r];
        int64_t a, b;
        int n = -1;
        if (!t->name || sscanf(t->name, "shard/%" SCNd64 "-%" SCNd64 "/epoch%n", &a, &b, &n) != 2 || n < 0 || t->name[n])
            continue;
        int64_t e = cli_i64((ts_bag *)bag, t->name, -1);
        if (e < 0) cli_die("'%s' holds a negative epoch", t->name);
        if (epoch >= 0 && e != epoch)
            cli_die("the shards are of different epochs (%lld and %lld)", (long long)epoch, (long long)e);
        epoch = e;
    }
    if (epoch < 0) cli_die("--merge: no shards in the inputs (records 'shard/<A>-<B>/...' of augment --users or --shard)");
    return epoch;
}

/* --merge: the shards' work from their logs (`shard/<A>-<B>/log`), as
 * JSON members: how many, their seconds and product Gflop summed (a static
 * buffer). */
static const char *shards_json(const ts_bag *bag)
{
    static char out[160];
    int n = 0;
    double sec = 0, gflop = 0;
    for (size_t r = 0; r < bag->n; r++) {
        const ts_record *t = bag->recs[r];
        size_t len = t->name ? strlen(t->name) : 0;
        if (len < 10 || strncmp(t->name, "shard/", 6) != 0 || strcmp(t->name + len - 4, "/log") != 0) continue;
        char *js = ts_record_str(t, "json");
        const char *v;
        n++;
        if (js && (v = strstr(js, "\"seconds\": "))) sec += strtod(v + 11, NULL);
        if (js && (v = strstr(js, "\"gemm_gflop\": "))) gflop += strtod(v + 14, NULL);
        free(js);
    }
    snprintf(out, sizeof out, ", \"shards\": %d, \"shards_seconds\": %.3f, \"shards_gemm_gflop\": %.1f", n, sec, gflop);
    return out;
}

/* --merge: every user's chosen items for modality mod from the shards'
 * `shard/<A>-<B>/topk/<mod>` records, which must cover users 0..U-1 once.
 * Returns top [U x k]. */
static int32_t *merge_topk(const ts_bag *bag, const char *mod, int64_t U, int64_t I, int k)
{
    int32_t *top = malloc((size_t)(U * k > 0 ? U * k : 1) * 4);   /* [U x k] */
    uint8_t *seen = calloc((size_t)(U > 0 ? U : 1), 1);           /* [U] users covered so far */
    if (!top || !seen) cli_die("out of memory");
    int64_t covered = 0;
    for (size_t r = 0; r < bag->n; r++) {
        const ts_record *t = bag->recs[r];
        int64_t a, b;
        int n = -1;
        if (!t->name || sscanf(t->name, "shard/%" SCNd64 "-%" SCNd64 "/topk/%n", &a, &b, &n) != 2 || n < 0 ||
            strcmp(t->name + n, mod) != 0)
            continue;
        if (t->kind != TS_DENSE || t->dtype != DT_I32 || t->ndim != 2 || a < 0 || b < a || b > U ||
            t->shape[0] != b - a || t->shape[1] != k)
            cli_die("'%s': not the <i4 [%lld x %d] chosen items of users %lld..%lld of %lld (wrong --rebuild-k, or "
                    "a shard of other data?)", t->name, (long long)(b - a), k, (long long)a, (long long)b - 1,
                    (long long)U);
        const int32_t *src = t->data;
        for (int64_t u = a; u < b; u++) {
            if (seen[u]) cli_die("graph/%s: user %lld is in two shards (overlapping --users ranges)", mod, (long long)u);
            seen[u] = 1;
            for (int j = 0; j < k; j++)
                if (src[(u - a) * k + j] < 0 || src[(u - a) * k + j] >= I)
                    cli_die("'%s': item %d of user %lld is not one of the %lld items", t->name, src[(u - a) * k + j],
                            (long long)u, (long long)I);
        }
        memcpy(top + a * k, src, (size_t)((b - a) * k) * 4);
        covered += b - a;
    }
    if (covered < U) {
        int64_t u = 0;
        while (seen[u]) u++;
        cli_die("graph/%s: no shard holds user %lld (%lld of %lld users covered)", mod, (long long)u, (long long)covered,
                (long long)U);
    }
    free(seen);
    return top;
}

/* One run's settings, fixed before the modalities: which users, which
 * epoch, the denoisers' shape and schedule (not with --merge), the log. */
typedef struct {
    const options *o;
    const ts_csr *R;                  /* train, U x I */
    int64_t u0, u1, epoch;            /* users [u0, u1); the epoch diffuse just ran (or the shards') */
    int sharded;
    char range[48];                   /* "u0-u1": the shard's records' middle name */
    den_config dc;
    den_schedule s;
    char json[8192];                  /* the log line so far */
    size_t jn;
} job;

static void job_prepare(job *j, const options *o, ts_bag *bag)
{
    j->o = o;
    j->R = cli_need_csr(bag, "train", -1, -1);
    if (o->rebuild_k > j->R->cols) cli_usage_error("--rebuild-k %d exceeds the %lld items", o->rebuild_k, (long long)j->R->cols);
    shard_range(o, j->R->rows, &j->u0, &j->u1);
    j->sharded = o->users || o->shard;
    snprintf(j->range, sizeof j->range, "%" PRId64 "-%" PRId64, j->u0, j->u1);
    j->dc = (den_config){.items = j->R->cols};
    if (o->merge) {
        j->epoch = shards_epoch(bag);
    } else {
        char err[512];
        den_hyper h;
        if (den_hyper_load(bag, &h, err, sizeof err) < 0) cli_die("%s", err);
        if (den_schedule_make(&j->s, h.steps, h.noise_scale, h.noise_min, h.noise_max) < 0)
            cli_die("'denoise/hyper/...' holds no valid schedule");
        j->dc.emb = h.emb, j->dc.norm = h.norm;
        j->epoch = cli_i64(bag, DEN_EPOCH, 1) - 1;
        if (!rng_fits(j->epoch, 63, j->R->rows - 1))
            cli_die("epoch %lld or %lld users do not fit the random streams' fields (common/kernels/rng.h)",
                    (long long)j->epoch, (long long)j->R->rows);
    }
    j->jn = (size_t)snprintf(j->json, sizeof j->json, "{\"stage\": \"augment\", \"epoch\": %lld", (long long)j->epoch);
    if (!o->merge)                    /* which reverse process runs */
        j->jn += (size_t)snprintf(j->json + j->jn, sizeof j->json - j->jn, ", \"reverse\": \"%s\"",
                                  reverse_folded(o, &j->dc) ? "folded" : "direct");
}

/* Modality mod (the mi-th): its users' chosen items (reverse process, or
 * the shards' with --merge), as a shard record or as the graph. */
static ts_record *job_modality(job *j, ts_bag *bag, const char *mod, int mi)
{
    const options *o = j->o;
    const ts_csr *R = j->R;
    double t0 = cli_seconds();
    int32_t *top;                                             /* [(u1-u0) x k] */
    if (o->merge) {
        top = merge_topk(bag, mod, R->rows, R->cols, o->rebuild_k);
    } else {
        den_layout l;
        float *p;
        char err[512];
        if (den_params_load(bag, mod, &j->dc, &l, &p, err, sizeof err) < 0) cli_die("%s", err);
        top = malloc((size_t)((j->u1 - j->u0) * o->rebuild_k > 0 ? (j->u1 - j->u0) * o->rebuild_k : 1) * 4);
        if (!top) cli_die("out of memory");
        regenerate(o, &j->dc, &l, p, &j->s, R, mi, mod, j->epoch, j->u0, j->u1, top);
        free(p);
    }
    char rname[160];
    ts_record *rec;
    if (j->sharded) {
        snprintf(rname, sizeof rname, "shard/%s/topk/%.63s", j->range, mod);
        rec = ts_dense_new(rname, DT_I32, 2, (int64_t[]){j->u1 - j->u0, o->rebuild_k});
        if (rec) memcpy(rec->data, top, rec->nbytes);
        cli_note("%s: users %lld..%lld, %.2f s", rname, (long long)j->u0, (long long)j->u1 - 1, cli_seconds() - t0);
    } else {
        ts_csr g;
        if (graph_regenerated(R->rows, R->cols, o->rebuild_k, top, o->keep_rate, (uint64_t)o->seed, j->epoch, mi, &g) < 0)
            cli_die("%s: cannot build the graph", mod);
        snprintf(rname, sizeof rname, "graph/%.63s", mod);
        cli_note("%s: %lld edges regenerated, %lld entries kept, %.2f s", rname, (long long)(R->rows * o->rebuild_k),
                 (long long)g.nnz, cli_seconds() - t0);
        if (j->jn < sizeof j->json)
            j->jn += (size_t)snprintf(j->json + j->jn, sizeof j->json - j->jn, ", \"edges/%.63s\": %lld", mod,
                                      (long long)g.nnz);
        rec = ts_csr_new(rname, &g);
    }
    free(top);
    if (!rec) cli_die("out of memory");
    return rec;
}

/* The log record (a shard's own `shard/<range>/log`), and a shard's epoch. */
static int job_records_end(job *j, const ts_bag *bag, double seconds, ts_record **recs)
{
    if (j->jn < sizeof j->json)
        snprintf(j->json + j->jn, sizeof j->json - j->jn, "%s%s%s, %s, \"seconds\": %.3f}",
                 j->sharded ? ", \"users\": \"" : "", j->sharded ? j->range : "",
                 j->sharded ? "\"" : j->o->merge ? shards_json(bag) : "", cli_gemm_json(), seconds);
    char name[96];
    snprintf(name, sizeof name, j->sharded ? "shard/%s/log" : "log/augment", j->range);
    recs[0] = ts_meta_new(name, j->json);
    if (!j->sharded) return 1;
    snprintf(name, sizeof name, "shard/%s/epoch", j->range);
    recs[1] = ts_dense_new(name, DT_I64, 1, (int64_t[]){1});
    if (recs[1]) *(int64_t *)recs[1]->data = j->epoch;
    return 2;
}

int main(int argc, char **argv)
{
    options o = {.sampling_steps = 0, .sampling_noise = 0, .rebuild_k = 1, .batch = 1024, .seed = 421, .keep_rate = 0.5,
                 .precision = "f32", .reverse = "folded"};
    cli_opt opts[] = {
        {"sampling-steps", 0, CLI_INT, &o.sampling_steps, "N", "noise the row to step N-1 first (0: start from the row)"},
        {"sampling-noise", 0, CLI_INT, &o.sampling_noise, "0|1", "add the posterior noise in the reverse steps"},
        {"rebuild-k", 0, CLI_INT, &o.rebuild_k, "K", "regenerated edges per user"},
        {"keep-rate", 0, CLI_FLOAT, &o.keep_rate, "X", "edge dropout: keep probability (1: no dropout)"},
        {"batch", 0, CLI_INT, &o.batch, "B", "users per reverse-process batch (memory only)"},
        {"precision", 0, CLI_STR, &o.precision, "f32|bf16", "inputs of the dense products (bf16: f32 sums)"},
        {"reverse", 0, CLI_STR, &o.reverse, "folded|direct",
         "folded: carry W_x x between steps (a sixth of the flops); direct: layer by layer"},
        {"seed", 0, CLI_INT, &o.seed, "N", "seed of the edge dropout and sampling noise (with the epoch)"},
        {"users", 0, CLI_STR, &o.users, "A:B", "only users A..B-1: write their chosen items (a shard)"},
        {"shard", 0, CLI_STR, &o.shard, "i/n", "only the i-th of n user ranges (0 <= i < n), as --users"},
        {"merge", 0, CLI_FLAG, &o.merge, NULL, "build the graphs from shards' items instead (no denoisers read)"},
        {0},
    };
    cli_stage c = {
        .stage = "augment",
        .args = "[INPUT...]",
        .summary = "Regenerate `graph/<m>` for every modality: each user's row through the reverse\n"
                   "process of `denoise/<m>/...`, the top --rebuild-k items as edges, the normalised graph\n"
                   "of build-graph, then edge dropout.  Needs `train`, `feat/<m>` (for the modality\n"
                   "names), the denoisers and `denoise/hyper` from diffuse.",
        .details = "example: ... | diffuse --pass | augment --pass | train --pass | evaluate\n"
                   "sharded: augment --shard 0/2 base.ts diffuse.ts -o s0.ts; (the same with 1/2 -o s1.ts);\n"
                   "         augment --merge base.ts s0.ts s1.ts -o augment.ts   (the same bytes as one run)",
        .opts = opts,
        .writes_stream = 1,
        .uses = "train,feat/*,denoise/*",
    };
    cli_parse(&c, argc, argv);
    cli_gemm_setup(o.precision);
    if (o.rebuild_k < 1 || o.batch < 1 || o.sampling_steps < 0) cli_usage_error("--rebuild-k and --batch must be positive");
    if (!(o.keep_rate > 0 && o.keep_rate <= 1)) cli_usage_error("--keep-rate must be in (0, 1]");
    if (strcmp(o.reverse, "folded") != 0 && strcmp(o.reverse, "direct") != 0)
        cli_usage_error("--reverse takes folded or direct, not '%s'", o.reverse);
    if (!!o.users + !!o.shard + o.merge > 1) cli_usage_error("--users, --shard and --merge exclude each other");
    if (o.merge) c.uses = "train,feat/*,shard/*";

    ts_bag bag = {0};
    cli_read_inputs(&c, &bag);

    cli_need_finite_features(&bag);
    static job j;
    job_prepare(&j, &o, &bag);

    ts_record *recs[66];                                          /* a graph (or shard) per modality, log, epoch */
    int nr = 0;
    double start = cli_seconds();
    for (size_t i = 0; i < bag.n && nr < 64; i++) {
        const char *name = bag.recs[i]->name;
        if (name && strncmp(name, "feat/", 5) == 0) recs[nr] = job_modality(&j, &bag, name + 5, nr), nr++;
    }
    if (nr == 0) cli_die("no item features (`feat/<m>`) in the inputs: no modality to regenerate");
    nr += job_records_end(&j, &bag, cli_seconds() - start, recs + nr);

    ts_writer *out = cli_open(&c);
    for (int i = 0; i < nr; i++) {
        if (!recs[i]) cli_die("out of memory");
        cli_write(out, recs[i]);
    }
    cli_close(&c, out, &bag);
    for (int i = 0; i < nr; i++) ts_record_free(recs[i]);
    ts_bag_free(&bag);
    return 0;
}

/* diffuse: one or more epochs of DiffMM's denoiser training (ALGORITHM.md
 * section 7), one denoiser per modality.
 *
 * Each user's interaction row x0 (from the sparse `train`) is noised to a
 * random step t, passed through the denoiser with dropout, and scored by
 * the SNR-weighted reconstruction loss plus e_loss times the
 * modality-aware loss against the recommender's item embeddings and
 * transformed features (held constant; from `model/...`, or the
 * recommender train initialises from the same --seed).  Users are shuffled
 * in batches; each denoiser takes one Adam step per batch.  A batch is
 * processed in row chunks (--chunk) to bound memory; the gradient is the
 * same.  Writes `denoise/<m>/...`, `adam/{m,v}/denoise/<m>/...`,
 * `adam/step/denoise/<m>`, `denoise/epoch`, `denoise/hyper` (the schedule
 * and sizes augment must use) and `log/diffuse`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/adam.h"
#include "kernels/dn.h"
#include "kernels/gemm.h"
#include "cli/cli.h"
#include "model/den.h"
#include "model/rec.h"
#include "kernels/sp.h"

typedef struct {
    int steps, d_emb_size, norm, batch, chunk, seed, epochs, trans, latdim;
    double noise_scale, noise_min, noise_max, e_loss, lr;
    const char *dims, *log, *precision;
} options;

/* One modality's denoiser: its state, constants and epoch sums. */
typedef struct {
    char name[64];
    den_state st;                /* parameters, Adam moments [layout.total] each, steps */
    float *f;                    /* [I x d] transformed features (constant) */
    double loss, diff, gc;       /* epoch sums */
} denoiser;

static void parse_dims(const char *s, den_config *c)
{
    c->ndims = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 1000000 || c->ndims == DEN_MAXDIMS)
            cli_usage_error("--dims takes 1 to %d comma-separated sizes, e.g. 1000, not '%s'", DEN_MAXDIMS, s);
        c->dims[c->ndims++] = v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') cli_usage_error("--dims: bad list '%s'", s);
    }
    if (c->ndims == 0) cli_usage_error("--dims needs at least one size");
}

/* A denoiser's state from the bag, or initialised from --seed. */
static void load_denoiser(ts_bag *bag, const den_layout *l, int mi, const options *o, denoiser *dz)
{
    char err[512];
    int found = den_state_take(bag, l, dz->name, &dz->st, err, sizeof err);
    if (found < 0) cli_die("%s", err);
    if (found) return;
    rng_t r;
    rng_seed(&r, (uint64_t)o->seed, rng_stream(RNG_DENOISE_INIT, 0, mi, 0));
    den_init(l, dz->st.p, &r);
    cli_note("%s: initialised a denoiser of %lld parameters from seed %d", dz->name, (long long)l->total, o->seed);
}

/* The rng of one user's row in one epoch and modality: the same draws
 * whatever the batch order or thread count. */
static void row_rng(rng_t *r, int seed, int64_t epoch, int m, int32_t user)
{
    rng_seed(r, (uint64_t)seed, rng_stream(RNG_DENOISE, epoch, m, user));     /* fits: checked in main */
}

typedef struct {
    float *x0, *xt, *mask, *dout, *scratch;   /* [chunk x I] ... (mask only with norm), [2 chunk d] */
    int32_t *t;                               /* [chunk] */
    double *diff, *gc;                        /* [chunk] */
} chunk_buf;

/* Everything the epochs need, resolved from the options and the inputs. */
typedef struct {
    const options *o;
    den_config dc;
    den_layout l;
    den_schedule sched;
    const ts_csr *R;             /* train [U x I] */
    const float *E;              /* [I x d] the recommender's item embeddings (constant) */
    int64_t d;
    int nmod;
    denoiser dz[REC_MAXMOD];
    float *grad;                 /* [layout.total] */
    den_work *w;
    chunk_buf cb;
    int32_t *order;              /* [U] this epoch's user order */
    adam_cfg adam;
    int64_t epoch;               /* epochs completed */
} run;

/* One chunk of rows: build x0 from the sparse rows, noise and dropout per
 * row, forward, loss, backward into grad.  Returns the chunk's loss share. */
static double train_chunk(run *r, denoiser *dz, int mi, const int32_t *users, int64_t b, int64_t count)
{
    const den_schedule *s = &r->sched;
    const ts_csr *R = r->R;
    chunk_buf *cb = &r->cb;
    int64_t I = R->cols;
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < b; k++) {
        /* without norm the dropout is multiplied into x_t here (the bits
         * den_forward's copy would hold); with it, after the normalisation */
        float *x0 = cb->x0 + k * I, *xt = cb->xt + k * I, *mask = cb->mask ? cb->mask + k * I : NULL;
        sp_row_dense(R, users[k], x0);
        rng_t g;
        row_rng(&g, r->o->seed, r->epoch, mi, users[k]);
        int32_t t = (int32_t)rng_below(&g, (uint64_t)s->steps);
        cb->t[k] = t;
        rng_normal_fill(&g, xt, I);                           /* noise, then x_t in place */
        float a = (float)sqrt(s->abar[t]), sd = (float)sqrt(1 - s->abar[t]);
        for (int64_t i = 0; i < I; i++) xt[i] = a * x0[i] + sd * xt[i];
        for (int64_t i = 0; i < I; i += 64) {                 /* dropout p = 0.5: keep and scale by 2 */
            uint64_t bits = rng_u64(&g);
            if (mask)
                for (int64_t j = 0; j < 64 && i + j < I; j++) mask[i + j] = (bits >> j) & 1 ? 2.0f : 0.0f;
            else
                for (int64_t j = 0; j < 64 && i + j < I; j++) xt[i + j] *= (bits >> j) & 1 ? 2.0f : 0.0f;
        }
    }
    const float *out = den_forward(&r->dc, &r->l, dz->st.p, r->w, cb->xt, cb->t, b, cb->mask);
    if (!out) cli_die("out of memory in the denoiser's forward pass");
    double loss = den_loss(s, cb->x0, R, users, cb->t, b, out, r->E, dz->f, r->d, r->o->e_loss, count, cb->dout,
                           cb->diff, cb->gc, cb->scratch);
    for (int64_t k = 0; k < b; k++) { dz->diff += cb->diff[k]; dz->gc += cb->gc[k]; }
    den_backward(&r->dc, &r->l, dz->st.p, r->w, cb->dout, b, r->grad);
    return loss;
}

/* Free every record of bag but "train" (what the epochs read): the
 * features and the recommender are in f_m and E by now. */
static void drop_inputs(ts_bag *bag)
{
    for (size_t i = bag->n; i-- > 0;) {
        if (strcmp(bag->recs[i]->name, "train") == 0) continue;
        ts_record_free(ts_bag_take(bag, bag->recs[i]->name));
    }
}

/* The modalities, the recommender's constants (E and each f_m), the
 * denoisers and the buffers of a chunk.  keep_inputs: hold the bag's other
 * records too (--pass writes them out). */
static void setup(ts_bag *bag, const options *o, run *r, int keep_inputs)
{
    char err[512];
    r->o = o;
    r->R = cli_need_csr(bag, "train", -1, -1);
    rec_config rc = {.users = r->R->rows, .items = r->R->cols, .d = o->latdim, .trans = o->trans};
    const float *feat[REC_MAXMOD];
    if (rec_modalities(bag, &rc, feat, err, sizeof err) < 0) cli_die("%s", err);
    if (rc.nmod == 0) cli_die("no item features (`feat/<m>`) in the inputs: nothing to diffuse");
    r->dc.items = r->R->cols;
    den_layout_make(&r->dc, &r->l);
    int64_t npar = rec_layout(&rc, NULL, NULL, NULL, NULL), I = rc.items;
    float *rp = ts_alloc((size_t)npar * 4);                   /* the recommender, held for E */
    if (!rp) cli_die("out of memory");
    rec_params p;
    rec_layout(&rc, rp, &p, NULL, NULL);
    int found = rec_params_load(bag, &rc, rp, (uint64_t)o->seed, err, sizeof err);
    if (found < 0) cli_die("%s", err);
    if (!found) cli_note("no recommender in the inputs: using its initialisation from seed %d", o->seed);
    r->E = p.item;
    r->d = rc.d;
    r->nmod = rc.nmod;
    for (int m = 0; m < rc.nmod; m++) {
        denoiser *dz = &r->dz[m];
        snprintf(dz->name, sizeof dz->name, "%s", rc.mod[m]);
        dz->f = ts_alloc((size_t)(I * r->d) * 4);
        if (!dz->f) cli_die("out of memory for the denoisers");
        if (rec_transform_out(&rc, &p, m, feat[m], dz->f) < 0) cli_die("out of memory for the denoisers");
        load_denoiser(bag, &r->l, m, o, dz);
    }
    r->epoch = cli_i64(bag, DEN_EPOCH, 0);
    if (!keep_inputs) drop_inputs(bag);        /* before the epoch's buffers: a lower peak */
    if (!rng_fits(r->epoch + o->epochs - 1, rc.nmod - 1, r->R->rows - 1))
        cli_die("epoch %lld, %d modalities or %lld users do not fit the random streams' fields (common/kernels/rng.h)",
                (long long)(r->epoch + o->epochs - 1), rc.nmod, (long long)r->R->rows);
    cli_note("%lld users, %lld items, %d denoisers of %lld parameters, %d steps", (long long)r->R->rows,
             (long long)I, rc.nmod, (long long)r->l.total, o->steps);
    chunk_buf *cb = &r->cb;
    int64_t ci = (int64_t)o->chunk * I;
    r->grad = ts_alloc((size_t)r->l.total * 4);
    r->w = den_work_new(&r->dc, &r->l, o->chunk);
    cb->x0 = ts_alloc((size_t)ci * 4); cb->xt = ts_alloc((size_t)ci * 4);
    cb->mask = r->dc.norm ? ts_alloc((size_t)ci * 4) : NULL;    /* else folded into xt */
    cb->dout = ts_alloc((size_t)ci * 4);
    cb->scratch = ts_alloc((size_t)(2 * o->chunk * r->d) * 4);
    cb->t = malloc((size_t)o->chunk * 4);
    cb->diff = malloc((size_t)o->chunk * 8); cb->gc = malloc((size_t)o->chunk * 8);
    r->order = malloc((size_t)r->R->rows * 4);
    if (!r->grad || !r->w || !cb->x0 || !cb->xt || (r->dc.norm && !cb->mask) || !cb->dout || !cb->scratch ||
        !cb->t || !cb->diff || !cb->gc || !r->order)
        cli_die("out of memory");
    r->adam = adam_default(o->lr);
}

/* One epoch: users shuffled into batches; per batch and modality, the
 * gradient over the batch's chunks and one Adam step.  Writes the epoch's
 * log line into json. */
static void run_epoch(run *r, char *json, size_t cap)
{
    const options *o = r->o;
    int64_t U = r->R->rows, total = r->l.total;
    double t0 = cli_seconds();
    gemm_stats_reset();
    rng_t g;
    rng_seed(&g, (uint64_t)o->seed, rng_stream(RNG_DENOISE_ORDER, r->epoch, 0, 0));
    for (int64_t u = 0; u < U; u++) r->order[u] = (int32_t)u;
    rng_shuffle_i32(&g, U, 1, &r->order);
    for (int m = 0; m < r->nmod; m++) r->dz[m].loss = r->dz[m].diff = r->dz[m].gc = 0;
    int64_t nb = (U + o->batch - 1) / o->batch;
    for (int64_t bi = 0; bi < nb; bi++) {
        int64_t off = bi * o->batch, b = U - off < o->batch ? U - off : o->batch;
        for (int m = 0; m < r->nmod; m++) {
            denoiser *dz = &r->dz[m];
            dn_zero(r->grad, total);
            den_work_weights(r->w, (uint64_t)dz->st.step);     /* changes with every Adam step */
            double loss = 0;
            for (int64_t k = 0; k < b; k += o->chunk)
                loss += train_chunk(r, dz, m, r->order + off + k, b - k < o->chunk ? b - k : o->chunk, b);
            if (!isfinite(loss))
                cli_die("epoch %lld, batch %lld, denoiser %s: the loss is not finite", (long long)r->epoch,
                        (long long)bi, dz->name);
            dz->loss += loss;
            dz->st.step++;
            adam_update(&r->adam, dz->st.step, dz->st.p, r->grad, dz->st.m, dz->st.v, total);
        }
        cli_progress(bi + 1, nb, "epoch %lld, batch", (long long)r->epoch);
    }
    cli_progress_end();
    size_t k = (size_t)snprintf(json, cap, "{\"stage\": \"diffuse\", \"epoch\": %lld, \"batches\": %lld",
                                (long long)r->epoch, (long long)nb);
    for (int m = 0; m < r->nmod && k < cap; m++) {
        const denoiser *dz = &r->dz[m];
        k += (size_t)snprintf(json + k, cap - k, ", \"loss/%s\": %.6g, \"diff/%s\": %.6g, \"gc/%s\": %.6g", dz->name,
                              dz->loss / (double)nb, dz->name, dz->diff / (double)U, dz->name, dz->gc / (double)U);
    }
    if (k < cap) snprintf(json + k, cap - k, ", %s, \"seconds\": %.3f}", cli_gemm_json(), cli_seconds() - t0);
    r->epoch++;
}

/* The denoisers, the epoch count, the settings augment reuses, the log. */
static void write_outputs(cli_stage *c, const run *r, const char *json, ts_bag *bag)
{
    const options *o = r->o;
    ts_writer *out = cli_open(c);
    for (int m = 0; m < r->nmod; m++) den_state_save(&r->l, r->dz[m].name, &r->dz[m].st, cli_emit_dense, out);
    int64_t one = 1;
    cli_write_dense(out, DEN_EPOCH, DT_I64, 1, &one, &r->epoch);
    den_hyper h = {.steps = o->steps, .noise_scale = o->noise_scale, .noise_min = o->noise_min,
                   .noise_max = o->noise_max, .emb = o->d_emb_size, .norm = o->norm};
    den_hyper_save(&h, cli_emit_dense, out);
    ts_record *log = ts_meta_new("log/diffuse", json);
    if (!log) cli_die("out of memory");
    cli_write(out, log);
    cli_close(c, out, bag);
    ts_record_free(log);
}

int main(int argc, char **argv)
{
    options o = {.steps = 5, .d_emb_size = 10, .norm = 0, .batch = 1024, .chunk = 256, .seed = 421, .epochs = 1,
                 .trans = 0, .latdim = 64, .noise_scale = 0.1, .noise_min = 1e-4, .noise_max = 0.02, .e_loss = 0.1,
                 .lr = 1e-3, .dims = "1000", .precision = "f32"};
    cli_opt opts[] = {
        {"steps", 0, CLI_INT, &o.steps, "T", "diffusion steps"},
        {"noise-scale", 0, CLI_FLOAT, &o.noise_scale, "X", "scale of the noise schedule"},
        {"noise-min", 0, CLI_FLOAT, &o.noise_min, "X", "smallest noise level (before scaling)"},
        {"noise-max", 0, CLI_FLOAT, &o.noise_max, "X", "largest noise level (before scaling)"},
        {"dims", 0, CLI_STR, &o.dims, "LIST", "hidden sizes of the denoiser, comma-separated"},
        {"d-emb-size", 0, CLI_INT, &o.d_emb_size, "E", "size of the step embedding"},
        {"norm", 0, CLI_INT, &o.norm, "0|1", "L2-normalise the input rows"},
        {"e-loss", 0, CLI_FLOAT, &o.e_loss, "X", "weight of the modality-aware loss"},
        {"lr", 0, CLI_FLOAT, &o.lr, "X", "Adam learning rate of every denoiser"},
        {"batch", 0, CLI_INT, &o.batch, "B", "users per batch (one Adam step each)"},
        {"chunk", 0, CLI_INT, &o.chunk, "C", "rows computed at once inside a batch (memory only)"},
        {"seed", 0, CLI_INT, &o.seed, "N", "seed of initialisation, steps, noise, dropout, order"},
        {"epochs", 0, CLI_INT, &o.epochs, "N", "epochs to run in this invocation"},
        {"trans", 0, CLI_INT, &o.trans, "0|1", "the recommender's transform (when it is initialised here)"},
        {"latdim", 0, CLI_INT, &o.latdim, "D", "the recommender's embedding size"},
        {"precision", 0, CLI_STR, &o.precision, "f32|bf16", "inputs of the dense products (bf16: f32 sums, weights, Adam)"},
        {"log", 0, CLI_STR, &o.log, "FILE", "append one JSON line of losses and timings per epoch"},
        {0},
    };
    cli_stage c = {
        .stage = "diffuse",
        .args = "[INPUT...]",
        .summary = "Train one denoiser per modality (`feat/<m>`) for --epochs epochs on the rows of\n"
                   "`train`, steered by the recommender's item embeddings and transformed features\n"
                   "(`model/...`, or its initialisation from --seed).  Resumes from `denoise/...` and\n"
                   "`adam/.../denoise/...` when present.",
        .details = "example: convert-pkl DIR | build-graph --pass | diffuse --pass --trans 1 | augment --pass | ...",
        .opts = opts,
        .writes_stream = 1,
        .uses = "train,feat/*,model/*,denoise/*,adam/m/denoise/*,adam/v/denoise/*,adam/step/denoise/*",
    };
    cli_parse(&c, argc, argv);
    cli_gemm_setup(o.precision);
    /* the run and the bag are held until exit: static, so still reachable
     * then (LeakSanitizer reports no leak) */
    static run r;
    r.dc.emb = o.d_emb_size;
    r.dc.norm = o.norm;
    parse_dims(o.dims, &r.dc);
    if (den_schedule_make(&r.sched, o.steps, o.noise_scale, o.noise_min, o.noise_max) < 0)
        cli_usage_error("--steps, --noise-scale, --noise-min and --noise-max give no valid schedule");
    if (o.trans != 0 && o.trans != 1) cli_usage_error("--trans takes 0 or 1");
    if (o.batch < 1 || o.chunk < 1 || o.epochs < 1 || o.d_emb_size < 1 || o.latdim < 1)
        cli_usage_error("--batch, --chunk, --epochs, --d-emb-size and --latdim must be positive");
    if (o.chunk > o.batch) o.chunk = o.batch;

    static ts_bag bag;
    cli_read_inputs(&c, &bag);
    cli_need_finite_features(&bag);
    setup(&bag, &o, &r, c.pass);

    char json[2048];
    for (int e = 0; e < o.epochs; e++) {
        run_epoch(&r, json, sizeof json);
        cli_note("%s", json);
        if (o.log) cli_append_line(o.log, json);
    }
    write_outputs(&c, &r, json, &bag);
    return 0;
}

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

#include "adam.h"
#include "cli.h"
#include "denoise.h"
#include "recsys.h"

typedef struct {
    int steps, d_emb_size, norm, batch, chunk, seed, epochs, trans, latdim;
    double noise_scale, noise_min, noise_max, e_loss, lr;
    const char *dims, *log;
} options;

/* One modality's denoiser: parameters, Adam state, constants. */
typedef struct {
    char name[64];
    float *p, *m, *v;            /* [layout.total] each */
    int64_t step;                /* Adam steps taken */
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

/* Copy a tensor of the bag into dst and drop it from the bag (its memory
 * is freed: the denoisers are large); 1 if it was there. */
static int take_into(ts_bag *bag, const char *name, float *dst, int64_t n)
{
    ts_record *r = ts_bag_take(bag, name);
    if (!r) return 0;
    if (r->kind != TS_DENSE || ts_numel(r) != n || ts_record_to_f32(r) < 0)
        cli_die("'%s' does not match the denoiser's size (check --dims and --d-emb-size)", name);
    memcpy(dst, r->data, (size_t)n * 4);
    ts_record_free(r);
    return 1;
}

static void name_of(char *dst, size_t cap, const char *prefix, const char *mod, const den_layout *l, int k, int bias)
{
    snprintf(dst, cap, "%.16sdenoise/%.63s/%.15s/%s", prefix, mod, l->name[k], bias ? "bias" : "weight");
}

/* Parameters and Adam moments of one denoiser ([l->total] each): from the
 * bag or fresh.  Each array is allocated just before the bag's copy of it
 * is taken and freed, so the previous epoch's state and ours overlap by
 * one array at most (on TikTok 54 MB, not the 161 MB of a whole denoiser:
 * the peak of a resumed epoch went from 490 to about 430 MB). */
static void load_denoiser(ts_bag *bag, const den_layout *l, int mi, const options *o, denoiser *dz)
{
    const char *prefix[3] = {"", "adam/m/", "adam/v/"};
    float **dst[3] = {&dz->p, &dz->m, &dz->v};
    int found[3] = {0, 0, 0}, expect = 2 * l->nlayers;
    for (int s = 0; s < 3; s++) {
        *dst[s] = ts_alloc((size_t)l->total * 4);                    /* zeroed */
        if (!*dst[s]) cli_die("out of memory for the denoisers");
        for (int k = 0; k < l->nlayers; k++)
            for (int bias = 0; bias < 2; bias++) {
                char name[200];
                name_of(name, sizeof name, prefix[s], dz->name, l, k, bias);
                found[s] += take_into(bag, name, *dst[s] + (bias ? l->b[k] : l->w[k]),
                                      bias ? l->out[k] : l->in[k] * l->out[k]);
            }
    }
    if (found[0] == 0) {
        rng_t r;
        rng_seed(&r, (uint64_t)o->seed, rng_stream(RNG_DENOISE_INIT, 0, mi, 0));
        den_init(l, dz->p, &r);
        cli_note("%s: initialised a denoiser of %lld parameters from seed %d", dz->name, (long long)l->total, o->seed);
    } else if (found[0] != expect || (found[1] && found[1] != expect) || (found[2] && found[2] != expect)) {
        cli_die("%s: the inputs hold only part of the denoiser's state", dz->name);
    }
    char name[128];
    snprintf(name, sizeof name, "adam/step/denoise/%.63s", dz->name);
    dz->step = cli_i64(bag, name, 0);
}

/* The rng of one user's row in one epoch and modality: the same draws
 * whatever the batch order or thread count. */
static void row_rng(rng_t *r, int seed, int64_t epoch, int m, int32_t user)
{
    rng_seed(r, (uint64_t)seed, rng_stream(RNG_DENOISE, epoch, m, user));     /* fits: checked in main */
}

typedef struct {
    float *x0, *xt, *mask, *dout, *scratch;   /* [chunk x I] ..., [2 chunk d] */
    int32_t *t;                               /* [chunk] */
    double *diff, *gc;                        /* [chunk] */
} chunk_buf;

/* One chunk of rows: build x0 from the sparse rows, noise and dropout per
 * row, forward, loss, backward into grad.  Returns the chunk's loss share. */
static double train_chunk(const options *o, const den_config *dc, const den_layout *l, const den_schedule *s,
                          const ts_csr *R, const float *E, int64_t d, denoiser *dz, int mi, int64_t epoch,
                          const int32_t *users, int64_t b, int64_t count, den_work *w, chunk_buf *cb, float *grad)
{
    int64_t I = R->cols;
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < b; k++) {
        float *x0 = cb->x0 + k * I, *xt = cb->xt + k * I, *mask = cb->mask + k * I;
        memset(x0, 0, (size_t)I * 4);
        for (int64_t q = R->indptr[users[k]]; q < R->indptr[users[k] + 1]; q++) x0[R->indices[q]] = R->values[q];
        rng_t r;
        row_rng(&r, o->seed, epoch, mi, users[k]);
        int32_t t = (int32_t)rng_below(&r, (uint64_t)s->steps);
        cb->t[k] = t;
        rng_normal_fill(&r, xt, I);                           /* noise, then x_t in place */
        float a = (float)sqrt(s->abar[t]), sd = (float)sqrt(1 - s->abar[t]);
        for (int64_t i = 0; i < I; i++) xt[i] = a * x0[i] + sd * xt[i];
        for (int64_t i = 0; i < I; i += 64) {                 /* dropout p = 0.5: keep and scale by 2 */
            uint64_t bits = rng_u64(&r);
            for (int64_t j = 0; j < 64 && i + j < I; j++) mask[i + j] = (bits >> j) & 1 ? 2.0f : 0.0f;
        }
    }
    const float *out = den_forward(dc, l, dz->p, w, cb->xt, cb->t, b, cb->mask);
    double loss = den_loss(s, cb->x0, R, users, cb->t, b, out, E, dz->f, d, o->e_loss, count, cb->dout, cb->diff,
                           cb->gc, cb->scratch);
    for (int64_t k = 0; k < b; k++) { dz->diff += cb->diff[k]; dz->gc += cb->gc[k]; }
    den_backward(dc, l, dz->p, w, cb->dout, b, grad);
    return loss;
}

static void write_denoiser(cli_stage *c, ts_writer *out, const den_layout *l, const denoiser *dz)
{
    const char *prefix[3] = {"", "adam/m/", "adam/v/"};
    const float *src[3] = {dz->p, dz->m, dz->v};
    for (int s = 0; s < 3; s++)
        for (int k = 0; k < l->nlayers; k++) {
            char name[200];
            int64_t wshape[2] = {l->out[k], l->in[k]}, bshape[1] = {l->out[k]};
            name_of(name, sizeof name, prefix[s], dz->name, l, k, 0);
            cli_write_dense(c, out, name, DT_F32, 2, wshape, src[s] + l->w[k]);
            name_of(name, sizeof name, prefix[s], dz->name, l, k, 1);
            cli_write_dense(c, out, name, DT_F32, 1, bshape, src[s] + l->b[k]);
        }
    char name[128];
    int64_t one = 1;
    snprintf(name, sizeof name, "adam/step/denoise/%.63s", dz->name);
    cli_write_dense(c, out, name, DT_I64, 1, &one, &dz->step);
}

int main(int argc, char **argv)
{
    options o = {.steps = 5, .d_emb_size = 10, .norm = 0, .batch = 1024, .chunk = 256, .seed = 421, .epochs = 1,
                 .trans = 0, .latdim = 64, .noise_scale = 0.1, .noise_min = 1e-4, .noise_max = 0.02, .e_loss = 0.1,
                 .lr = 1e-3, .dims = "1000"};
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
    den_config dc = {.emb = o.d_emb_size, .norm = o.norm};
    parse_dims(o.dims, &dc);
    den_schedule sched;
    if (den_schedule_make(&sched, o.steps, o.noise_scale, o.noise_min, o.noise_max) < 0)
        cli_usage_error("--steps, --noise-scale, --noise-min and --noise-max give no valid schedule");
    if (o.trans != 0 && o.trans != 1) cli_usage_error("--trans takes 0 or 1");
    if (o.batch < 1 || o.chunk < 1 || o.epochs < 1 || o.d_emb_size < 1 || o.latdim < 1)
        cli_usage_error("--batch, --chunk, --epochs, --d-emb-size and --latdim must be positive");
    if (o.chunk > o.batch) o.chunk = o.batch;

    ts_bag bag = {0};
    cli_read_inputs(&c, &bag);

    cli_need_finite_features(&bag);
    const ts_csr *R = cli_need_csr(&c, &bag, "train", -1, -1);
    rec_config rc = {.users = R->rows, .items = R->cols, .d = o.latdim, .trans = o.trans};
    const float *feat[REC_MAXMOD];
    rec_modalities(&bag, &rc, feat);
    if (rc.nmod == 0) cli_die("no item features (`feat/<m>`) in the inputs: nothing to diffuse");
    dc.items = R->cols;
    den_layout l;
    den_layout_make(&dc, &l);

    /* the recommender's constants: E_i and each f_m */
    int64_t npar = rec_layout(&rc, NULL, NULL, NULL, NULL), d = rc.d, I = rc.items;
    float *rp = ts_alloc((size_t)npar * 4);
    if (!rp) cli_die("out of memory");
    rec_params p;
    rec_layout(&rc, rp, &p, NULL, NULL);
    if (!rec_params_load(&bag, &rc, rp, (uint64_t)o.seed))
        cli_note("no recommender in the inputs: using its initialisation from seed %d", o.seed);
    denoiser dz[REC_MAXMOD] = {0};
    for (int m = 0; m < rc.nmod; m++) {
        snprintf(dz[m].name, sizeof dz[m].name, "%s", rc.mod[m]);
        dz[m].f = ts_alloc((size_t)(I * d) * 4);
        if (!dz[m].f) cli_die("out of memory for the denoisers");
        rec_transform_out(&rc, &p, m, feat[m], dz[m].f);
        load_denoiser(&bag, &l, m, &o, &dz[m]);
    }
    const float *E = p.item;
    int64_t epoch = cli_i64(&bag, "denoise/epoch", 0);
    if (!rng_fits(epoch + o.epochs - 1, rc.nmod - 1, R->rows - 1))
        cli_die("epoch %lld, %d modalities or %lld users do not fit the random streams' fields (common/rng.h)",
                (long long)(epoch + o.epochs - 1), rc.nmod, (long long)R->rows);
    cli_note("%lld users, %lld items, %d denoisers of %lld parameters, %d steps", (long long)R->rows,
             (long long)I, rc.nmod, (long long)l.total, o.steps);

    float *grad = ts_alloc((size_t)l.total * 4);
    den_work *w = den_work_new(&dc, &l, o.chunk);
    chunk_buf cb;
    int64_t ci = (int64_t)o.chunk * I;
    cb.x0 = ts_alloc((size_t)ci * 4); cb.xt = ts_alloc((size_t)ci * 4);
    cb.mask = ts_alloc((size_t)ci * 4); cb.dout = ts_alloc((size_t)ci * 4);
    cb.scratch = ts_alloc((size_t)(2 * o.chunk * d) * 4);
    cb.t = malloc((size_t)o.chunk * 4);
    cb.diff = malloc((size_t)o.chunk * 8); cb.gc = malloc((size_t)o.chunk * 8);
    int32_t *order = malloc((size_t)R->rows * 4);
    if (!grad || !w || !cb.x0 || !cb.xt || !cb.mask || !cb.dout || !cb.scratch || !cb.t || !order)
        cli_die("out of memory");

    adam_cfg ac = adam_default(o.lr);
    char json[2048];
    for (int e = 0; e < o.epochs; e++, epoch++) {
        double t0 = cli_seconds();
        rng_t r;
        rng_seed(&r, (uint64_t)o.seed, rng_stream(RNG_DENOISE_ORDER, epoch, 0, 0));
        for (int64_t u = 0; u < R->rows; u++) order[u] = (int32_t)u;
        for (int64_t k = R->rows - 1; k > 0; k--) {
            int64_t j = (int64_t)rng_below(&r, (uint64_t)k + 1);
            int32_t tmp = order[k]; order[k] = order[j]; order[j] = tmp;
        }
        for (int m = 0; m < rc.nmod; m++) dz[m].loss = dz[m].diff = dz[m].gc = 0;
        int64_t nb = (R->rows + o.batch - 1) / o.batch;
        for (int64_t bi = 0; bi < nb; bi++) {
            int64_t off = bi * o.batch, b = R->rows - off < o.batch ? R->rows - off : o.batch;
            for (int m = 0; m < rc.nmod; m++) {
                memset(grad, 0, (size_t)l.total * 4);
                double loss = 0;
                for (int64_t k = 0; k < b; k += o.chunk) {
                    int64_t cbn = b - k < o.chunk ? b - k : o.chunk;
                    loss += train_chunk(&o, &dc, &l, &sched, R, E, d, &dz[m], m, epoch, order + off + k, cbn, b, w,
                                        &cb, grad);
                }
                if (!isfinite(loss))
                    cli_die("epoch %lld, batch %lld, denoiser %s: the loss is not finite", (long long)epoch,
                            (long long)bi, dz[m].name);
                dz[m].loss += loss;
                dz[m].step++;
                adam_update(&ac, dz[m].step, dz[m].p, grad, dz[m].m, dz[m].v, l.total);
            }
            cli_progress(bi + 1, nb, "epoch %lld, batch", (long long)epoch);
        }
        cli_progress_end();
        size_t k = (size_t)snprintf(json, sizeof json, "{\"stage\": \"diffuse\", \"epoch\": %lld, \"batches\": %lld",
                                    (long long)epoch, (long long)nb);
        for (int m = 0; m < rc.nmod; m++)
            k += (size_t)snprintf(json + k, sizeof json - k, ", \"loss/%s\": %.6g, \"diff/%s\": %.6g, \"gc/%s\": %.6g",
                                  dz[m].name, dz[m].loss / (double)nb, dz[m].name, dz[m].diff / (double)R->rows,
                                  dz[m].name, dz[m].gc / (double)R->rows);
        snprintf(json + k, sizeof json - k, ", \"seconds\": %.3f}", cli_seconds() - t0);
        cli_note("%s", json);
        if (o.log) cli_append_line(o.log, json);
    }

    ts_writer *out = cli_open(&c);
    for (int m = 0; m < rc.nmod; m++) write_denoiser(&c, out, &l, &dz[m]);
    int64_t one = 1, nh = 6;
    cli_write_dense(&c, out, "denoise/epoch", DT_I64, 1, &one, &epoch);
    double hyper[6] = {o.steps, o.noise_scale, o.noise_min, o.noise_max, o.d_emb_size, o.norm};
    cli_write_dense(&c, out, "denoise/hyper", DT_F64, 1, &nh, hyper);
    ts_record *log = ts_meta_new("log/diffuse", json);
    if (!log) cli_die("out of memory");
    cli_write(&c, out, log);
    cli_close(&c, out, &bag);
    return 0;
}

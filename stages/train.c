/* train: one or more epochs of DiffMM's recommender (ALGORITHM.md 3-6).
 *
 * Reads `train`, `graph/ui`, the item features `feat/<m>` and the
 * modality graphs `graph/<m>` (graph/ui stands in for a missing one; with
 * no features it is plain LightGCN), plus its own state when resuming
 * (`model/...`, `adam/...`, `model/epoch`; absent state is initialised from
 * --seed).  Each epoch: one negative per interaction, shuffled batches,
 * forward over the whole graph, BPR + regularisation + contrastive loss,
 * backward, Adam.  Writes the state to continue exactly, `emb/user` and
 * `emb/item` computed after the update with the epoch's graphs, and a
 * `log/train` record with the epoch's mean losses and timings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/adam.h"
#include "cli/cli.h"
#include "kernels/dn.h"
#include "kernels/gemm.h"
#include "model/rec.h"
#include "kernels/rng.h"
#include "kernels/sp.h"

typedef struct {
    double reg, ssl_reg, temp, ris_lambda, ris_adj_lambda, lr;
    int trans, cl_method, gnn_layer, latdim, batch, seed, epochs;
    const char *log, *precision;
} options;

/* Everything one epoch needs, resolved from the inputs. */
typedef struct {
    rec_config cfg;
    rec_graphs g;
    ts_csr adj_t, g_t[REC_MAXMOD];
    const ts_csr *train;
    int64_t np;                   /* parameter count */
    float *param, *grad, *m, *v;  /* [np] each, laid out by rec_layout */
    rec_params p, gp;
    adam_cfg adam;                /* adam.step: steps taken */
    int64_t epoch;                /* epochs completed before this run */
} state;

/* Sums over an epoch, reported as means per batch. */
typedef struct {
    double bpr, reg, cl, total;
    double t_forward, t_loss, t_backward, t_adam, t_total;
    int64_t batches;
} epoch_log;

/* ---- inputs ---- */

static void transpose_or_die(const ts_csr *a, ts_csr *at)
{
    if (sp_transpose(a, at) < 0) cli_die("out of memory transposing a graph");
}

/* Each modality's graph: graph/<m>, or graph/ui standing in for it. */
static void find_graphs(ts_bag *bag, state *s)
{
    int64_t N = s->cfg.users + s->cfg.items;
    for (int m = 0; m < s->cfg.nmod; m++) {
        char gname[96];
        snprintf(gname, sizeof gname, "graph/%s", s->cfg.mod[m]);
        if (ts_bag_get(bag, gname)) {
            s->g.g[m] = cli_need_csr(bag, gname, N, N);
            transpose_or_die(s->g.g[m], &s->g_t[m]);
            s->g.g_t[m] = &s->g_t[m];
        } else {
            s->g.g[m] = s->g.adj;             /* no diffusion-made graph: graph/ui stands in */
            s->g.g_t[m] = s->g.adj_t;
        }
    }
}

/* Parameters and Adam state: from the inputs, or initialised from --seed. */
static void load_state(ts_bag *bag, const options *o, state *s)
{
    s->np = rec_layout(&s->cfg, NULL, NULL, NULL, NULL);
    s->param = ts_alloc((size_t)s->np * 4);
    s->grad = ts_alloc((size_t)s->np * 4);
    s->m = ts_alloc((size_t)s->np * 4);
    s->v = ts_alloc((size_t)s->np * 4);
    if (!s->param || !s->grad || !s->m || !s->v) cli_die("out of memory for %lld parameters", (long long)s->np);
    rec_layout(&s->cfg, s->param, &s->p, NULL, NULL);
    rec_layout(&s->cfg, s->grad, &s->gp, NULL, NULL);
    rec_counters n;
    char err[512];
    int found = rec_state_load(bag, &s->cfg, s->param, s->m, s->v, (uint64_t)o->seed, &n, err, sizeof err);
    if (found < 0) cli_die("%s", err);
    if (!found) cli_note("initialised %lld parameters from seed %d", (long long)s->np, o->seed);
    s->adam = adam_default(o->lr);
    s->adam.step = n.adam_step;
    s->epoch = n.epoch;
}

static void setup(ts_bag *bag, const options *o, state *s)
{
    s->train = cli_need_csr(bag, "train", -1, -1);
    rec_config *cfg = &s->cfg;
    cfg->users = s->train->rows;
    cfg->items = s->train->cols;
    cfg->d = o->latdim;
    cfg->trans = o->trans;
    cfg->gnn_layer = o->gnn_layer;
    cfg->ris_lambda = o->ris_lambda;
    cfg->ris_adj_lambda = o->ris_adj_lambda;
    int64_t N = cfg->users + cfg->items;
    s->g.adj = cli_need_csr(bag, "graph/ui", N, N);
    transpose_or_die(s->g.adj, &s->adj_t);
    s->g.adj_t = &s->adj_t;
    char err[512];
    if (rec_modalities(bag, cfg, s->g.feat, err, sizeof err) < 0) cli_die("%s", err);
    find_graphs(bag, s);
    load_state(bag, o, s);
    if (!rng_fits(s->epoch + o->epochs - 1, 0, 0))
        cli_die("epoch %lld does not fit the random streams' fields (common/kernels/rng.h)", (long long)(s->epoch + o->epochs - 1));
}

/* ---- one epoch ---- */

/* Is (u, j) a training pair?  Binary search in u's sorted row. */
static int is_pair(const ts_csr *R, int64_t u, int32_t j)
{
    int64_t lo = R->indptr[u], hi = R->indptr[u + 1];
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (R->indices[mid] < j) lo = mid + 1;
        else hi = mid;
    }
    return lo < R->indptr[u + 1] && R->indices[lo] == j;
}

/* The epoch's triples: every interaction with one negative, shuffled. */
static void make_triples(const ts_csr *R, uint64_t seed, int64_t epoch, int32_t *u, int32_t *pos, int32_t *neg)
{
    rng_t r;
    rng_seed(&r, seed, rng_stream(RNG_NEGATIVES, epoch, 0, 0));
    for (int64_t row = 0; row < R->rows; row++) {
        if (R->indptr[row + 1] - R->indptr[row] >= R->cols) cli_die("user %lld interacted with every item: no negative exists", (long long)row);
        for (int64_t k = R->indptr[row]; k < R->indptr[row + 1]; k++) {
            int32_t j;
            do j = (int32_t)rng_below(&r, (uint64_t)R->cols); while (is_pair(R, row, j));
            u[k] = (int32_t)row;
            pos[k] = R->indices[k];
            neg[k] = j;
        }
    }
    rng_seed(&r, seed, rng_stream(RNG_SHUFFLE, epoch, 0, 0));
    int32_t *const triple[3] = {u, pos, neg};
    rng_shuffle_i32(&r, R->nnz, 3, triple);
}

static void progress(int64_t epoch, int64_t b, int64_t nb, const epoch_log *l)
{
    cli_progress(b, nb, "epoch %lld, loss %.4f, batch", (long long)epoch, l->total / (double)(b ? b : 1));
}

static void run_epoch(const options *o, state *s, rec_work *w, rec_cl_work *cw, float *dX, float **dZ, epoch_log *l)
{
    const rec_config *cfg = &s->cfg;
    int64_t U = cfg->users, I = cfg->items, d = cfg->d, N = U + I, nnz = s->train->nnz;
    int32_t *u = malloc((size_t)nnz * 4), *pos = malloc((size_t)nnz * 4), *neg = malloc((size_t)nnz * 4);
    if (!u || !pos || !neg) cli_die("out of memory");
    make_triples(s->train, (uint64_t)o->seed, s->epoch, u, pos, neg);
    gemm_stats_reset();
    int use_cl = rec_cl_active(cfg, o->cl_method, o->ssl_reg);
    int64_t nb = (nnz + o->batch - 1) / o->batch;
    double t_start = cli_seconds();
    memset(l, 0, sizeof *l);
    for (int64_t bi = 0; bi < nb; bi++) {
        int64_t off = bi * o->batch, b = nnz - off < o->batch ? nnz - off : o->batch;
        const int32_t *bu = u + off, *bp = pos + off, *bn = neg + off;
        double t0 = cli_seconds();
        const float *views[REC_MAXMOD] = {0};
        const float *X = rec_forward(cfg, &s->p, &s->g, w, use_cl, views);
        double t1 = cli_seconds();
        memset(dX, 0, (size_t)(N * d) * 4);
        for (int m = 0; m < cfg->nmod && use_cl; m++) memset(dZ[m], 0, (size_t)(N * d) * 4);
        double bpr = rec_bpr(X, U, d, bu, bp, bn, b, o->batch, dX);
        double cl = use_cl ? rec_cl_batch(cfg, o->cl_method, X, views, bu, bp, b, o->temp, o->ssl_reg, dX, dZ, cw) : 0;
        double t2 = cli_seconds();
        rec_backward(cfg, &s->p, &s->g, w, dX, use_cl ? dZ : NULL, &s->gp);
        double reg = rec_reg(s->p.user, N, d, o->reg, s->gp.user);
        double total = bpr + reg + cl;
        if (!isfinite(total) || dn_nonfinite(s->grad, s->np))
            cli_die("epoch %lld, batch %lld: the loss is %s (bpr %g, reg %g, cl %g): stopping",
                    (long long)s->epoch, (long long)bi, isfinite(total) ? "finite but a gradient is not" : "not finite",
                    bpr, reg, cl);
        double t3 = cli_seconds();
        s->adam.step++;
        adam_update(&s->adam, s->adam.step, s->param, s->grad, s->m, s->v, s->np);
        double t4 = cli_seconds();
        l->bpr += bpr; l->reg += reg; l->cl += cl; l->total += total;
        l->t_forward += t1 - t0; l->t_loss += t2 - t1; l->t_backward += t3 - t2; l->t_adam += t4 - t3;
        l->batches++;
        progress(s->epoch, bi + 1, nb, l);
    }
    cli_progress_end();
    l->t_total = cli_seconds() - t_start;
    free(u); free(pos); free(neg);
    s->epoch++;
}

/* ---- output ---- */

static void log_json(const state *s, const epoch_log *l, char *buf, size_t cap)
{
    double n = l->batches ? (double)l->batches : 1;
    snprintf(buf, cap,
             "{\"stage\": \"train\", \"epoch\": %lld, \"batches\": %lld, \"loss\": %.6g, \"bpr\": %.6g, "
             "\"reg\": %.6g, \"cl\": %.6g, \"seconds\": %.3f, \"t_forward\": %.3f, \"t_loss\": %.3f, "
             "\"t_backward\": %.3f, \"t_adam\": %.3f, %s}",
             (long long)s->epoch - 1, (long long)l->batches, l->total / n, l->bpr / n, l->reg / n, l->cl / n,
             l->t_total, l->t_forward, l->t_loss, l->t_backward, l->t_adam, cli_gemm_json());
}

static void write_state(ts_writer *out, const state *s, const float *X)
{
    rec_counters n = {.adam_step = s->adam.step, .epoch = s->epoch};
    rec_state_save(&s->cfg, s->param, s->m, s->v, &n, cli_emit_dense, out);
    int64_t su[2] = {s->cfg.users, s->cfg.d}, si[2] = {s->cfg.items, s->cfg.d};
    cli_write_dense(out, "emb/user", DT_F32, 2, su, X);
    cli_write_dense(out, "emb/item", DT_F32, 2, si, X + s->cfg.users * s->cfg.d);
}

int main(int argc, char **argv)
{
    options o = {.reg = 1e-5, .ssl_reg = 1e-2, .temp = 0.5, .ris_lambda = 0.5, .ris_adj_lambda = 0.2, .lr = 1e-3,
                 .trans = 0, .cl_method = 0, .gnn_layer = 1, .latdim = 64, .batch = 1024, .seed = 421, .epochs = 1,
                 .precision = "f32"};
    cli_opt opts[] = {
        {"reg", 0, CLI_FLOAT, &o.reg, "X", "L2 weight on the user and item embeddings"},
        {"ssl-reg", 0, CLI_FLOAT, &o.ssl_reg, "X", "weight of the contrastive loss (0: none)"},
        {"temp", 0, CLI_FLOAT, &o.temp, "X", "contrastive temperature"},
        {"trans", 0, CLI_INT, &o.trans, "0|1", "feature transform: 0 LeakyReLU(F W), 1 linear F W^T + b"},
        {"cl-method", 0, CLI_INT, &o.cl_method, "0|1", "contrast 0: modality pairs, 1: main view vs each modality"},
        {"ris-lambda", 0, CLI_FLOAT, &o.ris_lambda, "X", "weight of normalize(X0) added to the output"},
        {"ris-adj-lambda", 0, CLI_FLOAT, &o.ris_adj_lambda, "X", "weight of the modality graph term"},
        {"gnn-layer", 0, CLI_INT, &o.gnn_layer, "L", "propagation layers (summed)"},
        {"latdim", 0, CLI_INT, &o.latdim, "D", "embedding size"},
        {"lr", 0, CLI_FLOAT, &o.lr, "X", "Adam learning rate"},
        {"batch", 0, CLI_INT, &o.batch, "B", "interactions per batch (also the BPR divisor)"},
        {"seed", 0, CLI_INT, &o.seed, "N", "seed of initialisation, negatives and shuffling"},
        {"epochs", 0, CLI_INT, &o.epochs, "N", "epochs to run in this invocation"},
        {"precision", 0, CLI_STR, &o.precision, "f32|bf16", "inputs of the dense products (bf16: f32 sums, weights, Adam)"},
        {"log", 0, CLI_STR, &o.log, "FILE", "append one JSON line of losses and timings per epoch"},
        {0},
    };
    cli_stage c = {
        .stage = "train",
        .args = "[INPUT...]",
        .summary = "Train DiffMM's recommender for --epochs epochs (default one).  Needs `train` and\n"
                   "`graph/ui`; uses every `feat/<m>` with `graph/<m>` (graph/ui when absent); no\n"
                   "features: plain LightGCN.  Resumes from `model/...` and `adam/...` when present,\n"
                   "else initialises from --seed.  Writes the state, `emb/user`, `emb/item` and\n"
                   "`log/train`.",
        .details = "examples:\n"
                   "  convert-pkl DIR | build-graph --pass | train --pass --trans 1 --cl-method 1 | evaluate\n"
                   "  train data.ts epoch3.ts -o epoch4.ts        continue from epoch 3's state",
        .opts = opts,
        .writes_stream = 1,
        .uses = "train,graph/*,feat/*,model/*,adam/m/model/*,adam/v/model/*,adam/step",
    };
    cli_parse(&c, argc, argv);
    cli_gemm_setup(o.precision);
    if (o.trans != 0 && o.trans != 1) cli_usage_error("--trans takes 0 or 1 (2, the release's mixed mode, is not supported)");
    if (o.cl_method != 0 && o.cl_method != 1) cli_usage_error("--cl-method takes 0 or 1");
    if (o.latdim < 1 || o.batch < 1 || o.epochs < 1 || o.gnn_layer < 0) cli_usage_error("--latdim, --batch, --epochs must be positive, --gnn-layer >= 0");
    if (o.temp <= 0 || o.lr <= 0) cli_usage_error("--temp and --lr must be positive");

    ts_bag bag = {0};
    cli_read_inputs(&c, &bag);

    cli_need_finite_features(&bag);
    state s = {0};
    setup(&bag, &o, &s);
    const rec_config *cfg = &s.cfg;
    int64_t N = cfg->users + cfg->items;
    cli_note("%lld users, %lld items, %lld interactions, %d modalities%s, d %lld, %lld parameters",
             (long long)cfg->users, (long long)cfg->items, (long long)s.train->nnz, cfg->nmod,
             cfg->nmod ? "" : " (LightGCN)", (long long)cfg->d, (long long)s.np);

    rec_work *w = rec_work_new(cfg);
    rec_cl_work *cw = rec_cl_work_new(o.batch, cfg->users > cfg->items ? cfg->users : cfg->items, cfg->d);
    float *dX = ts_alloc((size_t)(N * cfg->d) * 4), *dZ[REC_MAXMOD] = {0};
    for (int m = 0; m < cfg->nmod; m++) dZ[m] = ts_alloc((size_t)(N * cfg->d) * 4);
    if (!w || !cw || !dX) cli_die("out of memory");
    for (int m = 0; m < cfg->nmod; m++) if (!dZ[m]) cli_die("out of memory");

    char json[1024];
    for (int e = 0; e < o.epochs; e++) {
        epoch_log l;
        run_epoch(&o, &s, w, cw, dX, dZ, &l);
        log_json(&s, &l, json, sizeof json);
        cli_note("%s", json);
        if (o.log) cli_append_line(o.log, json);
    }
    const float *X = rec_forward(cfg, &s.p, &s.g, w, 0, NULL);   /* emb after the update */

    ts_writer *out = cli_open(&c);
    write_state(out, &s, X);
    ts_record *log = ts_meta_new("log/train", json);
    if (!log) cli_die("out of memory");
    cli_write(out, log);
    cli_close(&c, out, &bag);

    ts_record_free(log);
    rec_work_free(w);
    rec_cl_work_free(cw);
    free(dX);
    for (int m = 0; m < cfg->nmod; m++) free(dZ[m]);
    free(s.param);
    free(s.grad);
    free(s.m);
    free(s.v);
    ts_csr_free(&s.adj_t);
    for (int m = 0; m < REC_MAXMOD; m++) ts_csr_free(&s.g_t[m]);
    ts_bag_free(&bag);
    return 0;
}

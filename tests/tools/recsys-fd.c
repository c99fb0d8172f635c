/* recsys-fd: the recommender's hand-written gradients against central
 * finite differences, on a small random problem.  Every parameter is
 * perturbed in turn; the analytic gradient must satisfy
 * |fd - g| <= 2e-3 + 3e-2 |g| (float32 forward passes, h = 1e-3).
 * usage: recsys-fd [--mods M] [--trans 0|1] [--layers L] [--cl 0|1]
 *                  [--term all|bpr|reg|cl] [--seed N] [--cl-block K]
 * (--cl-block: batch rows per logits block of the contrastive loss; the
 * batch has 9 rows, so K < 9 takes the multi-block path.)
 * Prints the worst error per parameter tensor; exits 1 on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/graph.h"
#include "model/rec.h"
#include "kernels/rng.h"
#include "kernels/sp.h"
#include "kernels/gemm.h"

enum { U = 7, I = 6, D = 5, B = 9 };

static rec_config cfg;
static rec_graphs gr;
static int cl_method = 1, term_bpr = 1, term_reg = 1, term_cl = 1;
static int32_t bu[B], bp[B], bn[B];
static rec_work *work;
static rec_cl_work *clw;
static const double reg = 0.05, ssl = 0.3, temp = 0.7;

/* Total loss at p; with grad != NULL also the analytic gradient. */
static double loss_at(const rec_params *p, const rec_params *grad, float *gblock, int64_t np)
{
    int64_t n = U + I, d = cfg.d;
    const float *views[REC_MAXMOD] = {0};
    int want = term_cl && cfg.nmod > 0;
    const float *X = rec_forward(&cfg, p, &gr, work, want, views);
    float *dX = calloc((size_t)(n * d), 4), *dZ[REC_MAXMOD] = {0}, *ge = calloc((size_t)(n * d), 4);
    for (int m = 0; m < cfg.nmod; m++) dZ[m] = calloc((size_t)(n * d), 4);
    double loss = 0;
    if (term_bpr) loss += rec_bpr(X, U, d, bu, bp, bn, B, 16, dX);
    if (want) loss += rec_cl_batch(&cfg, cl_method, X, views, bu, bp, B, temp, ssl, dX, dZ, clw);
    if (term_reg) loss += rec_reg(p->user, n, d, reg, ge);
    if (grad) {
        rec_backward(&cfg, p, &gr, work, dX, want ? dZ : NULL, grad);
        if (cfg.nmod == 0 && !term_bpr && !term_cl) memset(gblock, 0, (size_t)np * 4);
        for (int64_t i = 0; i < n * d; i++) grad->user[i] += ge[i];
    }
    free(dX); free(ge);
    for (int m = 0; m < cfg.nmod; m++) free(dZ[m]);
    return loss;
}

static ts_csr random_graph(rng_t *r, int edges, double keep)
{
    int32_t u[64], i[64];
    for (int k = 0; k < edges; k++) { u[k] = (int32_t)rng_below(r, U); i[k] = (int32_t)rng_below(r, I); }
    ts_csr g;
    if (graph_normalized(U, I, edges, u, i, &g) < 0) exit(2);
    graph_dropout(&g, keep, r);          /* unsymmetric, as augment makes them */
    return g;
}

int main(int argc, char **argv)
{
    /* the product engine from DIFFMM_GEMM (tests run both), always in f32 */
    if (gemm_setup(NULL, "f32", NULL, 0) < 0) { fprintf(stderr, "DIFFMM_GEMM names no engine\n"); return 2; }
    printf("# products: %s\n", gemm_engine_name(gemm_stats_get().engine));
    int seed = 1, cl_block = 0;
    cfg.nmod = 2; cfg.trans = 1; cfg.gnn_layer = 1;
    for (int a = 1; a + 1 < argc; a += 2) {
        if (!strcmp(argv[a], "--mods")) cfg.nmod = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--trans")) cfg.trans = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--layers")) cfg.gnn_layer = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--cl")) cl_method = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--seed")) seed = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--cl-block")) cl_block = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--term")) {
            const char *t = argv[a + 1];
            term_bpr = !strcmp(t, "all") || !strcmp(t, "bpr");
            term_reg = !strcmp(t, "all") || !strcmp(t, "reg");
            term_cl = !strcmp(t, "all") || !strcmp(t, "cl");
        } else { fprintf(stderr, "recsys-fd: unknown option %s\n", argv[a]); return 2; }
    }
    cfg.users = U; cfg.items = I; cfg.d = D;
    cfg.ris_lambda = 0.5; cfg.ris_adj_lambda = 0.2;
    rng_t r;
    rng_seed(&r, (uint64_t)seed, RNG_TEST);
    ts_csr adj = random_graph(&r, 14, 1.0), adj_t, g[REC_MAXMOD], gt[REC_MAXMOD];
    sp_transpose(&adj, &adj_t);
    gr.adj = &adj; gr.adj_t = &adj_t;
    float *feat[REC_MAXMOD];
    for (int m = 0; m < cfg.nmod; m++) {
        snprintf(cfg.mod[m], sizeof cfg.mod[m], "m%d", m);
        cfg.featdim[m] = 3 + m;
        feat[m] = malloc((size_t)(I * cfg.featdim[m]) * 4);
        for (int64_t k = 0; k < I * cfg.featdim[m]; k++) feat[m][k] = (float)rng_normal(&r);
        gr.feat[m] = feat[m];
        g[m] = random_graph(&r, 8, 0.7);
        sp_transpose(&g[m], &gt[m]);
        gr.g[m] = &g[m]; gr.g_t[m] = &gt[m];
    }
    for (int k = 0; k < B; k++) {
        bu[k] = (int32_t)rng_below(&r, U); bp[k] = (int32_t)rng_below(&r, I); bn[k] = (int32_t)rng_below(&r, I);
    }
    bu[1] = bu[0]; bp[2] = bp[0];              /* repeated nodes in a batch */

    rec_tensor tens[3 * REC_MAXMOD + 3];
    int nt;
    int64_t np = rec_layout(&cfg, NULL, NULL, tens, &nt);
    float *P = malloc((size_t)np * 4), *G = calloc((size_t)np, 4);
    rec_params p, gp;
    rec_layout(&cfg, P, &p, NULL, NULL);
    rec_layout(&cfg, G, &gp, NULL, NULL);
    for (int64_t k = 0; k < np; k++) P[k] = (float)(0.5 * rng_normal(&r));
    work = rec_work_new(&cfg);
    clw = rec_cl_work_new(B, U > I ? U : I, D);
    if (clw && cl_block && rec_cl_work_block(clw, cl_block) != cl_block) {
        fprintf(stderr, "recsys-fd: --cl-block %d refused\n", cl_block);
        return 2;
    }

    loss_at(&p, &gp, G, np);
    int fails = 0;
    for (int t = 0; t < nt; t++) {
        int64_t cnt = tens[t].shape[0] * (tens[t].ndim > 1 ? tens[t].shape[1] : 1);
        double worst = 0, worst_ratio = 0;
        for (int64_t k = 0; k < cnt; k++) {
            float *x = P + tens[t].offset + k;
            float keep = *x;
            double h = 1e-3 * fmax(1.0, fabs(keep));
            *x = keep + (float)h; double lp = loss_at(&p, NULL, NULL, np);
            *x = keep - (float)h; double lm = loss_at(&p, NULL, NULL, np);
            *x = keep;
            double fd = (lp - lm) / (2 * h), an = G[tens[t].offset + k];
            double err = fabs(fd - an), ratio = err / (2e-3 + 3e-2 * fabs(an));
            if (err > worst) worst = err;
            if (ratio > worst_ratio) worst_ratio = ratio;
        }
        printf("%-28s %4lld values  max |fd - grad| %.2e  %s\n", tens[t].name, (long long)cnt, worst,
               worst_ratio <= 1 ? "ok" : "FAIL");
        fails += worst_ratio > 1;
    }
    printf("%s\n", fails ? "gradient check FAILED" : "gradient check passed");
    return fails ? 1 : 0;
}

/* recsys-golden: checks the recommender against a golden file made by the
 * authors' release (tests/fixtures/golden/recsys-*.ts, see its README): forward
 * outputs, views, every loss, every gradient and the parameters after one
 * Adam step.  Prints the largest error per tensor; exits 1 if any exceeds
 * |ours - theirs| <= 2e-5 + 2e-4 |theirs|.
 * usage: recsys-golden FILE */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/adam.h"
#include "model/rec.h"
#include "kernels/sp.h"
#include "kernels/gemm.h"

static ts_bag bag;
static int failures;

static ts_record *need(const char *name)
{
    ts_record *r = ts_bag_get(&bag, name);
    if (!r) { fprintf(stderr, "recsys-golden: no record '%s'\n", name); exit(2); }
    if (r->kind == TS_DENSE && (r->dtype == DT_F64 || r->dtype == DT_F16) && ts_record_to_f32(r) < 0) exit(2);
    return r;
}

/* A number from the meta JSON: "key": value. */
static double meta_num(const char *json, const char *key)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p) { fprintf(stderr, "recsys-golden: meta lacks %s\n", key); exit(2); }
    return strtod(p + strlen(pat), NULL);
}

static void check(const char *what, const float *ours, const float *theirs, int64_t n)
{
    double worst = 0, worst_abs = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)ours[i] - theirs[i]);
        double excess = e / (2e-5 + 2e-4 * fabs(theirs[i]));
        if (excess > worst) worst = excess;
        if (e > worst_abs) worst_abs = e;
    }
    printf("%-40s max abs err %.3g %s\n", what, worst_abs, worst <= 1 ? "ok" : "FAIL");
    failures += worst > 1;
}

static void check_rec(const char *what, const float *ours, const char *name)
{
    ts_record *r = need(name);
    check(what, ours, r->data, ts_numel(r));
}

int main(int argc, char **argv)
{
    /* the product engine from DIFFMM_GEMM (tests run both), always in f32 */
    if (gemm_setup(NULL, "f32", NULL, 0) < 0) { fprintf(stderr, "DIFFMM_GEMM names no engine\n"); return 2; }
    printf("# products: %s\n", gemm_engine_name(gemm_stats_get().engine));
    if (argc != 2) { fprintf(stderr, "usage: recsys-golden FILE\n"); return 2; }
    char err[600];
    if (ts_bag_read(&bag, argv[1], err, sizeof err) < 0) { fprintf(stderr, "recsys-golden: %s\n", err); return 2; }
    ts_record *meta = need("meta");
    char *json = ts_record_str(meta, "json");
    int file_cl = (int)meta_num(json, "cl_method");
    double temp = meta_num(json, "temp"), reg = meta_num(json, "reg"), ssl = meta_num(json, "ssl_reg");
    double divisor = meta_num(json, "bpr_divisor"), lr = meta_num(json, "lr");

    rec_config c = {0};
    ts_record *train = need("train"), *user = need("in/model/user");
    c.users = train->csr.rows;
    c.items = train->csr.cols;
    c.d = user->shape[1];
    c.trans = (int)meta_num(json, "trans");
    c.gnn_layer = (int)meta_num(json, "gnn_layer");
    c.ris_lambda = meta_num(json, "ris_lambda");
    c.ris_adj_lambda = meta_num(json, "ris_adj_lambda");
    const char *mods[] = {"image", "audio"};          /* the README's order */
    c.nmod = 2;
    rec_graphs g = {0};
    ts_csr at, gt[2];
    g.adj = &need("graph/ui")->csr;
    sp_transpose(g.adj, &at);
    g.adj_t = &at;
    for (int m = 0; m < 2; m++) {
        char name[64];
        snprintf(c.mod[m], sizeof c.mod[m], "%s", mods[m]);
        snprintf(name, sizeof name, "feat/%s", mods[m]);
        ts_record *f = need(name);
        c.featdim[m] = f->shape[1];
        g.feat[m] = f->data;
        snprintf(name, sizeof name, "graph/%s", mods[m]);
        g.g[m] = &need(name)->csr;
        sp_transpose(g.g[m], &gt[m]);
        g.g_t[m] = &gt[m];
    }

    /* parameters from in/model/..., gradients and moments alike laid out */
    rec_tensor tens[3 * REC_MAXMOD + 3];
    int nt;
    int64_t np = rec_layout(&c, NULL, NULL, tens, &nt);
    float *P = calloc((size_t)np, 4), *G = calloc((size_t)np, 4);
    float *Am = calloc((size_t)np, 4), *Av = calloc((size_t)np, 4);
    rec_params p, grad;
    rec_layout(&c, P, &p, NULL, NULL);
    rec_layout(&c, G, &grad, NULL, NULL);
    for (int i = 0; i < nt; i++) {
        char name[300];
        snprintf(name, sizeof name, "in/%.159s", tens[i].name);
        ts_record *r = need(name);
        memcpy(P + tens[i].offset, r->data, r->nbytes);
    }

    rec_work *w = rec_work_new(&c);
    const float *views[REC_MAXMOD];
    const float *X = rec_forward(&c, &p, &g, w, 1, views);
    int64_t U = c.users, I = c.items, d = c.d, n = U + I;
    check_rec("forward/user", X, "out/forward/user");
    check_rec("forward/item", X + U * d, "out/forward/item");
    for (int m = 0; m < 2; m++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "out/view/%s/user", mods[m]);
        snprintf(b, sizeof b, "out/view/%s/item", mods[m]);
        check_rec(a + 4, views[m], a);
        check_rec(b + 4, views[m] + U * d, b);
    }

    ts_record *bu = need("in/batch/users"), *bp = need("in/batch/pos"), *bn = need("in/batch/neg");
    const int32_t *u = bu->data, *pos = bp->data, *neg = bn->data;
    int64_t b = ts_numel(bu);
    rec_cl_work *cw = rec_cl_work_new(b, U > I ? U : I, d);
    float *dX = calloc((size_t)(n * d), 4), *dZ0 = calloc((size_t)(n * d), 4), *dZ1 = calloc((size_t)(n * d), 4);
    float *scratch = calloc((size_t)(n * d), 4), *scratch2 = calloc((size_t)(n * d), 4);
    float *dZ[REC_MAXMOD] = {dZ0, dZ1};
    float bpr = (float)rec_bpr(X, U, d, u, pos, neg, b, divisor, dX);
    float regl = (float)rec_reg(p.user, n, d, reg, scratch);  /* gradient added below */
    /* both contrastive methods; only the file's one feeds the gradient */
    float cl[2] = {0, 0};
    for (int method = 0; method < 2; method++) {
        float *tA = method == file_cl ? dX : scratch2, **tZ = method == file_cl ? dZ : (float *[]){scratch2, scratch2};
        cl[method] = (float)rec_cl_batch(&c, method, X, views, u, pos, b, temp, ssl, tA, tZ, cw);
    }
    float total = bpr + regl + cl[file_cl];
    check_rec("loss/bpr", &bpr, "out/loss/bpr");
    check_rec("loss/reg", &regl, "out/loss/reg");
    check_rec("loss/cl_method0", &cl[0], "out/loss/cl_method0");
    check_rec("loss/cl_method1", &cl[1], "out/loss/cl_method1");
    check_rec("loss/total", &total, "out/loss/total");

    rec_backward(&c, &p, &g, w, dX, dZ, &grad);
    for (int64_t i = 0; i < n * d; i++) G[i] += scratch[i];     /* + regularisation */
    for (int i = 0; i < nt; i++) {
        char name[300];
        snprintf(name, sizeof name, "out/grad/%.159s", tens[i].name);
        check_rec(name + 4, G + tens[i].offset, name);
    }

    adam_cfg ac = adam_default(lr);
    adam_update(&ac, 1, P, G, Am, Av, np);
    for (int i = 0; i < nt; i++) {
        char name[300];
        snprintf(name, sizeof name, "out/adam1/%.159s", tens[i].name);
        check_rec(name + 4, P + tens[i].offset, name);
    }
    printf("%s\n", failures ? "golden check FAILED" : "golden check passed");
    return failures ? 1 : 0;
}

/* denoise-fd: the denoiser against plain loops and finite differences on
 * a tiny random model: (1) den_forward (dropout mask, optional input
 * normalisation, several hidden layers) against a straightforward
 * double-precision loop; (2) den_reverse and den_reverse_folded, dense
 * and with the sparse first step, against the same loop, and the two with
 * sampling noise against each other; (3) every parameter's gradient of
 * den_loss against central differences.
 * usage: denoise-fd [--dims 7|7,5] [--emb E] [--norm 0|1] [--eloss X] [--seed N]
 * Exits 1 on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/den.h"
#include "kernels/rng.h"
#include "kernels/gemm.h"

enum { B = 5, I = 6, D = 3 };

static den_config dc;
static den_layout lay;
static den_schedule sch;
static float x0[B * I], xt[B * I], mask[B * I], E[I * D], F[I * D];
static int32_t t[B], rows[B];
static ts_csr R;
static double eloss = 0.3;

/* Plain loops: one row through the network in double. */
static void naive_row(const float *p, const float *x, int32_t step, const float *mk, double *out)
{
    int64_t e = dc.emb;
    double temb[64], emb[64], h[2][2048], in[2048];
    int64_t half = e / 2;
    for (int64_t k = 0; k < half; k++) {
        float fr = (float)exp(-log(10000.0) * (double)k / (double)half);
        temb[k] = cosf((float)step * fr);
        temb[half + k] = sinf((float)step * fr);
    }
    if (e % 2) temb[e - 1] = 0;
    for (int64_t j = 0; j < e; j++) {
        emb[j] = p[lay.b[0] + j];
        for (int64_t k = 0; k < e; k++) emb[j] += p[lay.w[0] + j * e + k] * temb[k];
    }
    double nrm = 0;
    for (int64_t i = 0; i < I; i++) nrm += (double)x[i] * x[i];
    nrm = dc.norm ? fmax(sqrt(nrm), 1e-12) : 1;
    for (int64_t i = 0; i < I; i++) in[i] = x[i] / nrm * (mk ? mk[i] : 1);
    for (int64_t j = 0; j < e; j++) in[I + j] = emb[j];
    double *cur = in;
    for (int k = 1; k < lay.nlayers; k++) {
        double *nx = h[k % 2];
        for (int64_t j = 0; j < lay.out[k]; j++) {
            double s = p[lay.b[k] + j];
            for (int64_t q = 0; q < lay.in[k]; q++) s += p[lay.w[k] + j * lay.in[k] + q] * cur[q];
            nx[j] = k + 1 < lay.nlayers ? tanh(s) : s;
        }
        cur = nx;
    }
    memcpy(out, cur, I * sizeof *out);
}

static double loss_at(const float *p, float *grad)
{
    static den_work *w;
    if (!w) w = den_work_new(&dc, &lay, B);
    float dout[B * I], scratch[2 * B * D];
    double diff[B], gc[B];
    const float *out = den_forward(&dc, &lay, p, w, xt, t, B, mask);
    double loss = den_loss(&sch, x0, &R, rows, t, B, out, E, F, D, eloss, B, dout, diff, gc, scratch);
    if (grad) den_backward(&dc, &lay, p, w, dout, B, grad);
    return loss;
}

static int compare(const char *what, const float *ours, const double *ref, int64_t n, double tol)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(ours[i] - ref[i]) / (tol * (1 + fabs(ref[i]))));
    printf("%-34s %s\n", what, worst <= 1 ? "ok" : "FAIL");
    return worst > 1;
}

int main(int argc, char **argv)
{
    /* the product engine from DIFFMM_GEMM (tests run both), always in f32 */
    if (gemm_setup(NULL, "f32", NULL, 0) < 0) { fprintf(stderr, "DIFFMM_GEMM names no engine\n"); return 2; }
    printf("# products: %s\n", gemm_engine_name(gemm_stats_get().engine));
    int seed = 1;
    const char *dims = "7";
    dc.items = I; dc.emb = 4;
    for (int a = 1; a + 1 < argc; a += 2) {
        if (!strcmp(argv[a], "--dims")) dims = argv[a + 1];
        else if (!strcmp(argv[a], "--emb")) dc.emb = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--norm")) dc.norm = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--eloss")) eloss = atof(argv[a + 1]);
        else if (!strcmp(argv[a], "--seed")) seed = atoi(argv[a + 1]);
        else { fprintf(stderr, "denoise-fd: unknown option %s\n", argv[a]); return 2; }
    }
    for (const char *p = dims; *p;) { char *end; dc.dims[dc.ndims++] = strtol(p, &end, 10); p = *end ? end + 1 : end; }
    den_layout_make(&dc, &lay);
    den_schedule_make(&sch, 5, 0.1, 1e-4, 0.02);
    rng_t r;
    rng_seed(&r, (uint64_t)seed, RNG_TEST);
    float *P = malloc((size_t)lay.total * 4), *G = calloc((size_t)lay.total, 4);
    den_init(&lay, P, &r);
    for (int64_t k = 0; k < lay.total; k++) P[k] += (float)(0.3 * rng_normal(&r));  /* away from the init's scale */
    R.rows = B; R.cols = I;
    R.indptr = calloc(B + 1, 8); R.indices = malloc(B * I * 4); R.values = malloc(B * I * 4);
    for (int u = 0; u < B; u++) {
        rows[u] = u;
        t[u] = (int32_t[]){0, 3, 4}[rng_below(&r, 3)];   /* moderate SNR weights keep the loss O(100) */
        for (int i = 0; i < I; i++) {
            int on = rng_uniform(&r) < 0.4;
            x0[u * I + i] = (float)on;
            if (on) { R.indices[R.nnz] = i; R.values[R.nnz++] = 1; }
            float a = (float)sqrt(sch.abar[t[u]]), sd = (float)sqrt(1 - sch.abar[t[u]]);
            xt[u * I + i] = a * x0[u * I + i] + sd * (float)rng_normal(&r);
            mask[u * I + i] = rng_uniform(&r) < 0.5 ? 2.0f : 0.0f;
        }
        R.indptr[u + 1] = R.nnz;
    }
    for (int k = 0; k < I * D; k++) { E[k] = (float)rng_normal(&r); F[k] = (float)rng_normal(&r); }
    int fails = 0;

    /* (1) forward against plain loops */
    den_work *w = den_work_new(&dc, &lay, B);
    const float *out = den_forward(&dc, &lay, P, w, xt, t, B, mask);
    double ref[B * I];
    for (int u = 0; u < B; u++) naive_row(P, xt + u * I, t[u], mask + u * I, ref + u * I);
    fails += compare("forward vs plain loop", out, ref, B * I, 1e-5);

    /* (2) reverse process against plain loops, dense and sparse-first */
    double xr[B * I];
    for (int k = 0; k < B * I; k++) xr[k] = x0[k];
    for (int step = sch.steps - 1; step >= 0; step--)
        for (int u = 0; u < B; u++) {
            float row[I];
            double o[I];
            for (int i = 0; i < I; i++) row[i] = (float)xr[u * I + i];
            naive_row(P, row, step, NULL, o);
            for (int i = 0; i < I; i++) xr[u * I + i] = sch.coef1[step] * o[i] + sch.coef2[step] * xr[u * I + i];
        }
    float x[B * I], *wt = malloc((size_t)(I * lay.out[1]) * 4);
    memcpy(x, x0, sizeof x);
    den_reverse(&dc, &lay, P, w, &sch, x, B, NULL, NULL, NULL);
    fails += compare("reverse (dense) vs plain loop", x, xr, B * I, 1e-4);
    memcpy(x, x0, sizeof x);
    den_first_layer_t(&dc, &lay, P, wt);
    den_reverse(&dc, &lay, P, w, &sch, x, B, &R, wt, NULL);
    fails += compare(dc.norm ? "reverse (sparse path off: norm)" : "reverse (sparse first step)", x, xr, B * I, 1e-4);
    float *fold = malloc((size_t)den_fold_size(&lay) * 4);
    den_fold_make(&dc, &lay, P, fold);
    memcpy(x, x0, sizeof x);
    int rc = den_reverse_folded(&dc, &lay, P, w, &sch, x, B, NULL, NULL, fold, NULL);
    if (dc.norm) {
        printf("%-34s %s\n", "reverse folded refuses norm", rc == -2 ? "ok" : "FAIL");
        fails += rc != -2;
    } else {
        fails += compare("reverse folded (dense x) vs loop", x, xr, B * I, 1e-4);
        memcpy(x, x0, sizeof x);
        den_reverse_folded(&dc, &lay, P, w, &sch, x, B, &R, wt, fold, NULL);
        fails += compare("reverse folded (sparse first step)", x, xr, B * I, 1e-4);
        /* sampling noise: both draw the same normals in the same order */
        float xd[B * I];
        double xdd[B * I];
        rng_t n1, n2;
        rng_seed(&n1, 9, 9);
        rng_seed(&n2, 9, 9);
        memcpy(xd, x0, sizeof xd);
        den_reverse(&dc, &lay, P, w, &sch, xd, B, NULL, NULL, &n1);
        for (int k = 0; k < B * I; k++) xdd[k] = xd[k];
        memcpy(x, x0, sizeof x);
        den_reverse_folded(&dc, &lay, P, w, &sch, x, B, &R, wt, fold, &n2);
        fails += compare("reverse folded vs direct, noise", x, xdd, B * I, 1e-4);
    }
    free(fold);

    /* (3) gradients against central differences */
    loss_at(P, G);
    for (int k = 0; k < lay.nlayers; k++)
        for (int bias = 0; bias < 2; bias++) {
            int64_t off = bias ? lay.b[k] : lay.w[k], n = bias ? lay.out[k] : lay.in[k] * lay.out[k];
            double worst = 0;
            for (int64_t q = 0; q < n; q++) {
                float keep = P[off + q];
                double h = 1e-3 * fmax(1.0, fabs(keep));
                P[off + q] = keep + (float)h; double lp = loss_at(P, NULL);
                P[off + q] = keep - (float)h; double lm = loss_at(P, NULL);
                P[off + q] = keep;
                double fd = (lp - lm) / (2 * h), an = G[off + q];
                double scale = 3e-6 * (1 + fabs(lp)) / h;        /* float noise of the loss */
                worst = fmax(worst, fabs(fd - an) / (scale + 2e-2 * fabs(an)));
            }
            printf("grad %-6s %-6s %5lld values  worst %.2f of tolerance  %s\n", lay.name[k], bias ? "bias" : "weight",
                   (long long)n, worst, worst <= 1 ? "ok" : "FAIL");
            fails += worst > 1;
        }
    printf("%s\n", fails ? "denoiser check FAILED" : "denoiser check passed");
    return fails ? 1 : 0;
}

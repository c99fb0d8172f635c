/* denoise-golden: checks the diffusion against tests/fixtures/golden/diffusion.ts
 * (see its README): the schedule, the time embedding, both losses, every
 * denoiser gradient and the reverse process with each user's top item.
 * Prints the largest error per tensor; exits 1 if any float32 value
 * exceeds |ours - theirs| <= 2e-5 + 2e-4 |theirs| (schedules: 1e-12). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/den.h"
#include "kernels/gemm.h"

static ts_bag bag;
static int failures;

static ts_record *need(const char *name)
{
    ts_record *r = ts_bag_get(&bag, name);
    if (!r) { fprintf(stderr, "denoise-golden: no record '%s'\n", name); exit(2); }
    return r;
}

static void check(const char *what, const float *ours, const float *theirs, int64_t n)
{
    double worst = 0, worst_abs = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)ours[i] - theirs[i]);
        worst = fmax(worst, e / (2e-5 + 2e-4 * fabs(theirs[i])));
        worst_abs = fmax(worst_abs, e);
    }
    printf("%-36s max abs err %.3g %s\n", what, worst_abs, worst <= 1 ? "ok" : "FAIL");
    failures += worst > 1;
}

static void check_f64(const char *what, const double *ours, const char *name)
{
    ts_record *r = need(name);
    const double *theirs = r->data;
    double worst = 0;
    for (int64_t i = 0; i < ts_numel(r); i++) worst = fmax(worst, fabs(ours[i] - theirs[i]) / fmax(1e-300, fabs(theirs[i])));
    printf("%-36s max rel err %.3g %s\n", what, worst, worst <= 1e-12 ? "ok" : "FAIL");
    failures += worst > 1e-12;
}

static const float *f32(const char *name) { return need(name)->data; }

int main(int argc, char **argv)
{
    /* the product engine from DIFFMM_GEMM (tests run both), always in f32 */
    if (gemm_setup(NULL, "f32", NULL, 0) < 0) { fprintf(stderr, "DIFFMM_GEMM names no engine\n"); return 2; }
    printf("# products: %s\n", gemm_engine_name(gemm_stats_get().engine));
    if (argc != 2) { fprintf(stderr, "usage: denoise-golden FILE\n"); return 2; }
    char err[600];
    if (ts_bag_read(&bag, argv[1], err, sizeof err) < 0) { fprintf(stderr, "denoise-golden: %s\n", err); return 2; }
    den_schedule s;
    den_schedule_make(&s, 5, 0.1, 1e-4, 0.02);
    check_f64("schedule/betas", s.betas, "out/schedule/betas");
    check_f64("schedule/alphas_cumprod", s.abar, "out/schedule/alphas_cumprod");
    check_f64("schedule/posterior_mean_coef1", s.coef1, "out/schedule/posterior_mean_coef1");
    check_f64("schedule/posterior_mean_coef2", s.coef2, "out/schedule/posterior_mean_coef2");
    check_f64("schedule/loss_weight", s.weight, "out/schedule/loss_weight");

    ts_record *x0r = need("in/x0");
    int64_t U = x0r->shape[0], I = x0r->shape[1];
    den_config c = {.items = I, .emb = 10, .ndims = 1, .dims = {need("in/denoise/in0/weight")->shape[0]}};
    den_layout l;
    den_layout_make(&c, &l);
    float *P = calloc((size_t)l.total, 4), *G = calloc((size_t)l.total, 4);
    for (int k = 0; k < l.nlayers; k++) {
        char name[64];
        snprintf(name, sizeof name, "in/denoise/%s/weight", l.name[k]);
        memcpy(P + l.w[k], f32(name), (size_t)(l.in[k] * l.out[k]) * 4);
        snprintf(name, sizeof name, "in/denoise/%s/bias", l.name[k]);
        memcpy(P + l.b[k], f32(name), (size_t)l.out[k] * 4);
    }
    const int32_t *t = need("in/t")->data;
    float *temb = malloc((size_t)(U * c.emb) * 4);
    den_time_embedding(c.emb, t, U, temb);
    check("time_embedding", temb, f32("out/time_embedding"), U * c.emb);

    /* x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise; out = den(x_t, t) */
    const float *x0 = f32("in/x0"), *noise = f32("in/noise");
    float *xt = malloc((size_t)(U * I) * 4), *dout = malloc((size_t)(U * I) * 4);
    for (int64_t u = 0; u < U; u++)
        for (int64_t i = 0; i < I; i++)
            xt[u * I + i] = (float)sqrt(s.abar[t[u]]) * x0[u * I + i] + (float)sqrt(1 - s.abar[t[u]]) * noise[u * I + i];
    den_work *w = den_work_new(&c, &l, U);
    const float *out = den_forward(&c, &l, P, w, xt, t, U, NULL);
    /* x0 as csr, for the sparse x0 E */
    ts_csr R = {.rows = U, .cols = I};
    R.indptr = calloc((size_t)U + 1, 8);
    R.indices = malloc((size_t)(U * I) * 4);
    R.values = malloc((size_t)(U * I) * 4);
    for (int64_t u = 0; u < U; u++) {
        for (int64_t i = 0; i < I; i++)
            if (x0[u * I + i] != 0) { R.indices[R.nnz] = (int32_t)i; R.values[R.nnz++] = x0[u * I + i]; }
        R.indptr[u + 1] = R.nnz;
    }
    int32_t *rows = malloc((size_t)U * 4);
    for (int64_t u = 0; u < U; u++) rows[u] = (int32_t)u;
    ts_record *emb = need("in/item_emb");
    int64_t d = emb->shape[1];
    double diff[64], gc[64];
    float *scratch = malloc((size_t)(2 * U * d) * 4);
    float total = (float)den_loss(&s, x0, &R, rows, t, U, out, emb->data, f32("in/modal_feat"), d, 0.1, U, dout,
                                  diff, gc, scratch);
    float fdiff[64], fgc[64];
    for (int64_t u = 0; u < U; u++) { fdiff[u] = (float)diff[u]; fgc[u] = (float)gc[u]; }
    check("loss/diff_per_user", fdiff, f32("out/loss/diff_per_user"), U);
    check("loss/gc_per_user", fgc, f32("out/loss/gc_per_user"), U);
    check("loss/total", &total, f32("out/loss/total"), 1);
    den_backward(&c, &l, P, w, dout, U, G);
    for (int k = 0; k < l.nlayers; k++) {
        char name[64];
        snprintf(name, sizeof name, "out/grad/denoise/%s/weight", l.name[k]);
        check(name + 4, G + l.w[k], f32(name), l.in[k] * l.out[k]);
        snprintf(name, sizeof name, "out/grad/denoise/%s/bias", l.name[k]);
        check(name + 4, G + l.b[k], f32(name), l.out[k]);
    }

    /* the reverse process from x0, dense and with the sparse first step */
    float *x = malloc((size_t)(U * I) * 4), *wt = malloc((size_t)(I * l.out[1]) * 4);
    memcpy(x, x0, (size_t)(U * I) * 4);
    den_reverse(&c, &l, P, w, &s, x, U, NULL, NULL, NULL);
    check("reverse/x (dense)", x, f32("out/reverse/x"), U * I);
    memcpy(x, x0, (size_t)(U * I) * 4);
    den_first_layer_t(&c, &l, P, wt);
    den_reverse(&c, &l, P, w, &s, x, U, &R, wt, NULL);
    check("reverse/x (sparse first step)", x, f32("out/reverse/x"), U * I);
    float *fold = malloc((size_t)den_fold_size(&l) * 4);
    den_fold_make(&c, &l, P, fold);
    memcpy(x, x0, (size_t)(U * I) * 4);
    den_reverse_folded(&c, &l, P, w, &s, x, U, NULL, NULL, fold, NULL);
    check("reverse/x (folded, dense x)", x, f32("out/reverse/x"), U * I);
    memcpy(x, x0, (size_t)(U * I) * 4);
    den_reverse_folded(&c, &l, P, w, &s, x, U, &R, wt, fold, NULL);
    check("reverse/x (folded, sparse x0)", x, f32("out/reverse/x"), U * I);
    free(fold);
    const int32_t *top = need("out/reverse/top1")->data;
    int topok = 1;
    for (int64_t u = 0; u < U; u++) {
        int64_t best = 0;
        for (int64_t i = 1; i < I; i++) if (x[u * I + i] > x[u * I + best]) best = i;
        topok &= best == top[u];
    }
    printf("%-36s %s\n", "reverse/top1", topok ? "ok" : "FAIL");
    failures += !topok;
    printf("%s\n", failures ? "golden check FAILED" : "golden check passed");
    return failures ? 1 : 0;
}

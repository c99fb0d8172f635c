/* rec_forward.c: the recommender's forward pass (ALGORITHM.md sections 4
 * and 5) and its hand-written backward pass.
 *
 * Forward, per modality m (A-hat = adj, G_m = g[m], E = [E_u; E_i]):
 *   f_m = T_m(F_m)                       transform        [I x d]
 *   A_m = [E_u; normalize(f_m)]                           [N x d]
 *   H_m = adj A_m + adj [ (adj A_m)[:U]; E_i ] + lambda_adj G_m E
 *   Z_m = sum_{l<=L} adj^l (G_m A_m)     view (section 5)
 * X0 = sum_m softmax(w)_m H_m;  X = sum_{l<=L} adj^l X0 + lambda normalize(X0).
 * With no modalities (LightGCN): X = sum_{l<=L} adj^l E.
 * The backward pass walks the same steps in reverse with the transposed
 * graphs (edge dropout makes G_m unsymmetric). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dn.h"
#include "kernels/gemm.h"
#include "model/rec.h"
#include "kernels/sp.h"

struct rec_work {
    int64_t n, d;
    float *fpre[REC_MAXMOD];   /* [I x d] transform before LeakyReLU (trans 0) */
    float *f[REC_MAXMOD];      /* [I x d] transform output */
    float *fnorm[REC_MAXMOD];  /* [I] row norms of f */
    float *a[REC_MAXMOD];      /* [N x d] A_m = [E_u; normalize(f_m)] */
    float *h[REC_MAXMOD];      /* [N x d] H_m */
    float *z[REC_MAXMOD];      /* [N x d] Z_m */
    float *x0, *x0n;           /* [N x d] X0 and normalize(X0) */
    float *x0norm;             /* [N] */
    float *x;                  /* [N x d] final embeddings */
    float *t[5];               /* [N x d] scratch */
    float *di;                 /* [I x d] scratch */
};

rec_work *rec_work_new(const rec_config *cfg)
{
    rec_work *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    int64_t n = cfg->users + cfg->items, d = cfg->d, I = cfg->items;
    w->n = n;
    w->d = d;
    int ok = 1;
#define GET(p, cnt) ok &= ((p) = ts_alloc((size_t)(cnt) * sizeof(float))) != NULL
    for (int m = 0; m < cfg->nmod; m++) {
        if (cfg->trans == 0) GET(w->fpre[m], I * d);
        GET(w->f[m], I * d);
        GET(w->fnorm[m], I);
        GET(w->a[m], n * d);
        GET(w->h[m], n * d);
        GET(w->z[m], n * d);
    }
    GET(w->x0, n * d);
    GET(w->x0n, n * d);
    GET(w->x0norm, n);
    GET(w->x, n * d);
    for (int i = 0; i < 5; i++) GET(w->t[i], n * d);
    GET(w->di, I * d);
#undef GET
    if (!ok) { rec_work_free(w); return NULL; }
    return w;
}

void rec_work_free(rec_work *w)
{
    if (!w) return;
    for (int m = 0; m < REC_MAXMOD; m++) {
        free(w->fpre[m]); free(w->f[m]); free(w->fnorm[m]);
        free(w->a[m]); free(w->h[m]); free(w->z[m]);
    }
    free(w->x0); free(w->x0n); free(w->x0norm); free(w->x);
    for (int i = 0; i < 5; i++) free(w->t[i]);
    free(w->di);
    free(w);
}

/* out = sum_{l=0..L} adj^l in, for [n x d] matrices; s1, s2 scratch. */
static void rec_propagate(const ts_csr *adj, const float *in, int L, int64_t d, float *out, float *s1, float *s2)
{
    int64_t nd = adj->rows * d;
    if (L == 1) {                              /* the common case: one pass */
        sp_spmm_add(adj, in, d, 1, 1, in, out);
        return;
    }
    memcpy(out, in, (size_t)nd * sizeof *out);
    const float *cur = in;
    for (int l = 1; l <= L; l++) {
        float *next = (l % 2) ? s1 : s2;
        sp_spmm(adj, cur, d, 1, 0, next);
        dn_axpby(nd, 1, next, 1, out);
        cur = next;
    }
}

static void rec_softmax(const float *w, int m, double *s)
{
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < m; i++) mx = w[i] > mx ? w[i] : mx;
    for (int i = 0; i < m; i++) sum += s[i] = exp(w[i] - mx);
    for (int i = 0; i < m; i++) s[i] /= sum;
}

/* f = T_m(F_m) ([I x d]); for trans 0 also the pre-activation into pre. */
static void rec_transform_into(const rec_config *c, const rec_params *p, int m, const float *feat, float *f,
                               float *pre)
{
    int64_t I = c->items, d = c->d, D = c->featdim[m];
    if (c->trans == 1) {
        /* f = F W^T + b: [I x D] [D x d] */
        gemm_run(0, 1, I, d, D, 1, feat, D, p->trans_w[m], D, 0, f, d);
        const float *b = p->trans_b[m];
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < I; i++)
            for (int64_t k = 0; k < d; k++) f[i * d + k] += b[k];
    } else {
        /* f = LeakyReLU_0.2(F W): [I x D] [D x d] */
        gemm_run(0, 0, I, d, D, 1, feat, D, p->trans_w[m], d, 0, pre, d);
#pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < I * d; i++) f[i] = pre[i] > 0 ? pre[i] : 0.2f * pre[i];
    }
}

int rec_transform_out(const rec_config *c, const rec_params *p, int m, const float *feat, float *f)
{
    if (c->trans == 1) { rec_transform_into(c, p, m, feat, f, NULL); return 0; }
    float *pre = ts_alloc((size_t)(c->items * c->d) * sizeof *pre);
    if (!pre) return -1;
    rec_transform_into(c, p, m, feat, f, pre);
    free(pre);
    return 0;
}

/* f_m into w->f[m] (and w->fpre[m] for trans 0). */
static void rec_transform(const rec_config *c, const rec_params *p, const rec_graphs *g, rec_work *w, int m)
{
    rec_transform_into(c, p, m, g->feat[m], w->f[m], w->fpre[m]);
}

const float *rec_forward(const rec_config *c, const rec_params *p, const rec_graphs *g, rec_work *w,
                         int want_views, const float **views)
{
    int64_t U = c->users, I = c->items, d = c->d, n = U + I;
    const float *E = p->user;                     /* [N x d]: E_u then E_i */
    if (c->nmod == 0) {                           /* LightGCN */
        rec_propagate(g->adj, E, c->gnn_layer, d, w->x, w->t[0], w->t[1]);
        return w->x;
    }
    double s[REC_MAXMOD];
    rec_softmax(p->modal_weight, c->nmod, s);
    memset(w->x0, 0, (size_t)(n * d) * sizeof(float));
    for (int m = 0; m < c->nmod; m++) {
        rec_transform(c, p, g, w, m);
        float *a = w->a[m], *h = w->h[m], *b = w->t[0];
        memcpy(a, p->user, (size_t)(U * d) * sizeof *a);
        dn_normalize_rows(w->f[m], I, d, a + U * d, w->fnorm[m]);
        sp_spmm(g->adj, a, d, 1, 0, h);                          /* H1 = adj A_m */
        memcpy(b, h, (size_t)(U * d) * sizeof *b);               /* B = [H1[:U]; E_i] */
        memcpy(b + U * d, p->item, (size_t)(I * d) * sizeof *b);
        sp_spmm(g->adj, b, d, 1, 1, h);                          /* + adj B */
        sp_spmm(g->g[m], E, d, (float)c->ris_adj_lambda, 1, h);  /* + lambda_adj G_m E */
        dn_axpby(n * d, (float)s[m], h, 1, w->x0);
        if (want_views) {
            sp_spmm(g->g[m], a, d, 1, 0, w->t[0]);               /* G_m A_m */
            rec_propagate(g->adj, w->t[0], c->gnn_layer, d, w->z[m], w->t[1], w->t[2]);
            views[m] = w->z[m];
        }
    }
    rec_propagate(g->adj, w->x0, c->gnn_layer, d, w->x, w->t[0], w->t[1]);
    dn_normalize_rows(w->x0, n, d, w->x0n, w->x0norm);
    dn_axpby(n * d, (float)c->ris_lambda, w->x0n, 1, w->x);
    return w->x;
}

/* Gradient of the transform's parameters from df = dL/df_m ([I x d]). */
static void rec_transform_backward(const rec_config *c, const rec_graphs *g, rec_work *w, int m, float *df,
                                   const rec_params *grad)
{
    int64_t I = c->items, d = c->d, D = c->featdim[m];
    if (c->trans == 1) {
        /* dW = df^T F: [d x I] [I x D];  db = column sums of df */
        gemm_run(1, 0, d, D, I, 1, df, d, g->feat[m], D, 0, grad->trans_w[m], D);
        float *gb = grad->trans_b[m];
        for (int64_t k = 0; k < d; k++) gb[k] = 0;
        for (int64_t i = 0; i < I; i++)
            for (int64_t k = 0; k < d; k++) gb[k] += df[i * d + k];
    } else {
        const float *pre = w->fpre[m];
#pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < I * d; i++) df[i] *= pre[i] > 0 ? 1.0f : 0.2f;
        /* dW = F^T dpre: [D x I] [I x d] */
        gemm_run(1, 0, D, d, I, 1, g->feat[m], D, df, d, 0, grad->trans_w[m], d);
    }
}

void rec_backward(const rec_config *c, const rec_params *p, const rec_graphs *g, rec_work *w, float *dX,
                  float **dZ, const rec_params *grad)
{
    int64_t U = c->users, I = c->items, d = c->d, n = U + I;
    float *gE = grad->user;                       /* [N x d]: gradient of E_u then E_i */
    float *dx0 = w->t[0], *t1 = w->t[1], *t2 = w->t[2], *t3 = w->t[3], *t4 = w->t[4];
    /* X = sum adj^l X0 (+ lambda normalize(X0)) */
    rec_propagate(g->adj_t, dX, c->gnn_layer, d, dx0, t1, t2);
    if (c->nmod == 0) {
        memcpy(gE, dx0, (size_t)(n * d) * sizeof *gE);
        return;
    }
    for (int64_t i = 0; i < n * d; i++) dX[i] *= (float)c->ris_lambda;
    dn_normalize_rows_backward(w->x0n, w->x0norm, dX, n, d, dx0, 1);
    memset(gE, 0, (size_t)(n * d) * sizeof *gE);
    /* X0 = sum_m s_m H_m: dH_m = s_m dX0, ds_m = <H_m, dX0>, then softmax */
    double s[REC_MAXMOD], ds[REC_MAXMOD], sds = 0;
    rec_softmax(p->modal_weight, c->nmod, s);
    for (int m = 0; m < c->nmod; m++) {
        double acc = 0;
        const float *h = w->h[m];
#pragma omp parallel for reduction(+ : acc) schedule(static)
        for (int64_t i = 0; i < n * d; i++) acc += (double)h[i] * dx0[i];
        ds[m] = acc;
        sds += s[m] * acc;
    }
    for (int m = 0; m < c->nmod; m++) grad->modal_weight[m] = (float)(s[m] * (ds[m] - sds));
    for (int m = 0; m < c->nmod; m++) {
        float sm = (float)s[m];
        /* H_m = H1 + adj B + lambda_adj G_m E,  B = [H1[:U]; E_i],  H1 = adj A_m */
        sp_spmm(g->g_t[m], dx0, d, (float)c->ris_adj_lambda * sm, 1, gE);  /* dE += lambda_adj G^T dH */
        sp_spmm(g->adj_t, dx0, d, sm, 0, t1);                               /* dB = adj^T dH */
#pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < n * d; i++) t2[i] = sm * dx0[i];             /* dH1 = dH + [dB[:U]; 0] */
        dn_axpby(U * d, 1, t1, 1, t2);
        dn_axpby(I * d, 1, t1 + U * d, 1, gE + U * d);                      /* dE_i += dB[U:] */
        sp_spmm(g->adj_t, t2, d, 1, 0, t1);                                 /* dA = adj^T dH1 */
        if (dZ && dZ[m]) {                                                  /* view Z_m = sum adj^l G_m A_m */
            rec_propagate(g->adj_t, dZ[m], c->gnn_layer, d, t2, t3, t4);
            sp_spmm(g->g_t[m], t2, d, 1, 1, t1);                            /* dA += G^T dZ0 */
        }
        dn_axpby(U * d, 1, t1, 1, gE);                                      /* A = [E_u; normalize(f)] */
        dn_normalize_rows_backward(w->a[m] + U * d, w->fnorm[m], t1 + U * d, I, d, w->di, 0);
        rec_transform_backward(c, g, w, m, w->di, grad);
    }
}

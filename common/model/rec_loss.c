/* rec_loss.c: the recommender's losses and their gradients
 * (ALGORITHM.md section 6): BPR, L2 regularisation, contrastive. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dn.h"
#include "kernels/gemm.h"
#include "model/rec.h"

double rec_bpr(const float *x, int64_t users, int64_t d, const int32_t *u, const int32_t *pos,
               const int32_t *neg, int64_t b, double divisor, float *dx)
{
    double loss = 0;
    for (int64_t k = 0; k < b; k++) {       /* serial: triples share rows */
        const float *xu = x + (int64_t)u[k] * d;
        const float *xp = x + (users + pos[k]) * d, *xn = x + (users + neg[k]) * d;
        float diff = 0;
        for (int64_t j = 0; j < d; j++) diff += xu[j] * (xp[j] - xn[j]);
        /* -log sigmoid(diff) = log(1 + exp(-diff)), computed stably */
        loss += diff > 0 ? log1p(exp(-(double)diff)) : -(double)diff + log1p(exp((double)diff));
        float g = (float)(-1.0 / (1.0 + exp((double)diff)) / divisor);   /* d loss / d diff */
        float *du = dx + (int64_t)u[k] * d, *dp = dx + (users + pos[k]) * d, *dn = dx + (users + neg[k]) * d;
        for (int64_t j = 0; j < d; j++) {
            float xuj = xu[j];
            du[j] += g * (xp[j] - xn[j]);
            dp[j] += g * xuj;
            dn[j] -= g * xuj;
        }
    }
    return loss / divisor;
}

double rec_reg(const float *e, int64_t n, int64_t d, double reg, float *ge)
{
    dn_axpby(n * d, (float)(2 * reg), e, 1, ge);
    return reg * dn_sumsq(e, n * d);
}

/* The logits are made and consumed one block of batch rows at a time, so a
 * block's [rows x R] logits stay in cache between the forward product, the
 * softmax and the two backward products (on TikTok the whole [1024 x 9308]
 * S was 38 MB, past the 32 MB L3, and went to memory five times). */
#define REC_CL_MAX_BLOCK 1024
#define REC_CL_BLOCK 512

struct rec_cl_work {
    int64_t max_b, max_r, block;
    int unpacked;          /* d = 64: the backward products by dn_n64.c (OpenBLAS engine only) */
    float *an, *anorm;     /* [b x d], [b]  normalised picked rows of A */
    float *bn, *bnorm;     /* [R x d], [R]  normalised rows of B */
    float *s;              /* [block x R]   one block's logits, then their gradient */
    float *dan, *dbn;      /* [b x d], [R x d] */
    float *rowbuf;         /* [b x d] */
    double *loss;          /* [b] */
};

rec_cl_work *rec_cl_work_new(int64_t max_b, int64_t max_r, int64_t d)
{
    rec_cl_work *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->max_b = max_b;
    w->max_r = max_r;
    w->block = REC_CL_BLOCK;
    /* dn_n64.c beats OpenBLAS's sgemm at these shapes, not oneDNN (cl-bench) */
    w->unpacked = gemm_stats_get().engine == GEMM_OPENBLAS;
    int64_t rows = max_b < REC_CL_MAX_BLOCK ? max_b : REC_CL_MAX_BLOCK;
    w->an = ts_alloc((size_t)(max_b * d) * 4);
    w->anorm = ts_alloc((size_t)max_b * 4);
    w->bn = ts_alloc((size_t)(max_r * d) * 4);
    w->bnorm = ts_alloc((size_t)max_r * 4);
    w->s = ts_alloc((size_t)(rows * max_r) * 4);
    w->dan = ts_alloc((size_t)(max_b * d) * 4);
    w->dbn = ts_alloc((size_t)(max_r * d) * 4);
    w->rowbuf = ts_alloc((size_t)(max_b * d) * 4);
    w->loss = calloc((size_t)max_b, sizeof *w->loss);
    if (!w->an || !w->anorm || !w->bn || !w->bnorm || !w->s || !w->dan || !w->dbn || !w->rowbuf || !w->loss) {
        rec_cl_work_free(w);
        return NULL;
    }
    return w;
}

int64_t rec_cl_work_block(rec_cl_work *w, int64_t rows)
{
    if (rows >= 1 && rows <= REC_CL_MAX_BLOCK && rows <= w->max_b) w->block = rows;
    return w->block;
}

void rec_cl_work_unpacked(rec_cl_work *w, int on) { w->unpacked = on; }

void rec_cl_work_free(rec_cl_work *w)
{
    if (!w) return;
    free(w->an); free(w->anorm); free(w->bn); free(w->bnorm); free(w->s);
    free(w->dan); free(w->dbn); free(w->rowbuf); free(w->loss);
    free(w);
}

double rec_cl(const float *A, const float *B, int64_t R, int64_t d, const int32_t *nodes, int64_t b, double tau,
              double weight, float *dA, float *dB, rec_cl_work *w)
{
    if (b == 0) return 0;
    /* picked rows of A, and all of B, L2-normalised */
    for (int64_t k = 0; k < b; k++) memcpy(w->rowbuf + k * d, A + (int64_t)nodes[k] * d, (size_t)d * 4);
    dn_normalize_rows(w->rowbuf, b, d, w->an, w->anorm);
    dn_normalize_rows(B, R, d, w->bn, w->bnorm);
    float inv_tau = (float)(1.0 / tau);
    float scale = (float)(weight / (double)b);
    uint64_t bv = gemm_version_new();            /* bn is read by every block's products */
    for (int64_t k0 = 0; k0 < b; k0 += w->block) {
        int64_t kb = b - k0 < w->block ? b - k0 : w->block;
        const float *an = w->an + k0 * d;                                /* [kb x d] */
        /* S = an bn^T / tau: [kb x d] [d x R] */
        gemm_run_v(0, 1, kb, R, d, inv_tau, an, d, 0, w->bn, d, bv, 0, w->s, R);
        /* loss_k = logsumexp(S_k) - S_k,node_k; S becomes dLoss/dS */
        dn_softmax_xent_rows(w->s, kb, R, nodes + k0, scale, w->loss + k0);
        /* dan = dS bn / tau: [kb x R] [R x d];  dbn += dS^T an / tau: [R x kb] [kb x d] */
        if (d == 64 && w->unpacked) {
            dn_gemm_n64(kb, R, inv_tau, w->s, R, w->bn, w->dan + k0 * d);
            dn_gemm_t64(R, kb, inv_tau, w->s, R, an, k0 ? 1.0f : 0.0f, w->dbn);
        } else {
            uint64_t sv = gemm_version_new();    /* dS: read by both products */
            gemm_run_v(0, 0, kb, d, R, inv_tau, w->s, R, sv, w->bn, d, bv, 0, w->dan + k0 * d, d);
            gemm_run_v(1, 0, R, d, kb, inv_tau, w->s, R, sv, an, d, 0, k0 ? 1.0f : 0.0f, w->dbn, d);
        }
    }
    double loss = 0;
    for (int64_t k = 0; k < b; k++) loss += w->loss[k];
    /* back through the normalisations; picked rows may repeat: add serially */
    dn_normalize_rows_backward(w->an, w->anorm, w->dan, b, d, w->rowbuf, 0);
    for (int64_t k = 0; k < b; k++) {
        float *dst = dA + (int64_t)nodes[k] * d;
        const float *src = w->rowbuf + k * d;
        for (int64_t j = 0; j < d; j++) dst[j] += src[j];
    }
    dn_normalize_rows_backward(w->bn, w->bnorm, w->dbn, R, d, dB, 1);
    return weight * loss / (double)b;
}

int rec_cl_active(const rec_config *cfg, int cl_method, double ssl_reg)
{
    return cfg->nmod > 0 && ssl_reg != 0 && (cl_method == 1 || cfg->nmod >= 2);
}

double rec_cl_batch(const rec_config *cfg, int cl_method, const float *X, const float *const *views,
                    const int32_t *users, const int32_t *items, int64_t b, double tau, double weight, float *dX,
                    float **dZ, rec_cl_work *ws)
{
    int64_t U = cfg->users, I = cfg->items, d = cfg->d;
    double cl = 0;
    if (cl_method == 1) {
        for (int m = 0; m < cfg->nmod; m++) {
            cl += rec_cl(X, views[m], U, d, users, b, tau, weight, dX, dZ[m], ws);
            cl += rec_cl(X + U * d, views[m] + U * d, I, d, items, b, tau, weight, dX + U * d, dZ[m] + U * d, ws);
        }
    } else {
        for (int m = 0; m < cfg->nmod; m++)
            for (int m2 = m + 1; m2 < cfg->nmod; m2++) {
                cl += rec_cl(views[m], views[m2], U, d, users, b, tau, weight, dZ[m], dZ[m2], ws);
                cl += rec_cl(views[m] + U * d, views[m2] + U * d, I, d, items, b, tau, weight, dZ[m] + U * d,
                             dZ[m2] + U * d, ws);
            }
    }
    return cl;
}

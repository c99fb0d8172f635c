/* den.c: the diffusion schedule, the denoiser MLP (forward and
 * backward through OpenBLAS) and the training loss; see den.h. */
#include "model/den.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dn.h"
#include "kernels/gemm.h"
#include "kernels/sp.h"

int den_schedule_make(den_schedule *s, int steps, double scale, double nmin, double nmax)
{
    if (steps < 1 || steps > DEN_MAXSTEPS || scale <= 0) return -1;
    memset(s, 0, sizeof *s);
    s->steps = steps;
    double abar_lin[DEN_MAXSTEPS];
    for (int i = 0; i < steps; i++) {            /* np.linspace(s*min, s*max, T) */
        double v = steps == 1 ? scale * nmin : scale * nmin + (scale * nmax - scale * nmin) * i / (steps - 1);
        abar_lin[i] = 1 - v;
    }
    s->betas[0] = 1 - abar_lin[0];
    for (int i = 1; i < steps; i++) {
        double b = 1 - abar_lin[i] / abar_lin[i - 1];
        s->betas[i] = b < 0.999 ? b : 0.999;
    }
    s->betas[0] = 1e-4;                          /* the release's beta_fixed */
    double prod = 1;
    for (int i = 0; i < steps; i++) {
        if (!(s->betas[i] > 0 && s->betas[i] < 1)) return -1;
        prod *= 1 - s->betas[i];
        s->abar[i] = prod;
    }
    double var[DEN_MAXSTEPS];
    for (int i = 0; i < steps; i++) {
        double prev = i ? s->abar[i - 1] : 1.0;
        s->coef1[i] = s->betas[i] * sqrt(prev) / (1 - s->abar[i]);
        s->coef2[i] = (1 - prev) * sqrt(1 - s->betas[i]) / (1 - s->abar[i]);
        var[i] = s->betas[i] * (1 - prev) / (1 - s->abar[i]);
    }
    for (int i = 0; i < steps; i++)              /* log(cat([var[1], var[1:]])) */
        s->logvar[i] = log(steps > 1 ? var[i ? i : 1] : var[0] > 0 ? var[0] : 1e-20);
    for (int i = 0; i < steps; i++) {
        double snr = s->abar[i] / (1 - s->abar[i]);
        double snr_prev = i ? s->abar[i - 1] / (1 - s->abar[i - 1]) : 0;
        s->weight[i] = i ? snr_prev - snr : 1.0;
    }
    return 0;
}

void den_layout_make(const den_config *c, den_layout *l)
{
    memset(l, 0, sizeof *l);
    int64_t sizes[2 * DEN_MAXDIMS + 2];
    int n = 0;
    sizes[n++] = c->items + c->emb;               /* in: (I+e) -> dims reversed */
    for (int i = c->ndims - 1; i >= 0; i--) sizes[n++] = c->dims[i];
    for (int i = 1; i < c->ndims; i++) sizes[n++] = c->dims[i];  /* out: dims -> I */
    sizes[n++] = c->items;
    int64_t off = 0;
    l->in[0] = l->out[0] = c->emb;                /* time embedding layer */
    snprintf(l->name[0], sizeof l->name[0], "emb");
    l->nlayers = 1;
    for (int i = 0; i + 1 < n; i++) {
        int k = l->nlayers++;
        l->in[k] = sizes[i];
        l->out[k] = sizes[i + 1];
        if (i < c->ndims) snprintf(l->name[k], sizeof l->name[k], "in%d", i);
        else snprintf(l->name[k], sizeof l->name[k], "out%d", i - c->ndims);
    }
    for (int k = 0; k < l->nlayers; k++) {
        l->w[k] = off;
        off += l->in[k] * l->out[k];
        l->b[k] = off;
        off += l->out[k];
        if (k > 0 && k + 1 < l->nlayers && l->out[k] > l->widest) l->widest = l->out[k];
    }
    l->total = off;
}

void den_init(const den_layout *l, float *p, rng_t *r)
{
    for (int k = 0; k < l->nlayers; k++) {
        float std = (float)sqrt(2.0 / (double)(l->in[k] + l->out[k]));
        int64_t nw = l->in[k] * l->out[k];
        rng_normal_fill(r, p + l->w[k], nw);
        for (int64_t i = 0; i < nw; i++) p[l->w[k] + i] *= std;
        rng_normal_fill(r, p + l->b[k], l->out[k]);
        for (int64_t i = 0; i < l->out[k]; i++) p[l->b[k] + i] *= 0.001f;
    }
}

struct den_work {
    int64_t max_b;
    float *temb, *emb;                 /* [b x e] */
    float *xin;                        /* [b x I] the input after norm / dropout */
    const float *xused;                /* what the first layer read: x or xin */
    float *act[DEN_MAXLAYERS];         /* [b x out_k] each layer's output (after tanh) */
    float *dact[2];                    /* [b x widest] gradients through hidden layers */
    float *demb;                       /* [b x e] */
    float *norms;                      /* [b] row norms (norm = 1) */
    int32_t *t;                        /* [b] the reverse process's step */
    float *noise;                      /* [b x I] its sampling noise, made on first use */
    float *y;                          /* [b x h1] the folded reverse process's W_x x, made on first use */
    uint64_t wversion;                 /* the weights' version (den_work_weights) */
    uint64_t xversion;                 /* xused's and act[k]'s versions for the products */
    uint64_t aversion[DEN_MAXLAYERS];  /* (gemm_version_new), made when they are written */
};

den_work *den_work_new(const den_config *c, const den_layout *l, int64_t max_b)
{
    den_work *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->max_b = max_b;
    int ok = 1;
#define GET(p, n) ok &= ((p) = ts_alloc((size_t)(n) * sizeof(float))) != NULL
    GET(w->temb, max_b * c->emb);
    GET(w->emb, max_b * c->emb);
    GET(w->demb, max_b * c->emb);
    if (c->norm) GET(w->xin, max_b * c->items);  /* else made by the first dropout (den_forward) */
    for (int k = 1; k < l->nlayers; k++) GET(w->act[k], max_b * l->out[k]);
    for (int i = 0; i < 2; i++) GET(w->dact[i], max_b * (l->widest ? l->widest : 1));
    GET(w->norms, max_b);
#undef GET
    ok &= (w->t = malloc((size_t)max_b * sizeof *w->t)) != NULL;
    if (!ok) { den_work_free(w); return NULL; }
    return w;
}

void den_work_weights(den_work *w, uint64_t version) { w->wversion = version; }

void den_work_free(den_work *w)
{
    if (!w) return;
    free(w->temb); free(w->emb); free(w->demb); free(w->xin);
    for (int k = 0; k < DEN_MAXLAYERS; k++) free(w->act[k]);
    free(w->dact[0]); free(w->dact[1]);
    free(w->norms); free(w->t); free(w->noise); free(w->y);
    free(w);
}

void den_time_embedding(int64_t e, const int32_t *t, int64_t b, float *out)
{
    int64_t half = e / 2;
    for (int64_t i = 0; i < b; i++) {
        for (int64_t k = 0; k < half; k++) {
            float freq = (float)exp(-log(10000.0) * (double)k / (double)half);
            float arg = (float)t[i] * freq;
            out[i * e + k] = cosf(arg);
            out[i * e + half + k] = sinf(arg);
        }
        if (e % 2) out[i * e + e - 1] = 0;       /* the release pads odd sizes */
    }
}

/* y [b x n] = x [b x m] W^T + bias, x of version vx (0: none), W [n x m]
 * (ld = row length of W) of the given version (gemm_run_weights). */
static void den_linear(int64_t b, int64_t n, int64_t m, const float *x, int64_t ldx, uint64_t vx, const float *W,
                       int64_t ldw, const float *bias, float *y, uint64_t version)
{
#pragma omp parallel for schedule(static) if (b * n > 65536)
    for (int64_t i = 0; i < b; i++) memcpy(y + i * n, bias, (size_t)n * sizeof *y);
    gemm_run_weights(0, 1, b, n, m, 1, x, ldx, vx, W, ldw, version, 1, y, n);
}


/* Layers 2 .. upto-1 on w->act[1] ([b x out_1]): each into w->act[k], tanh
 * after all but the network's last layer. */
static void den_layers(const den_layout *l, const float *p, den_work *w, int64_t b, int upto)
{
    for (int k = 2; k < upto; k++) {
        den_linear(b, l->out[k], l->in[k], w->act[k - 1], l->in[k], w->aversion[k - 1], p + l->w[k], l->in[k],
                   p + l->b[k], w->act[k], w->wversion);
        if (k + 1 < l->nlayers) dn_tanh(w->act[k], b * l->out[k]);
        w->aversion[k] = gemm_version_new();
    }
}
const float *den_forward(const den_config *c, const den_layout *l, const float *p, den_work *w, const float *x,
                         const int32_t *t, int64_t b, const float *keep_mask)
{
    int64_t I = c->items, e = c->emb;
    den_time_embedding(e, t, b, w->temb);
    den_linear(b, e, e, w->temb, e, 0, p + l->w[0], e, p + l->b[0], w->emb, w->wversion);
    /* the row input: optional L2 normalisation, then dropout */
    const float *xin = x;
    if (!c->norm && keep_mask && !w->xin && !(w->xin = ts_alloc_uninit((size_t)(w->max_b * I) * sizeof *x)))
        return NULL;
    if (c->norm || keep_mask) {
        if (c->norm) {
            dn_normalize_rows(x, b, I, w->xin, w->norms);
        } else {
            memcpy(w->xin, x, (size_t)(b * I) * sizeof *x);
        }
        if (keep_mask) {
            float *xi = w->xin;
#pragma omp parallel for simd schedule(static)
            for (int64_t i = 0; i < b * I; i++) xi[i] *= keep_mask[i];
        }
        xin = w->xin;
    }
    w->xused = xin;
    w->xversion = gemm_version_new();            /* den_backward reads it again */
    /* first in-layer over [x, emb]: two products into one output */
    int64_t h = l->out[1], ld = l->in[1];
    den_linear(b, h, I, xin, I, w->xversion, p + l->w[1], ld, p + l->b[1], w->act[1], w->wversion);
    gemm_run_weights(0, 1, b, h, e, 1, w->emb, e, 0, p + l->w[1] + I, ld, w->wversion, 1, w->act[1], h);
    dn_tanh(w->act[1], b * h);
    w->aversion[1] = gemm_version_new();
    den_layers(l, p, w, b, l->nlayers);
    return w->act[l->nlayers - 1];
}

/* Column sums of g [b x n] added into bias gradient gb [n]. */
static void den_colsum(const float *g, int64_t b, int64_t n, float *gb)
{
#pragma omp parallel for schedule(static) if (n > 256)
    for (int64_t j = 0; j < n; j++) {
        float s = 0;
        for (int64_t i = 0; i < b; i++) s += g[i * n + j];
        gb[j] += s;
    }
}

void den_backward(const den_config *c, const den_layout *l, const float *p, den_work *w, float *dout, int64_t b,
                  float *grad)
{
    int64_t I = c->items, e = c->emb;
    float *g = dout;                             /* gradient of layer k's output */
    int cur = 0;
    for (int k = l->nlayers - 1; k >= 1; k--) {
        int64_t n = l->out[k], m = l->in[k];
        if (k + 1 < l->nlayers) {                /* through tanh: (1 - a^2) */
            const float *a = w->act[k];
#pragma omp parallel for simd schedule(static)
            for (int64_t i = 0; i < b * n; i++) g[i] *= 1 - a[i] * a[i];
        }
        uint64_t gv = gemm_version_new();        /* g is read by two or three products */
        den_colsum(g, b, n, grad + l->b[k]);
        if (k >= 2) {
            /* dW = g^T a_{k-1}: [n x b] [b x m];  g_{k-1} = g W: [b x n] [n x m] */
            gemm_run_v(1, 0, n, m, b, 1, g, n, gv, w->act[k - 1], m, w->aversion[k - 1], 1, grad + l->w[k], m);
            float *gn = w->dact[cur];
            gemm_run_weights(0, 0, b, m, n, 1, g, n, gv, p + l->w[k], m, w->wversion, 0, gn, m);
            g = gn;
            cur ^= 1;
        } else {
            /* first in-layer: its input is [x_in, emb] */
            const float *x = w->xused;
            gemm_run_v(1, 0, n, I, b, 1, g, n, gv, x, I, w->xversion, 1, grad + l->w[1], m);
            gemm_run_v(1, 0, n, e, b, 1, g, n, gv, w->emb, e, 0, 1, grad + l->w[1] + I, m);
            gemm_run_weights(0, 0, b, e, n, 1, g, n, gv, p + l->w[1] + I, m, w->wversion, 0, w->demb, e);
        }
    }
    /* time embedding layer: emb = temb We^T + be */
    den_colsum(w->demb, b, e, grad + l->b[0]);
    gemm_run(1, 0, e, e, b, 1, w->demb, e, w->temb, e, 1, grad + l->w[0], e);
}

double den_loss(const den_schedule *s, const float *x0, const ts_csr *R, const int32_t *rows, const int32_t *t,
                int64_t b, const float *out, const float *E, const float *F, int64_t d, double e_loss,
                int64_t count, float *dout, double *diff, double *gc, float *scratch)
{
    int64_t I = R->cols;
    float *of = scratch, *xe = scratch + b * d;  /* [b x d] out F, x0 E */
    gemm_run_weights(0, 0, b, d, I, 1, out, I, 0, F, d, 0, 0, of, d);    /* F: constant */
    /* per row, in parallel; the rows' terms are summed in row order below,
     * so the loss does not depend on the number of threads */
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < b; i++) {            /* x0 E from the sparse rows */
        float *dst = xe + i * d;
        memset(dst, 0, (size_t)d * sizeof *dst);
        for (int64_t k = R->indptr[rows[i]]; k < R->indptr[rows[i] + 1]; k++) {
            const float *er = E + (int64_t)R->indices[k] * d;
            float v = R->values[k];
            for (int64_t j = 0; j < d; j++) dst[j] += v * er[j];
        }
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < b; i++) {
        double wt = s->weight[t[i]], se = 0, sg = 0;
        const float *o = out + i * I, *x = x0 + i * I;
        float *g = dout + i * I;
        float cd = (float)(wt * 2.0 / (double)I / (double)count);
        for (int64_t j = 0; j < I; j++) {
            float r = o[j] - x[j];
            se += (double)r * r;
            g[j] = cd * r;
        }
        float *gi = of + i * d;                  /* becomes d loss / d (out F) */
        const float *xi = xe + i * d;
        float cg = (float)(e_loss * 2.0 / (double)d / (double)count);
        for (int64_t j = 0; j < d; j++) {
            float r = gi[j] - xi[j];
            sg += (double)r * r;
            gi[j] = cg * r;
        }
        diff[i] = wt * se / (double)I;
        gc[i] = sg / (double)d;
    }
    double total = 0;
    for (int64_t i = 0; i < b; i++) total += (diff[i] + e_loss * gc[i]) / (double)count;
    /* dout += d(out F) F^T: [b x d] [d x I] */
    gemm_run_weights(0, 1, b, I, d, 1, of, d, 0, F, d, 0, 1, dout, I);
    return total;
}

void den_first_layer_t(const den_config *c, const den_layout *l, const float *p, float *wt)
{
    int64_t I = c->items, h = l->out[1], ld = l->in[1];
    const float *W = p + l->w[1];                /* [h x (I+e)] */
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < I; i++)
        for (int64_t j = 0; j < h; j++) wt[i * h + j] = W[j * ld + i];
}

/* The first forward of the reverse process from sparse rows x0. */
static const float *den_forward_sparse(const den_config *c, const den_layout *l, const float *p, den_work *w,
                                       const ts_csr *x0, const float *wt, const int32_t *t, int64_t b)
{
    int64_t e = c->emb, I = c->items, h = l->out[1], ld = l->in[1];
    den_time_embedding(e, t, b, w->temb);
    den_linear(b, e, e, w->temb, e, 0, p + l->w[0], e, p + l->b[0], w->emb, w->wversion);
    float *a = w->act[1];
    for (int64_t i = 0; i < b; i++) memcpy(a + i * h, p + l->b[1], (size_t)h * sizeof *a);
    sp_spmm(x0, wt, h, 1, 1, a);                 /* x0 W_x^T as a gather of rows of W_x^T */
    gemm_run_weights(0, 1, b, h, e, 1, w->emb, e, 0, p + l->w[1] + I, ld, w->wversion, 1, a, h);
    dn_tanh(a, b * h);
    w->aversion[1] = gemm_version_new();
    den_layers(l, p, w, b, l->nlayers);
    return w->act[l->nlayers - 1];
}

int den_reverse(const den_config *c, const den_layout *l, const float *p, den_work *w, const den_schedule *s,
                float *x, int64_t b, const ts_csr *x0, const float *wt_first, rng_t *noise_rng)
{
    int64_t I = c->items;
    int32_t *t = w->t;
    if (noise_rng && !w->noise && !(w->noise = ts_alloc((size_t)(w->max_b * I) * sizeof *w->noise))) return -1;
    float *noise = noise_rng ? w->noise : NULL;
    for (int step = s->steps - 1; step >= 0; step--) {
        for (int64_t i = 0; i < b; i++) t[i] = step;
        const float *out = (step == s->steps - 1 && x0 && wt_first && !c->norm)
                               ? den_forward_sparse(c, l, p, w, x0, wt_first, t, b)
                               : den_forward(c, l, p, w, x, t, b, NULL);
        if (!out) return -1;
        float c1 = (float)s->coef1[step], c2 = (float)s->coef2[step];
#pragma omp parallel for simd schedule(static)
        for (int64_t i = 0; i < b * I; i++) x[i] = c1 * out[i] + c2 * x[i];
        if (noise && step > 0) {                 /* x += exp(0.5 log var) * N(0, 1) */
            rng_normal_fill(noise_rng, noise, b * I);
            float sd = (float)exp(0.5 * s->logvar[step]);
            for (int64_t i = 0; i < b * I; i++) x[i] += sd * noise[i];
        }
    }
    return 0;
}

int64_t den_fold_size(const den_layout *l) { return l->out[1] * l->in[l->nlayers - 1] + l->out[1]; }

void den_fold_make(const den_config *c, const den_layout *l, const float *p, float *fold)
{
    int64_t I = c->items, h1 = l->out[1], ld = l->in[1], last = l->nlayers - 1, hl = l->in[last];
    const float *Wx = p + l->w[1], *Wo = p + l->w[last], *bo = p + l->b[last];  /* [h1 x (I+e)], [I x hl], [I] */
    gemm_run(0, 0, h1, hl, I, 1, Wx, ld, Wo, hl, 0, fold, hl);   /* M = W_x W_out: [h1 x I] [I x hl] */
    float *mb = fold + h1 * hl;                  /* W_x b_out: [h1], in double */
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < h1; j++) {
        double s = 0;
        for (int64_t i = 0; i < I; i++) s += (double)Wx[j * ld + i] * bo[i];
        mb[j] = (float)s;
    }
}

int den_reverse_folded(const den_config *c, const den_layout *l, const float *p, den_work *w, const den_schedule *s,
                       float *x, int64_t b, const ts_csr *x0, const float *wt_first, const float *fold,
                       rng_t *noise_rng)
{
    int64_t I = c->items, e = c->emb, h1 = l->out[1], ld = l->in[1], last = l->nlayers - 1, hl = l->in[last];
    if (c->norm) return -2;
    if (!w->y && !(w->y = ts_alloc((size_t)(w->max_b * h1) * sizeof *w->y))) return -1;
    if (noise_rng && !w->noise && !(w->noise = ts_alloc((size_t)(w->max_b * I) * sizeof *w->noise))) return -1;
    float *y = w->y, *u = w->dact[0];            /* y [b x h1]; u [h1] the step's emb part and bias */
    const float *M = fold, *mb = fold + h1 * hl; /* [h1 x hl], [h1] */
    uint64_t mversion = w->wversion;             /* M changes with the weights */
    if (x0 && wt_first) sp_spmm(x0, wt_first, h1, 1, 0, y);                    /* x0 W_x^T, sparse */
    else gemm_run_weights(0, 1, b, h1, I, 1, x, I, 0, p + l->w[1], ld, w->wversion, 0, y, h1);
    for (int step = s->steps - 1; step >= 0; step--) {
        int32_t t = step;                        /* u = W_e' (W_emb phi(t) + b_emb) + b_in0 */
        den_time_embedding(e, &t, 1, w->temb);
        den_linear(1, e, e, w->temb, e, 0, p + l->w[0], e, p + l->b[0], w->emb, w->wversion);
        memcpy(u, p + l->b[1], (size_t)h1 * sizeof *u);
        gemm_run_weights(0, 1, 1, h1, e, 1, w->emb, e, 0, p + l->w[1] + I, ld, w->wversion, 1, u, h1);
        float *a = w->act[1];
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < b; i++)
            for (int64_t j = 0; j < h1; j++) a[i * h1 + j] = y[i * h1 + j] + u[j];
        dn_tanh(a, b * h1);
        w->aversion[1] = gemm_version_new();
        den_layers(l, p, w, b, last);
        const float *hid = w->act[last - 1];     /* [b x hl] the last layer's input */
        float c1 = (float)s->coef1[step], c2 = (float)s->coef2[step];
        if (step > 0) {                          /* y = c1 (hid M^T + W_x b_out) + c2 y */
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < b; i++)
                for (int64_t j = 0; j < h1; j++) y[i * h1 + j] = c2 * y[i * h1 + j] + c1 * mb[j];
            gemm_run_weights(0, 1, b, h1, hl, c1, hid, hl, 0, M, hl, mversion, 1, y, h1);
            if (noise_rng) {                     /* x += sd N(0, 1), the draws den_reverse makes: y += sd W_x noise */
                rng_normal_fill(noise_rng, w->noise, b * I);
                float sd = (float)exp(0.5 * s->logvar[step]);
                gemm_run_weights(0, 1, b, h1, I, sd, w->noise, I, 0, p + l->w[1], ld, w->wversion, 1, y, h1);
            }
        } else {                                 /* coef2_0 = 0 (abar_{-1} = 1): x = c1 out */
            den_linear(b, I, hl, hid, hl, 0, p + l->w[last], hl, p + l->b[last], x, w->wversion);
            if (c1 != 1.0f) {
#pragma omp parallel for simd schedule(static)
                for (int64_t i = 0; i < b * I; i++) x[i] *= c1;
            }
        }
    }
    return 0;
}

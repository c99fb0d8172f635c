/* dn.c: dense float32 kernels; see dn.h.  Hot loops are compiled
 * twice (AVX2+FMA and baseline x86-64) and chosen at load time. */
#include "kernels/dn.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && !defined(__clang__)
#define DN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DN_CLONES
#endif

#define NORM_EPS 1e-12f

/* One row of dn_normalize_rows; returns the unclamped norm. */
DN_CLONES
static float dn_normalize_row(const float *x, int64_t d, float *y)
{
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t k = 0; k < d; k++) s += x[k] * x[k];
    float r = sqrtf(s);
    float inv = 1.0f / (r > NORM_EPS ? r : NORM_EPS);
    for (int64_t k = 0; k < d; k++) y[k] = x[k] * inv;
    return r;
}

void dn_normalize_rows(const float *x, int64_t n, int64_t d, float *y, float *norm)
{
#pragma omp parallel for schedule(static) if (n * d > 32768)
    for (int64_t i = 0; i < n; i++) norm[i] = dn_normalize_row(x + i * d, d, y + i * d);
}

/* One row of the backward pass: y = x / max(r, eps).  Where r > eps,
 * dx = (dy - y (y . dy)) / r; else the clamp is constant and dx = dy / eps. */
DN_CLONES
static void dn_normalize_row_backward(const float *y, float r, const float *dy, int64_t d, float *dx, int acc)
{
    float dot = 0, inv;
    if (r > NORM_EPS) {
#pragma omp simd reduction(+ : dot)
        for (int64_t k = 0; k < d; k++) dot += y[k] * dy[k];
        inv = 1.0f / r;
    } else {
        inv = 1.0f / NORM_EPS;
    }
    if (acc) for (int64_t k = 0; k < d; k++) dx[k] += (dy[k] - y[k] * dot) * inv;
    else for (int64_t k = 0; k < d; k++) dx[k] = (dy[k] - y[k] * dot) * inv;
}

void dn_normalize_rows_backward(const float *y, const float *norm, const float *dy, int64_t n, int64_t d,
                                float *dx, int acc)
{
#pragma omp parallel for schedule(static) if (n * d > 32768)
    for (int64_t i = 0; i < n; i++) dn_normalize_row_backward(y + i * d, norm[i], dy + i * d, d, dx + i * d, acc);
}

/* exp(x) = 2^k * p(r), x = k ln2 + r, |r| <= ln2/2, with a degree-6
 * polynomial for e^r and the exponent assembled in the float's bits.
 * k is rounded by adding 1.5 * 2^23, which leaves it in the low bits of
 * that sum; 2^k is built from those bits with unsigned arithmetic, never
 * by converting a float to int, so a NaN (which passes the clamps) has no
 * undefined behaviour on the way and comes out as NaN through r and p.
 * dn_exp_one is the body of the vectorised loops below, inlined into each
 * so that it vectorises with them. */
static inline __attribute__((always_inline)) float dn_exp_one(float v)
{
    v = v < -87.3f ? -87.3f : v;                 /* two plain selects: the loop vectorises */
    v = v > 88.7f ? 88.7f : v;
    float t = v * 1.44269504088896341f + 12582912.0f; /* 12582912 + k, k = round(v / ln2) */
    float k = t - 12582912.0f;
    float r = v - k * 0.693145751953125f;          /* ln2 split in two */
    r = r - k * 1.428606765330187e-06f;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t tb;
    memcpy(&tb, &t, 4);
    uint32_t bits = (tb + 127u) << 23;            /* 2^k: the sum's low bits are k (-126..128), mod 2^9 */
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

DN_CLONES
static void dn_exp_block(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = dn_exp_one(x[i]);
}

void dn_exp(const float *x, float *y, int64_t n) { dn_exp_block(x, y, n); }

/* tanh of one block, vectorised: below |x| = 0.625 the Taylor series to
 * x^19 (the next term is under 1e-8 of the value there); above it
 * (1 - e) / (1 + e) with e = exp(-2|x|) by dn_exp_one, where
 * 1 - e >= 0.71 loses nothing to cancellation.  Both are computed and one
 * is selected, so the loop has no branch. */
DN_CLONES
static void dn_tanh_block(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i], a = fabsf(v), z = v * v;
        float p = -0.00023912911424355248f;
        p = p * z + 0.000590027440945586f;
        p = p * z - 0.0014558343870513183f;
        p = p * z + 0.003592128036572481f;
        p = p * z - 0.008863235529902197f;
        p = p * z + 0.021869488536155203f;
        p = p * z - 0.05396825396825397f;
        p = p * z + 0.13333333333333333f;
        p = p * z - 0.3333333333333333f;
        float small = copysignf(v + v * (z * p), v);       /* keeps -0 */
        float e = dn_exp_one(-2.0f * a);
        float large = copysignf((1.0f - e) / (1.0f + e), v);
        x[i] = a < 0.625f ? small : large;
    }
}

void dn_tanh(float *x, int64_t n)
{
    const int64_t step = 4096;
#pragma omp parallel for schedule(static) if (n > 8 * step)
    for (int64_t i = 0; i < n; i += step) dn_tanh_block(x + i, n - i < step ? n - i : step);
}

DN_CLONES
static float dn_row_max(const float *s, int64_t m)
{
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < m; j++) mx = s[j] > mx ? s[j] : mx;
    return mx;
}

DN_CLONES
static float dn_row_shift_sum(float *s, int64_t m, float mx)
{
    float sum = 0;
    for (int64_t j = 0; j < m; j++) { s[j] -= mx; }
    dn_exp_block(s, s, m);
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < m; j++) sum += s[j];
    return sum;
}

DN_CLONES
static void dn_row_scale(float *s, int64_t m, float c)
{
    for (int64_t j = 0; j < m; j++) s[j] *= c;
}

void dn_softmax_xent_rows(float *S, int64_t n, int64_t m, const int32_t *t, float scale, double *loss)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float *s = S + i * m;
        float target = s[t[i]];
        float mx = dn_row_max(s, m);
        float sum = dn_row_shift_sum(s, m, mx);
        loss[i] = (double)mx + log((double)sum) - (double)target;
        dn_row_scale(s, m, scale / sum);
        s[t[i]] -= scale;
    }
}

void dn_axpby(int64_t n, float a, const float *x, float b, float *y)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) y[i] = a * x[i] + b * y[i];
}

double dn_sumsq(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

int dn_nonfinite(const float *x, int64_t n)
{
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad |= !isfinite(x[i]);
    return bad;
}

/* ---- top-k selection ---- */

/* Ranking order: a is worse than b (lower score, or equal and later). */
static inline int dn_worse(float sa, int32_t ia, float sb, int32_t ib)
{
    return sa < sb || (sa == sb && ia > ib);
}

/* Heap [n] of (score, item) with the worst at the root: restore from p down. */
static void dn_sift_down(float *hs, int32_t *hi, int n, int p)
{
    float s = hs[p];
    int32_t i = hi[p];
    for (;;) {
        int c = 2 * p + 1;
        if (c >= n) break;
        if (c + 1 < n && dn_worse(hs[c + 1], hi[c + 1], hs[c], hi[c])) c++;
        if (!dn_worse(hs[c], hi[c], s, i)) break;
        hs[p] = hs[c];
        hi[p] = hi[c];
        p = c;
    }
    hs[p] = s;
    hi[p] = i;
}

/* Heap as above: move the new entry at p up. */
static void dn_sift_up(float *hs, int32_t *hi, int p)
{
    float s = hs[p];
    int32_t i = hi[p];
    while (p > 0) {
        int q = (p - 1) / 2;
        if (!dn_worse(s, i, hs[q], hi[q])) break;
        hs[p] = hs[q];
        hi[p] = hi[q];
        p = q;
    }
    hs[p] = s;
    hi[p] = i;
}

int dn_topk(const float *row, int64_t items, int k, float *top_s, int32_t *top_i)
{
    int n = 0;
    int64_t j = 0;
    for (; j < items && n < k; j++) {
        if (!(row[j] > -INFINITY)) continue;
        top_s[n] = row[j];
        top_i[n] = (int32_t)j;
        dn_sift_up(top_s, top_i, n++);
    }
    for (; j < items; j++)
        if (row[j] > top_s[0]) {    /* equal scores: the earlier item stays */
            top_s[0] = row[j];
            top_i[0] = (int32_t)j;
            dn_sift_down(top_s, top_i, k, 0);
        }
    for (int m = n - 1; m > 0; m--) {   /* heap sort: worst to the back */
        float s = top_s[0];
        int32_t i = top_i[0];
        top_s[0] = top_s[m];
        top_i[0] = top_i[m];
        top_s[m] = s;
        top_i[m] = i;
        dn_sift_down(top_s, top_i, m, 0);
    }
    for (int m = n; m < k; m++) {
        top_s[m] = -INFINITY;
        top_i[m] = -1;
    }
    return n;
}

void dn_zero(float *x, int64_t n)
{
    const int64_t step = 1 << 18;
#pragma omp parallel for schedule(static) if (n > 4 * step)
    for (int64_t i = 0; i < n; i += step) memset(x + i, 0, (size_t)(n - i < step ? n - i : step) * sizeof *x);
}

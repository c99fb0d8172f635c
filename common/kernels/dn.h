/* dn.h: dense float32 kernels (prefix dn_): the contrastive loss's
 * unpacked 64-wide products, row normalisation and its backward pass,
 * row-wise softmax cross-entropy, and small element-wise helpers.  All
 * matrices are row-major.  Element-wise loops run under OpenMP.  General
 * matrix products are gemm.h's. */
#ifndef DN_H
#define DN_H

#include <stdint.h>

/* Products with a 64-wide result that read a large G in place, unpacked
 * (dn_n64.c), for the contrastive loss's backward pass:
 *   dn_gemm_n64: Y [M x 64] = alpha G [M x K] B [K x 64]
 *   dn_gemm_t64: Y [R x 64] = beta Y + alpha G^T A, G [M x R], A [M x 64]
 * G's rows are ldg floats apart; B, A and Y rows are 64 floats. */
void dn_gemm_n64(int64_t M, int64_t K, float alpha, const float *G, int64_t ldg, const float *B, float *Y);
void dn_gemm_t64(int64_t R, int64_t M, float alpha, const float *G, int64_t ldg, const float *A, float beta,
                 float *Y);

/* y = x / max(||x||, 1e-12) per row; norm[i] = ||x_i|| (unclamped).
 * x, y: n x d (may alias); norm: n. */
void dn_normalize_rows(const float *x, int64_t n, int64_t d, float *y, float *norm);
/* Backward of dn_normalize_rows: dx (+)= J^T dy, from y, norm and dy
 * (n x d).  acc: add into dx instead of overwriting. */
void dn_normalize_rows_backward(const float *y, const float *norm, const float *dy, int64_t n, int64_t d,
                                float *dx, int acc);

/* exp of n values, vectorised (relative error below 2e-7 on [-87, 88]). */
void dn_exp(const float *x, float *y, int64_t n);
/* tanh of n values in place, vectorised and in parallel (a few float32
 * ulps from the exact value; NaN stays NaN). */
void dn_tanh(float *x, int64_t n);

/* Row-wise softmax cross-entropy of logits S (n x m) with target column
 * t[i]: loss[i] = logsumexp(S_i) - S_i,t[i].  S is overwritten with
 * scale * (softmax(S_i) - onehot(t[i])), the gradient of
 * scale * sum_i loss[i]. */
void dn_softmax_xent_rows(float *S, int64_t n, int64_t m, const int32_t *t, float scale, double *loss);

/* x = 0 over n values, in parallel (a large gradient between steps). */
void dn_zero(float *x, int64_t n);
/* y = a*x + b*y over n values. */
void dn_axpby(int64_t n, float a, const float *x, float b, float *y);
/* Sum of squares, in double. */
double dn_sumsq(const float *x, int64_t n);
/* Any NaN or infinity among n values? */
int dn_nonfinite(const float *x, int64_t n);
/* The k best entries of row [n] (-inf and NaN never count), best first,
 * equal scores to the lower index, into top_s [k] / top_i [k], padded with
 * -inf / -1.  Returns how many are real. */
int dn_topk(const float *row, int64_t n, int k, float *top_s, int32_t *top_i);

#endif

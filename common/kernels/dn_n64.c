/* dn_n64.c: the two products of the contrastive loss's backward pass
 * whose narrow side is the embedding size 64, without OpenBLAS's packing.
 *
 * Both read the large logits gradient G ([rows x R], in cache after the
 * softmax) once, straight from where it lies: OpenBLAS packs G into its own
 * buffer for each of the two products, which on TikTok cost a fifth of a
 * train epoch.  Six rows (or six columns of G) by 64 columns of the result
 * live in 24 vector accumulators; the other operand is read one 64-float
 * row at a time.  GCC vector extensions, cloned for AVX-512, AVX2 and
 * baseline x86-64 like the rest of dn.c; the Makefile builds this file
 * with -ffp-contract=fast so that a*b+c becomes one FMA (about 15% faster
 * than separate multiplies and adds here).
 *
 * Measured (tests/tools/cl-bench, TikTok's 1024 x 9308 x 64): each product
 * 7-8 ms against OpenBLAS's 13-16 ms while the machine's memory was busy;
 * the whole contrastive loss then 32 ms against 43 ms, and 27 against 28-31
 * ms when it was not. */
#include <string.h>

#include "kernels/dn.h"

#if defined(__x86_64__) && !defined(__clang__)
#define N64_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define N64_CLONES
#endif

/* 16 floats at any 4-byte alignment, allowed to alias float arrays */
typedef float v16 __attribute__((vector_size(64), aligned(4), may_alias));

#define TILE 6        /* rows of the result per register tile */
#define KC 512        /* rows of B per L2-sized chunk in dn_gemm_n64 */

#define LOAD16(p) (*(const v16 *)(p))
#define STORE16(p, v) (*(v16 *)(p) = (v))

/* acc[q] += g[q] * b for q < TILE: b one 64-float row. */
#define N64_FMA_ROW(acc, g, b0, b1, b2, b3)                                           \
    do {                                                                               \
        _Pragma("GCC unroll 6") for (int q = 0; q < TILE; q++) {                      \
            (acc)[q][0] += (g)[q] * (b0); (acc)[q][1] += (g)[q] * (b1);                 \
            (acc)[q][2] += (g)[q] * (b2); (acc)[q][3] += (g)[q] * (b3);                 \
        }                                                                              \
    } while (0)

/* Y[M x 64] = alpha G[M x K] B[K x 64] (+ Y when acc_y): rows i0 .. i0+5, B rows k0 .. k1-1. */
N64_CLONES
static void n64_rows_tile(int64_t i0, int64_t k0, int64_t k1, float alpha, const float *G, int64_t ldg,
                          const float *B, float *Y, int acc_y)
{
    v16 acc[TILE][4];
    memset(acc, 0, sizeof acc);
    for (int64_t k = k0; k < k1; k++) {
        const float *b = B + k * 64;
        v16 b0 = LOAD16(b), b1 = LOAD16(b + 16), b2 = LOAD16(b + 32), b3 = LOAD16(b + 48);
        float g[TILE];
        for (int q = 0; q < TILE; q++) g[q] = G[(i0 + q) * ldg + k];
        N64_FMA_ROW(acc, g, b0, b1, b2, b3);
    }
    for (int q = 0; q < TILE; q++)
        for (int j = 0; j < 4; j++) {
            float *y = Y + (i0 + q) * 64 + 16 * j;
            v16 r = alpha * acc[q][j];
            if (acc_y) r += LOAD16(y);
            STORE16(y, r);
        }
}

void dn_gemm_n64(int64_t M, int64_t K, float alpha, const float *G, int64_t ldg, const float *B, float *Y)
{
    int64_t full = M / TILE * TILE;
    if (K == 0) memset(Y, 0, (size_t)(full * 64) * sizeof *Y);
    for (int64_t k0 = 0; k0 < K; k0 += KC) {              /* B's rows k0 .. k1-1 stay in L2 */
        int64_t k1 = K - k0 < KC ? K : k0 + KC;
#pragma omp parallel for schedule(static)
        for (int64_t i0 = 0; i0 < full; i0 += TILE) n64_rows_tile(i0, k0, k1, alpha, G, ldg, B, Y, k0 > 0);
    }
    for (int64_t i = full; i < M; i++)                 /* the last M % 6 rows, plainly */
        for (int64_t j = 0; j < 64; j++) {
            float s = 0;
            for (int64_t k = 0; k < K; k++) s += G[i * ldg + k] * B[k * 64 + j];
            Y[i * 64 + j] = alpha * s;
        }
}

/* Y[r0 .. r0+5] = beta Y + alpha (G^T A) for those rows: G [M x ldg], A [M x 64]. */
N64_CLONES
static void n64_cols_tile(int64_t r0, int64_t M, float alpha, const float *G, int64_t ldg, const float *A,
                          float beta, float *Y)
{
    v16 acc[TILE][4];
    memset(acc, 0, sizeof acc);
    for (int64_t i = 0; i < M; i++) {
        const float *a = A + i * 64;
        v16 a0 = LOAD16(a), a1 = LOAD16(a + 16), a2 = LOAD16(a + 32), a3 = LOAD16(a + 48);
        const float *g = G + i * ldg + r0;
        N64_FMA_ROW(acc, g, a0, a1, a2, a3);
    }
    for (int q = 0; q < TILE; q++)
        for (int j = 0; j < 4; j++) {
            float *y = Y + (r0 + q) * 64 + 16 * j;
            v16 r = alpha * acc[q][j];
            if (beta != 0.0f) r += beta * LOAD16(y);
            STORE16(y, r);
        }
}

void dn_gemm_t64(int64_t R, int64_t M, float alpha, const float *G, int64_t ldg, const float *A, float beta,
                 float *Y)
{
    int64_t full = R / TILE * TILE;
#pragma omp parallel for schedule(static)
    for (int64_t r0 = 0; r0 < full; r0 += TILE) n64_cols_tile(r0, M, alpha, G, ldg, A, beta, Y);
    for (int64_t r = full; r < R; r++)                 /* the last R % 6 rows, plainly */
        for (int64_t j = 0; j < 64; j++) {
            float s = 0;
            for (int64_t i = 0; i < M; i++) s += G[i * ldg + r] * A[i * 64 + j];
            Y[r * 64 + j] = (beta != 0.0f ? beta * Y[r * 64 + j] : 0.0f) + alpha * s;
        }
}

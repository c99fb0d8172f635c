/* gemm64-check: dn_n64.c's unpacked products against OpenBLAS (gemm_run before gemm_setup)
 * on random operands: row counts that are and are not multiples of the
 * 6-row tile, strided G, beta 0 and 1, K across several L2 chunks; then
 * the whole contrastive loss at d = 64 with both backward paths.
 * Prints the largest relative difference of each; exit 1 above 1e-5. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dn.h"
#include "kernels/gemm.h"
#include "model/rec.h"
#include "kernels/rng.h"
#include "io/ts.h"

static float *randn(rng_t *r, int64_t n)
{
    float *x = ts_alloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) x[i] = (float)rng_normal(r);
    return x;
}

/* max |a - b| / (max |b| + tiny) */
static double reldiff(const float *a, const float *b, int64_t n)
{
    double d = 0, m = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return d / m;
}

static int report(const char *what, double rd)
{
    int bad = !(rd <= 1e-5);
    printf("%-44s max rel diff %.2e %s\n", what, rd, bad ? "FAIL" : "ok");
    return bad;
}

int main(void)
{
    rng_t r;
    rng_seed(&r, 5, RNG_TEST);
    int bad = 0;
    static const int64_t Ms[] = {1, 6, 13, 512}, Ks[] = {1, 7, 1300};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 3; b++) {
            int64_t M = Ms[a], K = Ks[b], ldg = K + 3;
            float *G = randn(&r, M * ldg), *B = randn(&r, K * 64);
            float *Y = randn(&r, M * 64), *Yref = ts_alloc((size_t)(M * 64) * 4);
            dn_gemm_n64(M, K, 0.7f, G, ldg, B, Y);
            gemm_run(0, 0, M, 64, K, 0.7f, G, ldg, B, 64, 0, Yref, 64);
            char what[96];
            snprintf(what, sizeof what, "G B     M %lld K %lld", (long long)M, (long long)K);
            bad |= report(what, reldiff(Y, Yref, M * 64));
            /* G^T A with G [K x M] (K rows, ldg = M + 3), beta 0 then 1 */
            int64_t R = M, rows = K, ld = R + 3;
            float *G2 = randn(&r, rows * ld), *A = randn(&r, rows * 64);
            for (int beta = 0; beta <= 1; beta++) {
                float *Z = randn(&r, R * 64), *Zref = ts_alloc((size_t)(R * 64) * 4);
                memcpy(Zref, Z, (size_t)(R * 64) * 4);
                dn_gemm_t64(R, rows, 1.3f, G2, ld, A, (float)beta, Z);
                gemm_run(1, 0, R, 64, rows, 1.3f, G2, ld, A, 64, (float)beta, Zref, 64);
                snprintf(what, sizeof what, "G^T A   R %lld rows %lld beta %d", (long long)R, (long long)rows, beta);
                bad |= report(what, reldiff(Z, Zref, R * 64));
                free(Z); free(Zref);
            }
            free(G); free(B); free(Y); free(Yref); free(G2); free(A);
        }
    /* the contrastive loss, 700 batch rows in blocks of 256 against 999 rows */
    int64_t b = 700, R = 999, d = 64;
    float *A = randn(&r, R * d), *Bm = randn(&r, R * d);
    int32_t nodes[700];
    for (int64_t k = 0; k < b; k++) nodes[k] = (int32_t)rng_below(&r, (uint64_t)R);
    float *dA[2], *dB[2];
    double loss[2];
    for (int u = 0; u < 2; u++) {
        rec_cl_work *w = rec_cl_work_new(b, R, d);
        rec_cl_work_block(w, 256);
        rec_cl_work_unpacked(w, u);
        dA[u] = ts_alloc((size_t)(R * d) * 4);
        dB[u] = ts_alloc((size_t)(R * d) * 4);
        loss[u] = rec_cl(A, Bm, R, d, nodes, b, 0.5, 0.3, dA[u], dB[u], w);
        rec_cl_work_free(w);
    }
    bad |= report("rec_cl d 64: loss", fabs(loss[1] - loss[0]) / fabs(loss[0]));
    bad |= report("rec_cl d 64: gradient of A", reldiff(dA[1], dA[0], R * d));
    bad |= report("rec_cl d 64: gradient of B", reldiff(dB[1], dB[0], R * d));
    return bad;
}

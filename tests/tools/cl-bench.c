/* cl-bench: times the contrastive loss at TikTok's shapes (1024 batch rows
 * against 9308 user rows, d = 64) and its three matrix products alone, and
 * prints the flop rates: where the recommender's epoch goes.  rec_cl is
 * timed with its logits in blocks of 1024 (all at once) down to 128 rows,
 * its backward products by gemm_run (DIFFMM_GEMM's engine) and by dn_n64.c.
 * usage: cl-bench [REPS] [f32|bf16] */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "kernels/dn.h"
#include "kernels/gemm.h"
#include "model/rec.h"
#include "kernels/rng.h"

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    const char *prec = argc > 2 ? argv[2] : "f32";
    if (gemm_setup(NULL, prec, NULL, 0) < 0) { fprintf(stderr, "DIFFMM_GEMM or the precision names nothing\n"); return 2; }
    printf("products: %s, %s\n", gemm_engine_name(gemm_stats_get().engine), prec);
    int64_t b = 1024, R = 9308, d = 64;
    float *A = ts_alloc((size_t)(R * d) * 4), *Bm = ts_alloc((size_t)(R * d) * 4);
    float *dA = ts_alloc((size_t)(R * d) * 4), *dB = ts_alloc((size_t)(R * d) * 4);
    float *S = ts_alloc((size_t)(b * R) * 4), *o = ts_alloc((size_t)(R * d) * 4);
    int32_t *nodes = malloc((size_t)b * 4);
    rng_t r;
    rng_seed(&r, 1, RNG_TEST);
    for (int64_t i = 0; i < R * d; i++) { A[i] = (float)rng_normal(&r); Bm[i] = (float)rng_normal(&r); }
    for (int64_t i = 0; i < b; i++) nodes[i] = (int32_t)rng_below(&r, (uint64_t)R);
    rec_cl_work *w = rec_cl_work_new(b, R, d);
    double flop = 2.0 * b * R * d;
    double t0 = cli_seconds();
    for (int k = 0; k < reps; k++) gemm_run(0, 1, b, R, d, 1, A, d, Bm, d, 0, S, R);
    double t1 = cli_seconds();
    for (int k = 0; k < reps; k++) gemm_run(0, 0, b, d, R, 1, S, R, Bm, d, 0, o, d);
    double t2 = cli_seconds();
    for (int k = 0; k < reps; k++) gemm_run(1, 0, R, d, b, 1, S, R, A, d, 0, o, d);
    double t3 = cli_seconds();
    int32_t *t = malloc((size_t)b * 4);
    double *loss = malloc((size_t)b * 8);
    for (int64_t i = 0; i < b; i++) t[i] = nodes[i];
    for (int k = 0; k < reps; k++) dn_softmax_xent_rows(S, b, R, t, 1.0f, loss);
    double t4 = cli_seconds();
    for (int k = 0; k < reps; k++) dn_gemm_n64(b, R, 1, S, R, Bm, o);
    double t6 = cli_seconds();
    for (int k = 0; k < reps; k++) dn_gemm_t64(R, b, 1, S, R, A, 0, o);
    double t7 = cli_seconds();
    printf("S = A B^T        [%lld x %lld x %lld]  %7.2f ms  %6.1f Gflop/s\n", (long long)b, (long long)R, (long long)d,
           (t1 - t0) / reps * 1e3, flop / ((t1 - t0) / reps) / 1e9);
    printf("dA = dS B        [%lld x %lld x %lld]  %7.2f ms  %6.1f Gflop/s  unpacked %7.2f ms  %6.1f Gflop/s\n",
           (long long)b, (long long)d, (long long)R, (t2 - t1) / reps * 1e3, flop / ((t2 - t1) / reps) / 1e9,
           (t6 - t4) / reps * 1e3, flop / ((t6 - t4) / reps) / 1e9);
    printf("dB = dS^T A      [%lld x %lld x %lld]  %7.2f ms  %6.1f Gflop/s  unpacked %7.2f ms  %6.1f Gflop/s\n",
           (long long)R, (long long)d, (long long)b, (t3 - t2) / reps * 1e3, flop / ((t3 - t2) / reps) / 1e9,
           (t7 - t6) / reps * 1e3, flop / ((t7 - t6) / reps) / 1e9);
    printf("softmax-xent     [%lld x %lld]         %7.2f ms  %6.2f ns/elem\n", (long long)b, (long long)R,
           (t4 - t3) / reps * 1e3, (t4 - t3) / reps / (double)(b * R) * 1e9);
    static const int64_t blocks[] = {1024, 512, 256, 128};
    for (int u = 0; u < 2; u++)
        for (int j = 0; j < 4; j++) {
            rec_cl_work_block(w, blocks[j]);
            rec_cl_work_unpacked(w, u);
            rec_cl(A, Bm, R, d, nodes, b, 0.5, 0.01, dA, dB, w);      /* warm */
            double s0 = cli_seconds();
            for (int k = 0; k < reps; k++) rec_cl(A, Bm, R, d, nodes, b, 0.5, 0.01, dA, dB, w);
            double tb = (cli_seconds() - s0) / reps;
            printf("rec_cl, blocks of %4lld rows, backward %-8s %7.2f ms  %6.1f Gflop/s (3 products)\n",
                   (long long)blocks[j], u ? "unpacked" : "gemm_run", tb * 1e3, 3 * flop / tb / 1e9);
        }
    return 0;
}

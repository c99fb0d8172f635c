/* sgemm-bench: OpenBLAS's sgemm rate on the shapes the epoch's dense
 * phases run: the denoiser's five products for a chunk of rows (forward
 * in -> hidden, hidden -> out; backward dW_out, dH, dW_in) and the
 * contrastive loss's three.  Median of REPS runs each, in Gflop/s, and the
 * flop-weighted harmonic mean per group: the reference the stages' rates
 * are compared with.
 * usage: sgemm-bench ITEMS USERS [CHUNK] [REPS]   (TikTok: 6710 9308) */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "kernels/dn.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds of one product C = op(A) op(B) of the given shape. */
static double time_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, int reps)
{
    float *A = ts_alloc((size_t)(M * K) * 4), *B = ts_alloc((size_t)(K * N) * 4), *C = ts_alloc((size_t)(M * N) * 4);
    for (int64_t i = 0; i < M * K; i++) A[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    for (int64_t i = 0; i < K * N; i++) B[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
    double t[64];
    dn_gemm(ta, tb, M, N, K, 1, A, ta ? M : K, B, tb ? K : N, 0, C, N);   /* warm up */
    for (int r = 0; r < reps; r++) {
        double t0 = cli_seconds();
        dn_gemm(ta, tb, M, N, K, 1, A, ta ? M : K, B, tb ? K : N, 0, C, N);
        t[r] = cli_seconds() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    free(A); free(B); free(C);
    return t[reps / 2];
}

typedef struct { const char *what; int ta, tb; int64_t M, N, K; } shape;

static void group(const char *name, const shape *s, int n, int reps)
{
    double flops = 0, secs = 0;
    for (int i = 0; i < n; i++) {
        double f = 2.0 * s[i].M * s[i].N * s[i].K, t = time_gemm(s[i].ta, s[i].tb, s[i].M, s[i].N, s[i].K, reps);
        printf("  %-28s %6lld x %6lld x %6lld  %7.1f Gflop/s\n", s[i].what, (long long)s[i].M, (long long)s[i].N,
               (long long)s[i].K, f / t / 1e9);
        flops += f;
        secs += t;
    }
    printf("%s: %.1f Gflop/s\n", name, flops / secs / 1e9);
}

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: sgemm-bench ITEMS USERS [CHUNK] [REPS]\n"); return 2; }
    int64_t ni = atol(argv[1]), nu = atol(argv[2]), b = argc > 3 ? atol(argv[3]) : 256, h = 1000, e = 10, d = 64;
    int reps = argc > 4 ? atoi(argv[4]) : 5;
    if (reps < 1 || reps > 64) reps = 5;
    printf("OpenBLAS %s, core %s, %d threads\n", openblas_get_config(), openblas_get_corename(), openblas_get_num_threads());
    shape den[] = {
        {"denoiser in: x W1^T", 0, 1, b, h, ni + e},
        {"denoiser out: h W2^T", 0, 1, b, ni, h},
        {"backward dW2 = g^T h", 1, 0, ni, h, b},
        {"backward dh = g W2", 0, 0, b, h, ni},
        {"backward dW1 = g^T x", 1, 0, h, ni, b},
    };
    group("sgemm reference, denoiser shapes", den, 5, reps);
    shape cl[] = {
        {"contrast S = a B^T", 0, 1, 1024, nu, d},
        {"contrast da = dS B", 0, 0, 1024, d, nu},
        {"contrast dB = dS^T a", 1, 0, nu, d, 1024},
    };
    group("sgemm reference, contrastive shapes", cl, 3, reps);
    return 0;
}

/* gemm-bench: the two product engines' rates (gemm.h) on the shapes the
 * epoch's dense phases run, in one run: OpenBLAS sgemm, oneDNN matmul in
 * f32 and oneDNN in bf16 (inputs bf16, f32 accumulation and output).
 * Median of REPS runs each, in Gflop/s, with the implementation oneDNN
 * chose, and per group the flop-weighted rate (total flops / total time):
 * the reference each stage's own rate is compared with (a shape that runs
 * several times per use counts that many times).
 * usage: gemm-bench ITEMS USERS [CHUNK] [REPS]   (TikTok: 6710 9308)
 * The first line is always the square 1024 x 1000 x 1000 product. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels/gemm.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct { const char *what; int ta, tb; int64_t M, N, K; int times; } shape;   /* times: runs per use */

enum { OB_F32, DN_F32, DN_BF16, NENG };
static const char *eng_name[NENG] = {"openblas-f32", "onednn-f32", "onednn-bf16"};

/* Median seconds of one product of shape s on engine `eng` (-1 when the
 * engine cannot make it); oneDNN's implementation name into impl [64]. */
static double time_gemm(const shape *s, int eng, int reps, char *impl)
{
    int64_t M = s->M, N = s->N, K = s->K, lda = s->ta ? M : K, ldb = s->tb ? K : N;
    float *A = ts_alloc((size_t)(M * K) * 4), *B = ts_alloc((size_t)(K * N) * 4), *C = ts_alloc((size_t)(M * N) * 4);
    if (!A || !B || !C) { fprintf(stderr, "gemm-bench: out of memory\n"); exit(1); }
    for (int64_t i = 0; i < M * K; i++) A[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    for (int64_t i = 0; i < K * N; i++) B[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
    double t[64], r = -1;
    gemm_precision p = eng == DN_BF16 ? GEMM_BF16 : GEMM_F32;
    impl[0] = 0;
    for (int k = -1; k < reps; k++) {                 /* k = -1: warm-up, makes the primitive */
        double t0 = cli_seconds();
        if (eng == OB_F32) {
            gemm_openblas(s->ta, s->tb, M, N, K, 1, A, lda, B, ldb, 0, C, N, GEMM_F32);
        } else if (gemm_onednn(s->ta, s->tb, M, N, K, 1, A, lda, B, ldb, 0, C, N, p) != 0) {
            snprintf(impl, 64, "%s", gemm_onednn_impl());
            goto out;
        }
        if (k >= 0) t[k] = cli_seconds() - t0;
    }
    if (eng != OB_F32) snprintf(impl, 64, "%s", gemm_onednn_impl());
    qsort(t, (size_t)reps, sizeof *t, cmp);
    r = t[reps / 2];
out:
    free(A); free(B); free(C);
    return r;
}

static void group(const char *name, const shape *s, int n, int reps)
{
    double flops = 0, secs[NENG] = {0};
    printf("%s\n", name);
    for (int i = 0; i < n; i++) {
        int times = s[i].times;                  /* weight in the group's rate */
        double f = 2.0 * s[i].M * s[i].N * s[i].K;
        printf("  %-26s %5lld x %5lld x %5lld", s[i].what, (long long)s[i].M, (long long)s[i].K, (long long)s[i].N);
        char impl[64] = "", impl_bf[64] = "", scratch[64];
        for (int e = 0; e < NENG; e++) {
            double t = time_gemm(&s[i], e, reps, e == DN_BF16 ? impl_bf : e == DN_F32 ? impl : scratch);
            if (t > 0) printf("  %7.1f", f / t / 1e9);
            else printf("  %7s", "-");
            secs[e] += t > 0 ? times * t : 1e30;
        }
        printf("  %s / %s\n", impl, impl_bf);
        flops += times * f;
    }
    printf("%s rate:", name);
    for (int e = 0; e < NENG; e++) printf(" %s %.1f", eng_name[e], flops / secs[e] / 1e9);
    printf(" Gflop/s\n");
}

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: gemm-bench ITEMS USERS [CHUNK] [REPS]\n"); return 2; }
    int64_t ni = atol(argv[1]), nu = atol(argv[2]), b = argc > 3 ? atol(argv[3]) : 1024, h = 1000, e = 10, d = 64;
    int reps = argc > 4 ? atoi(argv[4]) : 5;
    if (reps < 1 || reps > 64) reps = 5;
    printf("OpenBLAS %s, core %s, %d threads; columns: M x K x N, Gflop/s of", openblas_get_config(),
           openblas_get_corename(), openblas_get_num_threads());
    for (int k = 0; k < NENG; k++) printf(" %s", eng_name[k]);
    printf(", oneDNN's implementations\n");
    shape sq[] = {{"square", 0, 0, 1024, 1000, 1000, 1}};
    group("square", sq, 1, reps);
    shape den[] = {
        {"denoiser in: x W1^T", 0, 1, b, h, ni + e, 1},
        {"denoiser out: h W2^T", 0, 1, b, ni, h, 1},
        {"backward dW2 = g^T h", 1, 0, ni, h, b, 1},
        {"backward dh = g W2", 0, 0, b, h, ni, 1},
        {"backward dW1 = g^T x", 1, 0, h, ni, b, 1},
    };
    group("denoiser", den, 5, reps);
    shape rev[] = {   /* augment's folded reverse process per batch: T - 1 = 4 steps of y += hid M^T, one output layer */
        {"reverse step: hid M^T", 0, 1, b, h, h, 4},
        {"reverse out: h W2^T", 0, 1, b, ni, h, 1},
    };
    group("reverse", rev, 2, reps);
    shape cl[] = {
        {"contrast S = a B^T", 0, 1, 1024, nu, d, 1},
        {"contrast da = dS B", 0, 0, 1024, d, nu, 1},
        {"contrast dB = dS^T a", 1, 0, nu, d, 1024, 1},
    };
    group("contrastive", cl, 3, reps);
    return 0;
}

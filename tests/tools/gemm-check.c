/* gemm-check: the product engines of gemm.h against a product computed in
 * double, for every transpose, padded leading dimensions, alpha and beta:
 *
 *   f32 (both engines):  |C - C*| <= 2 K 2^-24 S     S_ij = sum_k |a_ik b_kj|
 *   bf16 vs the same product of the bf16-rounded inputs, in double: the same
 *        f32 bound (products of two bf16 values are exact in f32, so only
 *        the accumulation differs);
 *   bf16 vs the f32 inputs' product: |C - C*| <= (2^-7 + 2^-16 + 2 K 2^-24) S
 *        (each input off by at most 2^-8 of itself, bf16 having an 8-bit
 *        significand), and 16 times the same engine's f32 error at least:
 *        the inputs were really rounded.
 *
 * Then a two-layer network, out = tanh(x W1^T) W2^T, in bf16 on each engine
 * against double, within the bound the per-product one carries through:
 *   |d h| <= u1 |x| |W1|^T           (tanh is 1-Lipschitz)
 *   |d out| <= |d h| |W2|^T + u1 |h| |W2|^T,   u1 = 2^-7 + 2^-16 + 2 K 2^-24
 * (first order in u1), which is what the denoiser's forward pass does.
 *
 * Also the rounding itself on chosen bit patterns (ties to even, NaN,
 * overflow), beta = 0 ignoring a NaN-filled C, K = 0, and gemm_run's
 * dispatch.  Prints one line per check and exits 1 if any failed.
 * usage: gemm-check */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/ts.h"
#include "kernels/gemm.h"

static int checks, failed;

static void report(int ok, const char *fmt, const char *what, double worst, double bound)
{
    checks++;
    if (!ok) failed++;
    printf("%s ", ok ? "ok  " : "FAIL");
    printf(fmt, what, worst, bound);
    printf("\n");
}

static uint64_t lcg = 88172645463325252ull;
static float uniform(void)              /* in [-1, 1) */
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(lcg >> 11) / 9007199254740992.0 * 2 - 1);
}

typedef struct {
    int ta, tb;
    int64_t M, N, K, pa, pb, pc;        /* pads added to the leading dimensions */
    float alpha, beta;
} shape;

/* element (i, k) of op(A) */
static double at(const float *A, int t, int64_t ld, int64_t i, int64_t k) { return t ? A[k * ld + i] : A[i * ld + k]; }

/* C* = alpha op(A) op(B) + beta C0 in double, and S = |alpha| sum |a b| */
static void exact(const shape *s, const float *A, int64_t lda, const float *B, int64_t ldb, const float *C0,
                  int64_t ldc, double *ref, double *S)
{
    for (int64_t i = 0; i < s->M; i++)
        for (int64_t j = 0; j < s->N; j++) {
            double acc = 0, abs = 0;
            for (int64_t k = 0; k < s->K; k++) {
                double p = at(A, s->ta, lda, i, k) * at(B, s->tb, ldb, k, j);
                acc += p;
                abs += fabs(p);
            }
            double c0 = s->beta != 0 ? (double)s->beta * C0[i * ldc + j] : 0;
            ref[i * s->N + j] = s->alpha * acc + c0;
            S[i * s->N + j] = fabs(s->alpha) * abs + fabs(c0) + 1e-30;
        }
}

/* the largest |C - ref| / S over the product, C's padding untouched */
static double worst(const shape *s, const float *C, int64_t ldc, const double *ref, const double *S, const float *C0,
                    int *pad_ok)
{
    double w = 0;
    *pad_ok = 1;
    for (int64_t i = 0; i < s->M; i++) {
        for (int64_t j = 0; j < s->N; j++) {
            double e = fabs(C[i * ldc + j] - ref[i * s->N + j]) / S[i * s->N + j];
            if (!(e <= w)) w = e;                  /* NaN propagates */
        }
        for (int64_t j = s->N; j < ldc; j++)
            if (memcmp(&C[i * ldc + j], &C0[i * ldc + j], sizeof(float))) *pad_ok = 0;
    }
    return w;
}

static void check_shape(const shape *s)
{
    int64_t ar = s->ta ? s->K : s->M, ac = s->ta ? s->M : s->K, br = s->tb ? s->N : s->K, bc = s->tb ? s->K : s->N;
    int64_t lda = ac + s->pa, ldb = bc + s->pb, ldc = s->N + s->pc;
    float *A = ts_alloc((size_t)(ar * lda) * 4 + 4), *B = ts_alloc((size_t)(br * ldb) * 4 + 4);
    float *Ar = ts_alloc((size_t)(ar * lda) * 4 + 4), *Br = ts_alloc((size_t)(br * ldb) * 4 + 4);
    float *C0 = ts_alloc((size_t)(s->M * ldc) * 4 + 4), *C = ts_alloc((size_t)(s->M * ldc) * 4 + 4);
    double *ref = malloc((size_t)(s->M * s->N) * 8 + 8), *S = malloc((size_t)(s->M * s->N) * 8 + 8);
    double *refb = malloc((size_t)(s->M * s->N) * 8 + 8), *Sb = malloc((size_t)(s->M * s->N) * 8 + 8);
    if (!A || !B || !Ar || !Br || !C0 || !C || !ref || !S || !refb || !Sb) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (int64_t i = 0; i < ar * lda; i++) A[i] = uniform();
    for (int64_t i = 0; i < br * ldb; i++) B[i] = uniform();
    for (int64_t i = 0; i < s->M * ldc; i++) C0[i] = s->beta != 0 ? uniform() : NAN;   /* beta 0: C is not read */
    gemm_round_bf16(A, Ar, ar * lda);
    gemm_round_bf16(B, Br, br * ldb);
    exact(s, A, lda, B, ldb, C0, ldc, ref, S);
    exact(s, Ar, lda, Br, ldb, C0, ldc, refb, Sb);
    double f32 = 2.0 * (double)s->K * 0x1p-24, bf = 0x1p-7 + 0x1p-16 + f32;
    char what[160];
    double seen_f32 = 0;                  /* the engine's f32 error, measured first */
    for (int eng = 0; eng < 2; eng++)
        for (int p = 0; p < 2; p++) {
            snprintf(what, sizeof what, "%s %s %c%c %lldx%lldx%lld ld+%lld/%lld/%lld alpha %g beta %g",
                     gemm_engine_name(eng), gemm_precision_name(p), s->ta ? 'T' : 'N', s->tb ? 'T' : 'N',
                     (long long)s->M, (long long)s->K, (long long)s->N, (long long)s->pa, (long long)s->pb,
                     (long long)s->pc, s->alpha, s->beta);
            memcpy(C, C0, (size_t)(s->M * ldc) * 4);
            int ran = 0, pad_ok;
            if (eng == GEMM_OPENBLAS) {
                gemm_openblas(s->ta, s->tb, s->M, s->N, s->K, s->alpha, A, lda, B, ldb, s->beta, C, ldc, p);
                ran = 1;
            } else {
                ran = gemm_onednn(s->ta, s->tb, s->M, s->N, s->K, s->alpha, A, lda, B, ldb, s->beta, C, ldc, p) == 0;
            }
            if (!ran) { report(0, "%s: oneDNN could not make it%.0g%.0g", what, 0, 0); continue; }
            if (p == GEMM_F32) {
                double w = worst(s, C, ldc, ref, S, C0, &pad_ok);
                report(w <= f32 && pad_ok, "%s: worst |C - C*| / S %.3g, bound %.3g", what, w, f32);
                seen_f32 = w;
            } else {
                double wb = worst(s, C, ldc, refb, Sb, C0, &pad_ok);
                report(wb <= f32 && pad_ok, "%s: against the rounded inputs' product %.3g, bound %.3g", what, wb, f32);
                double w = worst(s, C, ldc, ref, S, C0, &pad_ok);
                report(w <= bf, "%s: against the f32 inputs' product %.3g, bound %.3g", what, w, bf);
                report(w > 16 * seen_f32, "%s: rounded (error %.3g above 16 x its f32 error, %.3g)", what, w,
                       16 * seen_f32);
            }
        }
    free(A); free(B); free(Ar); free(Br); free(C0); free(C); free(ref); free(S); free(refb); free(Sb);
}

static void check_rounding(void)
{
    static const struct { uint32_t in; uint16_t out; const char *what; } v[] = {
        {0x3f800000u, 0x3f80, "1"},
        {0x3f808000u, 0x3f80, "a tie rounds to the even 1"},
        {0x3f818000u, 0x3f82, "a tie rounds up to the even neighbour"},
        {0x3f808001u, 0x3f81, "just above a tie rounds up"},
        {0x3f807fffu, 0x3f80, "just below a tie rounds down"},
        {0xbf818000u, 0xbf82, "negative ties are symmetric"},
        {0x80000000u, 0x8000, "-0 stays -0"},
        {0x7f800000u, 0x7f80, "inf stays inf"},
        {0x7f7fffffu, 0x7f80, "the largest float rounds to inf"},
        {0x7f800001u, 0x7fc0, "a NaN with only low bits set stays NaN"},
        {0xffc00000u, 0xffc0, "a negative quiet NaN keeps its sign"},
        {0x00000001u, 0x0000, "the smallest subnormal rounds to 0"},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        float f, r;
        memcpy(&f, &v[i].in, 4);
        uint16_t b;
        gemm_to_bf16(&f, &b, 1);
        gemm_round_bf16(&f, &r, 1);
        uint32_t rb;
        memcpy(&rb, &r, 4);
        checks++;
        int ok = b == v[i].out && rb == (uint32_t)v[i].out << 16;
        if (!ok) failed++;
        printf("%s bf16 of %08x: %04x (want %04x), %s\n", ok ? "ok  " : "FAIL", v[i].in, b, v[i].out, v[i].what);
    }
}

static void check_dispatch(void)
{
    char err[128];
    int ok = gemm_setup("nonsense", "f32", err, sizeof err) < 0 && gemm_setup("openblas", "f16", err, sizeof err) < 0;
    checks++; failed += !ok;
    printf("%s unknown engine and precision names are refused (%s)\n", ok ? "ok  " : "FAIL", err);
    /* K = 0: C = beta C on both engines; M = 0: nothing */
    for (int e = 0; e < 2; e++) {
        gemm_setup(e ? "onednn" : "openblas", "f32", err, sizeof err);
        gemm_stats_reset();
        float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {7}, B[1] = {9};
        gemm_run(0, 0, 2, 3, 0, 1, A, 1, B, 3, 0.5f, C, 3);
        gemm_run(0, 0, 0, 3, 4, 1, A, 1, B, 3, 0.5f, C, 3);
        ok = C[0] == 0.5f && C[5] == 3.0f;
        checks++; failed += !ok;
        printf("%s %s: K = 0 scales C by beta, M = 0 does nothing\n", ok ? "ok  " : "FAIL", gemm_engine_name(e));
        float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1}, c[4];
        gemm_run(0, 0, 2, 2, 2, 1, a, 2, b, 2, 0, c, 2);
        gemm_stats g = gemm_stats_get();
        ok = c[0] == 1 && c[3] == 4 && g.engine == (gemm_engine)e && g.flops == 16 &&
             (e ? g.onednn_calls + g.fallbacks == 2 : g.openblas_calls == 2);
        checks++; failed += !ok;
        printf("%s gemm_run goes to %s and counts its flops (%g)\n", ok ? "ok  " : "FAIL", gemm_engine_name(e), g.flops);
    }
    gemm_setup(NULL, "f32", err, sizeof err);
    printf("# auto engine here: %s (oneDNN usable: %d)\n", gemm_engine_name(gemm_stats_get().engine),
           gemm_onednn_usable());
}

/* gemm_run_weights in bf16 on oneDNN: the same bits as gemm_run while the
 * weights stand, the new weights' product after a new version, and after
 * new values at the same address and version (the sampled values differ) */
static void check_weights(void)
{
    int64_t M = 64, N = 300, K = 500;              /* W [N x K] as x W^T: K x N = 150,000 >= the cache's minimum */
    float *A = malloc((size_t)(M * K) * 4), *W = malloc((size_t)(N * K) * 4);
    float *C1 = malloc((size_t)(M * N) * 4), *C2 = malloc((size_t)(M * N) * 4);
    if (!A || !W || !C1 || !C2) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (int64_t i = 0; i < M * K; i++) A[i] = uniform();
    char err[64];
    gemm_setup("onednn", "bf16", err, sizeof err);
    int ok = 1;
    for (int round = 0; round < 3; round++) {
        if (round > 0) for (int64_t i = 0; i < N * K; i++) W[i] = uniform();
        else for (int64_t i = 0; i < N * K; i++) W[i] = uniform();
        uint64_t version = round == 2 ? 1 : (uint64_t)round;   /* round 2: new values, version kept */
        for (int rep = 0; rep < 2; rep++) {              /* rep 1: from the kept copy */
            gemm_run_weights(0, 1, M, N, K, 1, A, K, 0, W, K, version, 0, C1, N);
            gemm_run(0, 1, M, N, K, 1, A, K, W, K, 0, C2, N);
            ok &= !memcmp(C1, C2, (size_t)(M * N) * 4);
        }
    }
    checks++; failed += !ok;
    printf("%s onednn bf16 weights kept between versions give gemm_run's bits, and follow new versions and values\n",
           ok ? "ok  " : "FAIL");
    gemm_setup(NULL, "f32", err, sizeof err);
    free(A); free(W); free(C1); free(C2);
}

/* gemm_run_v in bf16 on oneDNN: versioned temporaries give gemm_run's bits
 * when read again (as A, transposed A and B), after being rewritten under a
 * new version, and when more of them are live than the pool keeps (six
 * matrices read in turn, then again in reverse order). */
static void check_temps(void)
{
    enum { NT = 6 };
    int64_t M = 96, N = 200, K = 700;              /* each T [M x K] = 67,200 >= the pool's minimum */
    float *T[NT], *B = malloc((size_t)(K * N) * 4), *C1 = malloc((size_t)(K * K) * 4), *C2 = malloc((size_t)(K * K) * 4);
    uint64_t v[NT];
    if (!B || !C1 || !C2) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (int64_t i = 0; i < K * N; i++) B[i] = uniform();
    for (int k = 0; k < NT; k++) {
        if (!(T[k] = malloc((size_t)(M * K) * 4))) { fprintf(stderr, "out of memory\n"); exit(1); }
        for (int64_t i = 0; i < M * K; i++) T[k][i] = uniform();
        v[k] = 0;
    }
    char err[64];
    gemm_setup("onednn", "bf16", err, sizeof err);
    int ok = 1;
    for (int round = 0; round < 3; round++) {
        for (int q = 0; q < 2 * NT; q++) {
            int k = q < NT ? q : 2 * NT - 1 - q;
            if (round == 1 && q == k) {            /* round 1: each rewritten, with a new version */
                for (int64_t i = 0; i < M * K; i++) T[k][i] = uniform();
                v[k] = 0;
            }
            if (!v[k]) v[k] = gemm_version_new();
            /* T B: [M x K] [K x N] */
            gemm_run_v(0, 0, M, N, K, 1, T[k], K, v[k], B, N, 0, 0, C1, N);
            gemm_run(0, 0, M, N, K, 1, T[k], K, B, N, 0, C2, N);
            ok &= !memcmp(C1, C2, (size_t)(M * N) * 4);
            /* T^T T: [K x M] [M x K], both inputs the same temporary */
            gemm_run_v(1, 0, K, K, M, 1, T[k], K, v[k], T[k], K, v[k], 0, C1, K);
            gemm_run(1, 0, K, K, M, 1, T[k], K, T[k], K, 0, C2, K);
            ok &= !memcmp(C1, C2, (size_t)(K * K) * 4);
            /* T[k] as B of another temporary: T[j] T[k]^T: [M x K] [K x M] */
            int j = (k + 1) % NT;
            if (!v[j]) v[j] = gemm_version_new();
            gemm_run_v(0, 1, M, M, K, 1, T[j], K, v[j], T[k], K, v[k], 0, C1, M);
            gemm_run(0, 1, M, M, K, 1, T[j], K, T[k], K, 0, C2, M);
            ok &= !memcmp(C1, C2, (size_t)(M * M) * 4);
        }
    }
    checks++; failed += !ok;
    printf("%s onednn bf16 versioned temporaries give gemm_run's bits: read again, rewritten, more than the pool keeps\n",
           ok ? "ok  " : "FAIL");
    gemm_setup(NULL, "f32", err, sizeof err);
    for (int k = 0; k < NT; k++) free(T[k]);
    free(B); free(C1); free(C2);
}

/* out [b x m] = tanh(x [b x n] W1^T) W2^T, W1 [h x n], W2 [m x h] */
static void check_mlp(int64_t b, int64_t n, int64_t h, int64_t m)
{
    float *x = malloc((size_t)(b * n) * 4), *W1 = malloc((size_t)(h * n) * 4), *W2 = malloc((size_t)(m * h) * 4);
    float *hf = malloc((size_t)(b * h) * 4), *of = malloc((size_t)(b * m) * 4);
    double *hd = malloc((size_t)(b * h) * 8), *hb = malloc((size_t)(b * h) * 8), *od = malloc((size_t)(b * m) * 8);
    double *ob = malloc((size_t)(b * m) * 8);
    if (!x || !W1 || !W2 || !hf || !of || !hd || !hb || !od || !ob) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (int64_t i = 0; i < b * n; i++) x[i] = uniform();
    for (int64_t i = 0; i < h * n; i++) W1[i] = uniform() * 0.1f;
    for (int64_t i = 0; i < m * h; i++) W2[i] = uniform() * 0.1f;
    double u1 = 0x1p-7 + 0x1p-16 + 2.0 * (double)(n > h ? n : h) * 0x1p-24;
    for (int64_t i = 0; i < b; i++)                   /* exact hidden layer and its bound */
        for (int64_t j = 0; j < h; j++) {
            double acc = 0, abs = 0;
            for (int64_t k = 0; k < n; k++) { acc += (double)x[i * n + k] * W1[j * n + k]; abs += fabs((double)x[i * n + k] * W1[j * n + k]); }
            hd[i * h + j] = tanh(acc);
            hb[i * h + j] = u1 * abs;
        }
    for (int64_t i = 0; i < b; i++)
        for (int64_t j = 0; j < m; j++) {
            double acc = 0, bound = 0;
            for (int64_t k = 0; k < h; k++) {
                acc += hd[i * h + k] * W2[j * h + k];
                bound += (hb[i * h + k] + u1 * fabs(hd[i * h + k])) * fabs((double)W2[j * h + k]);
            }
            od[i * m + j] = acc;
            ob[i * m + j] = bound * 1.01 + 1e-30;     /* 1%: the second-order terms */
        }
    char err[64];
    for (int e = 0; e < 2; e++) {
        gemm_setup(e ? "onednn" : "openblas", "bf16", err, sizeof err);
        gemm_run(0, 1, b, h, n, 1, x, n, W1, n, 0, hf, h);
        for (int64_t i = 0; i < b * h; i++) hf[i] = tanhf(hf[i]);
        gemm_run(0, 1, b, m, h, 1, hf, h, W2, h, 0, of, m);
        double w = 0, wf = 0;
        for (int64_t i = 0; i < b * m; i++) {
            double r = fabs(of[i] - od[i]) / ob[i];
            if (!(r <= w)) w = r;
            if (fabs(of[i] - od[i]) > wf) wf = fabs(of[i] - od[i]);
        }
        checks++; failed += !(w <= 1);
        printf("%s %s bf16 network %lldx%lld -> %lld -> %lld: worst error %.2f of its bound (largest %.3g)\n",
               w <= 1 ? "ok  " : "FAIL", gemm_engine_name(e), (long long)b, (long long)n, (long long)h, (long long)m,
               w, wf);
    }
    gemm_setup(NULL, "f32", err, sizeof err);
    free(x); free(W1); free(W2); free(hf); free(of); free(hd); free(hb); free(od); free(ob);
}

int main(void)
{
    check_rounding();
    check_dispatch();
    const shape shapes[] = {
        {0, 0, 37, 53, 71, 0, 0, 0, 1, 0},
        {1, 0, 37, 53, 71, 3, 0, 0, 1, 0},
        {0, 1, 37, 53, 71, 0, 5, 0, 1, 0},
        {1, 1, 37, 53, 71, 2, 1, 0, 1, 0},
        {0, 1, 64, 40, 300, 7, 9, 11, 0.5f, 1},
        {1, 0, 40, 64, 300, 1, 2, 3, 2, 0.25f},
        {0, 0, 1, 1, 1000, 0, 0, 0, 1, 1},
        {0, 1, 129, 250, 1031, 5, 3, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) check_shape(&shapes[i]);
    check_mlp(64, 700, 100, 300);
    check_weights();
    check_temps();
    printf("gemm-check: %d checks, %d failed\n", checks, failed);
    return failed ? 1 : 0;
}

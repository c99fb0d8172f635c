/* gemm.c: the product interface (gemm.h): engine and precision settings,
 * dispatch, the OpenBLAS engine and the bfloat16 rounding.  The oneDNN
 * engine is gemm_onednn.c. */
#include "kernels/gemm.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/err.h"
#include "io/ts.h"

#if defined(__x86_64__) && !defined(__clang__)
#define GEMM_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define GEMM_CLONES
#endif

static gemm_stats gemm_state = {.engine = GEMM_OPENBLAS, .precision = GEMM_F32};

const char *gemm_engine_name(gemm_engine e) { return e == GEMM_ONEDNN ? "onednn" : "openblas"; }
const char *gemm_precision_name(gemm_precision p) { return p == GEMM_BF16 ? "bf16" : "f32"; }

int gemm_setup(const char *engine, const char *precision, char *err, size_t cap)
{
    gemm_precision p;
    if (!precision || !strcmp(precision, "f32")) p = GEMM_F32;
    else if (!strcmp(precision, "bf16")) p = GEMM_BF16;
    else return err_set(err, cap, "precision '%s' is neither f32 nor bf16", precision);
    if (!engine || !*engine || !strcmp(engine, "auto")) {
        const char *env = getenv("DIFFMM_GEMM");
        engine = env && *env ? env : "auto";
    }
    gemm_engine e;
    if (!strcmp(engine, "openblas")) e = GEMM_OPENBLAS;
    else if (!strcmp(engine, "onednn")) e = GEMM_ONEDNN;
    else if (!strcmp(engine, "auto")) e = gemm_onednn_usable() ? GEMM_ONEDNN : GEMM_OPENBLAS;
    else return err_set(err, cap, "gemm engine '%s' is none of openblas, onednn, auto (DIFFMM_GEMM)", engine);
    gemm_state.precision = p;                    /* only a valid pair is taken */
    gemm_state.engine = e;
    return 0;
}

gemm_stats gemm_stats_get(void) { return gemm_state; }

void gemm_stats_reset(void)
{
    gemm_state.onednn_calls = gemm_state.openblas_calls = gemm_state.fallbacks = 0;
    gemm_state.flops = gemm_state.seconds = 0;
}

/* bfloat16 of one float, round to nearest even; a NaN keeps a mantissa bit */
static inline uint16_t gemm_bf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)(((u & 0x7fffffffu) > 0x7f800000u) ? ((u >> 16) | 0x40u) : r);
}

GEMM_CLONES
static void gemm_to_bf16_chunk(const float *x, uint16_t *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = gemm_bf16_bits(x[i]);
}

GEMM_CLONES
static void gemm_round_bf16_chunk(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)gemm_bf16_bits(x[i]) << 16;
        memcpy(y + i, &u, sizeof u);
    }
}

#define GEMM_CHUNK 16384
void gemm_to_bf16(const float *x, uint16_t *y, int64_t n)
{
    if (n <= 4 * GEMM_CHUNK) {                   /* on this thread, without entering OpenMP at all */
        gemm_to_bf16_chunk(x, y, n);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i += GEMM_CHUNK) gemm_to_bf16_chunk(x + i, y + i, n - i < GEMM_CHUNK ? n - i : GEMM_CHUNK);
}

void gemm_round_bf16(const float *x, float *y, int64_t n)
{
#pragma omp parallel for schedule(static) if (n > 4 * GEMM_CHUNK)
    for (int64_t i = 0; i < n; i += GEMM_CHUNK)
        gemm_round_bf16_chunk(x + i, y + i, n - i < GEMM_CHUNK ? n - i : GEMM_CHUNK);
}

/* A stored rows x cols (row length ld) copied compact into a scratch buffer,
 * rounded to bf16 as floats; the buffers grow and are kept. */
static float *gemm_rounded(int which, const float *A, int64_t rows, int64_t cols, int64_t ld)
{
    static float *buf[2];
    static size_t cap[2];
    size_t need = (size_t)(rows * cols);
    if (need > cap[which]) {
        free(buf[which]);
        buf[which] = ts_alloc(need * sizeof(float));
        cap[which] = buf[which] ? need : 0;
        if (!buf[which]) return NULL;
    }
    for (int64_t i = 0; i < rows; i++) gemm_round_bf16(A + i * ld, buf[which] + i * cols, cols);
    return buf[which];
}

void gemm_openblas(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                   const float *B, int64_t ldb, float beta, float *C, int64_t ldc, gemm_precision p)
{
    if (M == 0 || N == 0) return;
    if (p == GEMM_BF16 && K > 0) {
        /* the inputs rounded to bf16; a buffer that cannot be had leaves
         * the product in f32 rather than failing */
        int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
        const float *a = gemm_rounded(0, A, ar, ac, lda), *b = a ? gemm_rounded(1, B, br, bc, ldb) : NULL;
        if (a && b) { A = a; lda = ac; B = b; ldb = bc; }
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

static double gemm_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* gemm_run with versioned inputs; wb: B is a weight matrix (gemm.h) */
static void gemm_dispatch(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                          uint64_t va, const float *B, int64_t ldb, uint64_t vb, int wb, float beta, float *C,
                          int64_t ldc)
{
    if (M == 0 || N == 0) return;
    double t0 = gemm_now();
    gemm_state.flops += 2.0 * (double)M * (double)N * (double)K;
    if (gemm_state.engine == GEMM_ONEDNN) {
        if (gemm_onednn_v(ta, tb, M, N, K, alpha, A, lda, va, B, ldb, vb, wb, beta, C, ldc, gemm_state.precision) ==
            0) {
            gemm_state.onednn_calls++;
            gemm_state.seconds += gemm_now() - t0;
            return;
        }
        gemm_state.fallbacks++;
    }
    gemm_state.openblas_calls++;
    gemm_openblas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, gemm_state.precision);
    gemm_state.seconds += gemm_now() - t0;
}

void gemm_run(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    gemm_dispatch(ta, tb, M, N, K, alpha, A, lda, 0, B, ldb, 0, 0, beta, C, ldc);
}

/* temporaries' versions have the top bit set: they never equal a weight's
 * step count, and a caller's 0 stays "no version" */
uint64_t gemm_version_new(void)
{
    static uint64_t last;
    return ++last | (1ull << 63);
}

void gemm_run_v(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                uint64_t va, const float *B, int64_t ldb, uint64_t vb, float beta, float *C, int64_t ldc)
{
    gemm_dispatch(ta, tb, M, N, K, alpha, A, lda, va, B, ldb, vb, 0, beta, C, ldc);
}

void gemm_run_weights(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                      uint64_t va, const float *W, int64_t ldw, uint64_t version, float beta, float *C,
                      int64_t ldc)
{
    gemm_dispatch(ta, tb, M, N, K, alpha, A, lda, va, W, ldw, version, 1, beta, C, ldc);
}

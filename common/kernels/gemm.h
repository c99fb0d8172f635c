/* gemm.h: the one interface for dense matrix products (prefix gemm_), with
 * two engines behind it: OpenBLAS's sgemm (the reference, and the BLAS of
 * the project) and oneDNN's matmul (its AVX-512 and AVX512-BF16 kernels,
 * about twice OpenBLAS's Haswell rate on these machines; docs/NOTES.md).
 *
 * The engine and the precision are process-wide settings, chosen once by
 * the stage before any product: gemm_setup().  In bf16 the two inputs of
 * every product are rounded to bfloat16 (round to nearest even) and the
 * products accumulate and write float32; callers keep float32 everywhere
 * else.  The OpenBLAS engine computes bf16 the same way (inputs rounded,
 * then sgemm), which makes it the reference the oneDNN engine is tested
 * against.
 *
 * gemm_run never fails: a product oneDNN cannot create (or would run with
 * its slow reference code) goes to OpenBLAS, and gemm_stats counts it.
 * Call it outside OpenMP parallel regions.
 *
 * Until gemm_setup is called the engine is OpenBLAS in f32: evaluate and
 * recommend never call it, so their rankings never depend on the engine. */
#ifndef GEMM_H
#define GEMM_H

#include <stddef.h>
#include <stdint.h>

typedef enum { GEMM_OPENBLAS = 0, GEMM_ONEDNN = 1 } gemm_engine;
typedef enum { GEMM_F32 = 0, GEMM_BF16 = 1 } gemm_precision;

/* Choose the engine and precision.  engine: "openblas", "onednn" or NULL /
 * "" / "auto" (the environment's DIFFMM_GEMM if set, else oneDNN when it
 * works on this CPU, else OpenBLAS).  precision: "f32" or "bf16".
 * Returns 0, or -1 with a message in err for an unknown name. */
int gemm_setup(const char *engine, const char *precision, char *err, size_t cap);

/* C (M x N) = alpha * op(A) op(B) + beta * C, op = transpose when ta/tb.
 * op(A) is M x K, op(B) is K x N; all row-major, leading dimensions are the
 * stored row lengths. */
void gemm_run(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
              const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* Versions of inputs read unchanged by several products.  In bf16 the
 * oneDNN engine converts a versioned input once per (address, stored
 * shape, version) and reuses the copy while it is kept; a few sampled
 * values are compared as well, so a new matrix at a freed one's address
 * with the same version is not mistaken for it.  In f32, and on OpenBLAS,
 * versions change nothing: these are gemm_run.
 *
 * Temporaries (an activation the forward and the backward pass both read,
 * a gradient two products read): take gemm_version_new() right after
 * writing the matrix and pass it with every product that reads it until
 * it changes; 0 converts on every use.  Such copies live in a pool of
 * GEMM_TEMPS (gemm_onednn.c) slots, the least recently used giving way. */
uint64_t gemm_version_new(void);
void gemm_run_v(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                uint64_t va, const float *B, int64_t ldb, uint64_t vb, float beta, float *C, int64_t ldc);

/* The same with B a weight matrix that changes only between optimiser
 * steps: `version` counts the caller's changes to it (its Adam step, say;
 * any number, 0 included).  Weights' copies have a pool of their own, so
 * temporaries never push them out.  va versions A as in gemm_run_v. */
void gemm_run_weights(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                      uint64_t va, const float *W, int64_t ldw, uint64_t version, float beta, float *C,
                      int64_t ldc);

/* What ran: the engine and precision in use, products by each engine,
 * oneDNN products that fell back to OpenBLAS, and all products' flops and
 * seconds (wall time inside gemm_run, bf16 conversions included). */
typedef struct {
    gemm_engine engine;
    gemm_precision precision;
    int64_t onednn_calls, openblas_calls, fallbacks;
    double flops, seconds;
} gemm_stats;
gemm_stats gemm_stats_get(void);
/* Zero the counts, flops and seconds (at the start of an epoch). */
void gemm_stats_reset(void);
/* "openblas" / "onednn", "f32" / "bf16" */
const char *gemm_engine_name(gemm_engine e);
const char *gemm_precision_name(gemm_precision p);

/* Round n floats to the nearest bfloat16 (ties to even; NaN stays NaN),
 * as float32 values (low 16 bits zero) or as the 16-bit patterns. */
void gemm_round_bf16(const float *x, float *y, int64_t n);
void gemm_to_bf16(const float *x, uint16_t *y, int64_t n);

/* The two engines, as gemm_run calls them (and tests and benchmarks, to
 * compare them at one shape).  gemm_onednn returns 0, or -1 when oneDNN
 * cannot make the product or would make it with its reference code (then
 * C is untouched); its primitives are made once per shape and kept.
 * gemm_onednn_usable: oneDNN runs here with at least AVX-512 (the engine
 * "auto" picks).  gemm_onednn_impl: the implementation oneDNN chose for
 * the product of the last gemm_onednn call, e.g. "brg:avx512_core". */
void gemm_openblas(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                   const float *B, int64_t ldb, float beta, float *C, int64_t ldc, gemm_precision p);
int gemm_onednn(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, float beta, float *C, int64_t ldc, gemm_precision p);
/* gemm_onednn with versioned inputs (gemm_run_v, gemm_run_weights): va and
 * vb as there; wb: B is a weight matrix and vb its version. */
int gemm_onednn_v(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  uint64_t va, const float *B, int64_t ldb, uint64_t vb, int wb, float beta, float *C, int64_t ldc,
                  gemm_precision p);
int gemm_onednn_usable(void);
const char *gemm_onednn_impl(void);

#endif

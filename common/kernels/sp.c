/* sp.c: CSR construction from coordinate lists, transpose, and the
 * sparse x dense product (sp_spmm) the graph propagations run on. */
#include "kernels/sp.h"

#include <stdlib.h>
#include <string.h>

/* Sort the (col, val) pairs of one row by column: insertion sort for the
 * short rows interaction data has, heap-free merge sort would be overkill. */
static void sp_sort_row(int32_t *col, double *val, int64_t n)
{
    for (int64_t i = 1; i < n; i++) {
        int32_t c = col[i];
        double v = val[i];
        int64_t j = i - 1;
        while (j >= 0 && col[j] > c) { col[j + 1] = col[j]; val[j + 1] = val[j]; j--; }
        col[j + 1] = c;
        val[j + 1] = v;
    }
}

static int sp_cmp_pair(const void *a, const void *b)
{
    const struct { int32_t c; double v; } *x = a, *y = b;
    return (x->c > y->c) - (x->c < y->c);
}

int sp_binary_from_coo(int64_t rows, int64_t cols, int64_t n, const int64_t *row,
                       const int64_t *col, const double *val, ts_csr *out)
{
    memset(out, 0, sizeof *out);
    int64_t *ptr = calloc((size_t)rows + 1, sizeof *ptr);   /* [rows+1] */
    int32_t *c = malloc((size_t)(n ? n : 1) * sizeof *c);    /* [n] bucketed columns */
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);     /* [n] bucketed values */
    int64_t *fill = malloc((size_t)(rows ? rows : 1) * sizeof *fill);
    if (!ptr || !c || !v || !fill) goto oom;
    for (int64_t k = 0; k < n; k++) ptr[row[k] + 1]++;
    for (int64_t i = 0; i < rows; i++) ptr[i + 1] += ptr[i];
    memcpy(fill, ptr, (size_t)rows * sizeof *fill);
    for (int64_t k = 0; k < n; k++) {               /* stable counting sort by row */
        int64_t at = fill[row[k]]++;
        c[at] = (int32_t)col[k];
        v[at] = val[k];
    }
    free(fill);
    fill = NULL;
    /* sort each row, merge duplicates, drop zero sums; compact in place */
    int64_t w = 0;
    for (int64_t i = 0; i < rows; i++) {
        int64_t a = ptr[i], b = ptr[i + 1], len = b - a;
        if (len > 32) {
            struct { int32_t c; double v; } *tmp = malloc((size_t)len * sizeof *tmp);
            if (!tmp) goto oom;
            for (int64_t k = 0; k < len; k++) { tmp[k].c = c[a + k]; tmp[k].v = v[a + k]; }
            qsort(tmp, (size_t)len, sizeof *tmp, sp_cmp_pair);
            for (int64_t k = 0; k < len; k++) { c[a + k] = tmp[k].c; v[a + k] = tmp[k].v; }
            free(tmp);
        } else {
            sp_sort_row(c + a, v + a, len);
        }
        ptr[i] = w;
        for (int64_t k = a; k < b;) {
            int32_t cc = c[k];
            double sum = 0;
            while (k < b && c[k] == cc) sum += v[k++];
            if (sum != 0) c[w++] = cc;
        }
    }
    ptr[rows] = w;
    free(v);
    out->rows = rows;
    out->cols = cols;
    out->nnz = w;
    out->indptr = ptr;
    out->indices = realloc(c, (size_t)(w ? w : 1) * sizeof *c);
    if (!out->indices) out->indices = c;
    out->values = malloc((size_t)(w ? w : 1) * sizeof *out->values);
    if (!out->values) { ts_csr_free(out); return -1; }
    for (int64_t k = 0; k < w; k++) out->values[k] = 1.0f;
    return 0;
oom:
    free(ptr); free(c); free(v); free(fill);
    return -1;
}

/* ---- transpose ---- */

int sp_transpose(const ts_csr *A, ts_csr *At)
{
    memset(At, 0, sizeof *At);
    if (A->rows > INT32_MAX) return -1;
    int64_t rows = A->rows, cols = A->cols, nnz = A->nnz;
    int64_t *ptr = calloc((size_t)cols + 1, sizeof *ptr);            /* [cols+1] */
    int32_t *ix = malloc((size_t)(nnz ? nnz : 1) * sizeof *ix);       /* [nnz] */
    float *val = malloc((size_t)(nnz ? nnz : 1) * sizeof *val);       /* [nnz] */
    int64_t *fill = malloc((size_t)(cols ? cols : 1) * sizeof *fill); /* [cols] next free slot */
    if (!ptr || !ix || !val || !fill) {
        free(ptr); free(ix); free(val); free(fill);
        return -1;
    }
    for (int64_t k = 0; k < nnz; k++) ptr[A->indices[k] + 1]++;
    for (int64_t c = 0; c < cols; c++) ptr[c + 1] += ptr[c];
    memcpy(fill, ptr, (size_t)cols * sizeof *fill);
    /* rows visited in increasing order: every row of At is filled sorted */
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = A->indptr[r]; k < A->indptr[r + 1]; k++) {
            int64_t at = fill[A->indices[k]]++;
            ix[at] = (int32_t)r;
            val[at] = A->values[k];
        }
    free(fill);
    At->rows = cols;
    At->cols = rows;
    At->nnz = nnz;
    At->indptr = ptr;
    At->indices = ix;
    At->values = val;
    return 0;
}

/* ---- sparse x dense ---- */

/* The rows of x that A's entries pick are scattered, so the loads wait on
 * L3; asking for the row SP_PREFETCH entries ahead cut sp_spmm on TikTok's
 * graph/ui (135k entries, d 64) from 0.58 to 0.49 ms (4, 8 and 16 equal). */
#define SP_PREFETCH 8
#define SP_BLOCK 64           /* columns of x and y handled per pass over a row */
#define SP_SERIAL_WORK 32768  /* below nnz * d of this (some 10 us of work), starting
                                 threads costs more than they save */

/* Columns j0 .. j0+w-1 of row r of y = alpha A x + beta c (c may be y).  The accumulator
 * lives on the stack (in registers for w = SP_BLOCK, which is inlined as a
 * constant: twice as fast as a run-time width); the inner loops run over
 * contiguous floats of x and y and vectorise. */
static inline __attribute__((always_inline)) void
sp_spmm_block(const ts_csr *A, int64_t r, const float *restrict x, int64_t d, int64_t j0, int64_t w,
              float alpha, float beta, const float *c, float *y)
{
    float acc[SP_BLOCK];                                  /* [w] part of row r of A x */
    for (int64_t j = 0; j < w; j++) acc[j] = 0.0f;
    const int64_t kend = A->indptr[r + 1];
    for (int64_t k = A->indptr[r]; alpha != 0.0f && k < kend; k++) {
        if (k + SP_PREFETCH < A->nnz) {
            const char *next = (const char *)(x + (int64_t)A->indices[k + SP_PREFETCH] * d + j0);
            for (int64_t q = 0; q < w * 4; q += 64) __builtin_prefetch(next + q);
        }
        const float v = A->values[k];
        const float *restrict xr = x + (int64_t)A->indices[k] * d + j0;   /* [w] */
#pragma omp simd
        for (int64_t j = 0; j < w; j++) acc[j] += v * xr[j];
    }
    float *yr = y + r * d + j0;                                            /* [w] */
    const float *cr = c + r * d + j0;                                      /* [w] */
    if (beta == 0.0f) {
#pragma omp simd
        for (int64_t j = 0; j < w; j++) yr[j] = alpha * acc[j];
    } else {
#pragma omp simd
        for (int64_t j = 0; j < w; j++) yr[j] = alpha * acc[j] + beta * cr[j];
    }
}

/* Row r of y: full blocks of SP_BLOCK columns, then the rest.  Compiled
 * for AVX-512, AVX2 and baseline x86-64, chosen at load time; each column
 * is summed in the same order by all three (no FMA contraction in ISO C
 * mode), so the results are the same bits. */
#if defined(__x86_64__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
static void sp_spmm_row(const ts_csr *A, int64_t r, const float *restrict x, int64_t d, float alpha,
                        float beta, const float *c, float *y)
{
    int64_t j0 = 0;
    for (; j0 + SP_BLOCK <= d; j0 += SP_BLOCK) sp_spmm_block(A, r, x, d, j0, SP_BLOCK, alpha, beta, c, y);
    if (j0 < d) sp_spmm_block(A, r, x, d, j0, d - j0, alpha, beta, c, y);
}

void sp_spmm(const ts_csr *A, const float *x, int64_t d, float alpha, float beta, float *y)
{
    sp_spmm_add(A, x, d, alpha, beta, y, y);
}

void sp_spmm_add(const ts_csr *A, const float *x, int64_t d, float alpha, float beta, const float *c, float *y)
{
    if (d <= 0) return;
    const int64_t rows = A->rows;
    const int parallel = (double)A->nnz * (double)d >= SP_SERIAL_WORK;
    /* rows differ wildly in length (a popular item has thousands of users):
     * small dynamic chunks balance them, at a cost that is negligible next
     * to 64 multiply-adds per entry */
#pragma omp parallel for schedule(dynamic, 32) if (parallel)
    for (int64_t r = 0; r < rows; r++) sp_spmm_row(A, r, x, d, alpha, beta, c, y);
}

void sp_row_dense(const ts_csr *A, int64_t r, float *x)
{
    memset(x, 0, (size_t)A->cols * sizeof *x);
    for (int64_t q = A->indptr[r]; q < A->indptr[r + 1]; q++) x[A->indices[q]] = A->values[q];
}

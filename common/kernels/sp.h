/* sp.h: sparse matrix building blocks (CSR, see ts_csr in ts.h):
 * construction from coordinates, transpose, and the sparse x dense product
 * every graph propagation of the model runs on.  Knows nothing of the model. */
#ifndef SP_H
#define SP_H

#include <stdint.h>

#include "io/ts.h"

/* Build a binary CSR matrix (rows x cols) from n coordinates with values:
 * duplicates are summed in double (as scipy's tocsr does), entries whose
 * sum is zero are dropped, every remaining value becomes 1.  Columns are
 * sorted within each row.  Coordinates must be in range (the caller
 * checks).  Returns 0, or -1 when out of memory. */
int sp_binary_from_coo(int64_t rows, int64_t cols, int64_t n, const int64_t *row,
                       const int64_t *col, const double *val, ts_csr *out);

/* Row r of A densely into x [A->cols]: zeros, then the stored values. */
void sp_row_dense(const ts_csr *A, int64_t r, float *x);

/* y = alpha * A x + beta * y.
 *   A  rows x cols csr (columns in any order within a row)
 *   x  [cols x d] row-major
 *   y  [rows x d] row-major, not overlapping x
 * When beta == 0, y's old content is never read (it may hold NaN); when
 * alpha == 0, x is never read.  Each row of y is computed by one thread in
 * a fixed order (float accumulation over the row's entries, then one
 * alpha/beta update), so the result does not depend on the thread count.
 * Parallel over rows with OpenMP; small products stay on one thread. */
void sp_spmm(const ts_csr *A, const float *x, int64_t d, float alpha, float beta, float *y);
/* y = alpha * A x + beta * c: sp_spmm with the addend read from c ([rows
 * x d], y itself or an array not overlapping y), the same bits as copying
 * c into y and calling sp_spmm without the copy's pass over memory. */
void sp_spmm_add(const ts_csr *A, const float *x, int64_t d, float alpha, float beta, const float *c, float *y);

/* At = A^T (cols x rows).  Column indices of At come out sorted within each
 * row whatever the order in A's rows; duplicates in A stay duplicates.
 * Returns 0, or -1 when out of memory (or when A has more rows than int32
 * column indices can name); *At is then empty. */
int sp_transpose(const ts_csr *A, ts_csr *At);

#endif

/* sparse.h: sparse matrix building blocks (CSR, see ts_csr in ts.h). */
#ifndef SP_H
#define SP_H

#include <stdint.h>

#include "ts.h"

/* Build a binary CSR matrix (rows x cols) from n coordinates with values:
 * duplicates are summed in double (as scipy's tocsr does), entries whose
 * sum is zero are dropped, every remaining value becomes 1.  Columns are
 * sorted within each row.  Coordinates must be in range (the caller
 * checks).  Returns 0, or -1 when out of memory. */
int sp_binary_from_coo(int64_t rows, int64_t cols, int64_t n, const int64_t *row,
                       const int64_t *col, const double *val, ts_csr *out);

#endif

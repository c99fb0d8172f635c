/* sparse.c: CSR construction from coordinate lists. */
#include "sparse.h"

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

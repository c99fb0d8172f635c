/* npy.h: a reader for numpy .npy files (the release's <modality>_feat.npy),
 * and a float32 writer (export-mmrec's <m>_feat.npy).
 *
 * Format versions 1, 2 and 3; dtypes f2, f4, f8, i4, i8 in little- or
 * big-endian byte order; C or Fortran order; 1-D (N -> N x 1) or 2-D shapes.
 * Values are converted to float32 (f2 exactly).  The declared size is
 * checked against the file's size before any memory is allocated, and
 * against the limits of ts.h that every stream reader applies (a dimension
 * of an empty array at most TS_DIM_MAX, the float32 result at most
 * TS_PAYLOAD_MAX bytes). */
#ifndef NPY_H
#define NPY_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    int64_t rows, cols;  /* shape (a 1-D array of N is N x 1) */
    float *data;         /* [rows * cols] row-major float32 */
    char dtype[8];       /* the file's dtype as written, e.g. "<f2" */
} npy_matrix;

/* Read a .npy from f, whose total size is file_size bytes (from fstat).
 * Returns 0 and fills *out (free with npy_matrix_free), or -1 with a
 * one-line reason in err (e.g. "unsupported dtype '<c8'",
 * "header declares 6710 x 128 <f2 (1717760 bytes) but file holds 1000
 * (truncated data)").  f must be positioned at the start of the file. */
int npy_read_f32(FILE *f, int64_t file_size, npy_matrix *out, char *err, size_t errlen);
void npy_matrix_free(npy_matrix *m);

/* Write x [rows x cols] float32 to f as a version 1.0 .npy ('<f4', C
 * order, the header padded to 64 bytes as numpy writes it).  Returns 0, or
 * -1 with a reason in err when the write fails. */
int npy_write_f32(FILE *f, const float *x, int64_t rows, int64_t cols, char *err, size_t errlen);

#endif

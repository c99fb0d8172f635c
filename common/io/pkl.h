/* pkl.h: a safe reader for pickled scipy sparse matrices (the release's
 * trnMat.pkl / valMat.pkl / tstMat.pkl).
 *
 * The reader is a small pickle virtual machine for the opcodes that numpy and
 * scipy objects need, pickle protocols 2 to 5.  It never runs code: every
 * GLOBAL must be on a fixed allow-list (numpy array / dtype / scalar
 * reconstruction under numpy.core and numpy._core, _codecs.encode for
 * protocol-2 bytes, scipy coo/csr/csc matrix and array classes under their
 * old and new module paths); anything else is refused by name.  Protocols 0
 * and 1 (no leading PROTO opcode) and out-of-band buffers are not supported.
 * Arrays may be any int/uint of 1-8 bytes, float32/64 or bool, in either
 * byte order; scipy >= 1.13's coo `coords` state is read as well. */
#ifndef PKL_H
#define PKL_H

#include <stddef.h>
#include <stdint.h>

/* A sparse matrix as stored coordinates, whatever format the pickle held
 * (coo, csr or csc are all expanded to coordinates, in stored order).
 * Duplicates and explicit zeros are kept: merging is the caller's job. */
typedef struct {
    int64_t rows, cols;  /* matrix shape */
    int64_t n;           /* stored entries */
    int64_t *row;        /* [n] row index, 0 <= row < rows */
    int64_t *col;        /* [n] column index, 0 <= col < cols */
    double *val;         /* [n] stored value, converted to double */
} pkl_coo;

/* Parse a whole pickle held in buf[0..len).  On success returns 0 and fills
 * *out (free with pkl_coo_free).  On failure returns -1, leaves *out empty
 * and writes a one-line reason to err (e.g. "refused global 'os.system'",
 * "truncated at byte 1234 in BINBYTES", "row index 7 out of range for 6 rows"). */
int pkl_read_coo(const uint8_t *buf, size_t len, pkl_coo *out, char *err, size_t errlen);
void pkl_coo_free(pkl_coo *m);

#endif

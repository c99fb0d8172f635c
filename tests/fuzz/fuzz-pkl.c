/* fuzz-pkl.c: libFuzzer harness for the pickle reader (common/io/pkl.c), the
 * one convert-pkl runs on trnMat.pkl and its kind.  Built and run by
 * `make fuzz`; tests/fuzz.bats replays the corpus and fuzzes briefly in
 * `make test`.
 *
 * The input is a whole pickle.  Besides the sanitizers' checks: a refusal
 * must come with a non-empty one-line reason, and an accepted matrix must
 * hold what pkl.h promises (every coordinate inside its shape, sides within
 * the shared limits).  A breach is reported by abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/pkl.h"
#include "io/ts.h"

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz-pkl: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pkl_coo m;
    memset(&m, 0xa5, sizeof m);             /* a refusal must leave it empty */
    char err[512];
    err[0] = 0;
    if (pkl_read_coo(data, size, &m, err, sizeof err) < 0) {
        if (!err[0]) fail("a refusal without a reason", NULL);
        for (const unsigned char *p = (const unsigned char *)err; *p; p++)
            if (*p < 0x20 || *p == 0x7f) fail("a reason holding a control character", err);
        if (m.n || m.row || m.col || m.val) fail("a refusal that leaves the matrix set", err);
        return 0;
    }
    if (m.rows < 0 || m.cols < 0 || m.n < 0) fail("a negative shape or count", NULL);
    /* sides no array backs are capped; a coo's both sides are such */
    if (m.n == 0 && (m.rows > TS_DIM_MAX || m.cols > TS_DIM_MAX)) fail("an empty matrix beyond the limits", NULL);
    double sum = 0;
    for (int64_t i = 0; i < m.n; i++) {
        if (m.row[i] < 0 || m.row[i] >= m.rows || m.col[i] < 0 || m.col[i] >= m.cols)
            fail("a coordinate outside the shape", NULL);
        sum += m.val[i];
    }
    if (sum == 12345.678) fprintf(stderr, "(keeps the sum)\n");
    pkl_coo_free(&m);
    return 0;
}

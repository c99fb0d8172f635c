/* fuzz-npy.c: libFuzzer harness for the .npy reader (common/io/npy.c), the one
 * convert-pkl runs on <modality>_feat.npy.  Built and run by `make fuzz`;
 * tests/fuzz.bats replays the corpus and fuzzes briefly in `make test`.
 *
 * The input is a whole .npy file, read through a FILE over the bytes with
 * its true size (as convert-pkl passes fstat's).  Besides the sanitizers'
 * checks: a refusal must come with a non-empty one-line reason, and an
 * accepted matrix must be as large as its shape says, within the limits
 * every stream reader applies (its float32 data can be written as one
 * record).  A breach is reported by abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "io/npy.h"
#include "io/ts.h"

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz-npy: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t none[1];
    FILE *f = fmemopen(size ? (void *)data : none, size, "rb");
    if (!f) fail("fmemopen failed", NULL);
    npy_matrix m = {0};
    char err[512];
    err[0] = 0;
    int st = npy_read_f32(f, (int64_t)size, &m, err, sizeof err);
    fclose(f);
    if (st < 0) {
        if (!err[0]) fail("a refusal without a reason", NULL);
        for (const unsigned char *p = (const unsigned char *)err; *p; p++)
            if (*p < 0x20 || *p == 0x7f) fail("a reason holding a control character", err);
        return 0;
    }
    if (m.rows < 0 || m.cols < 0) fail("a negative shape", NULL);
    int64_t shape[2] = {m.rows, m.cols};
    uint64_t nbytes;
    char why[256];
    if (ts_dense_size(2, shape, 4, &nbytes, why, sizeof why) < 0) fail("a matrix no stream may hold", why);
    double sum = 0;
    for (uint64_t i = 0; i < nbytes / 4; i++) sum += m.data[i];   /* every element is there */
    if (sum == 12345.678) fprintf(stderr, "(keeps the sum)\n");
    npy_matrix_free(&m);
    return 0;
}

/* npy-dump: prints a .npy file as the reader sees it, for the bats tests.
 *
 * Usage: npy-dump FILE
 * Prints "rows cols dtype", then one line per row with the float32 values
 * space-separated as %.9g (exact round trip; every NaN prints as "nan").
 * On error prints "npy-dump: FILE: REASON" to stderr and exits 1. */
#include "io/npy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: npy-dump FILE\n");
        return 2;
    }
    const char *path = argv[1];
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "npy-dump: %s: %s\n", path, strerror(errno));
        return 1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "npy-dump: %s: %s\n", path, strerror(errno));
        fclose(f);
        return 1;
    }
    npy_matrix m;
    char err[256];
    int rc = npy_read_f32(f, (int64_t)st.st_size, &m, err, sizeof err);
    fclose(f);
    if (rc != 0) {
        fprintf(stderr, "npy-dump: %s: %s\n", path, err);
        return 1;
    }
    printf("%lld %lld %s\n", (long long)m.rows, (long long)m.cols, m.dtype);
    for (int64_t r = 0; r < m.rows; r++) {
        const float *row = m.data + r * m.cols;
        for (int64_t c = 0; c < m.cols; c++) {
            if (c) putchar(' ');
            if (isnan(row[c])) fputs("nan", stdout);
            else printf("%.9g", row[c]);
        }
        putchar('\n');
    }
    npy_matrix_free(&m);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "npy-dump: %s: write error\n", path);
        return 1;
    }
    return 0;
}

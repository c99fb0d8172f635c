/* pkl-dump: print a pickled scipy sparse matrix as text, for tests/pkl.bats.
 *
 * Usage: pkl-dump FILE
 * Prints "rows cols n", then one line "row col value" per stored entry in
 * stored order (value as %.17g, so doubles round-trip).  On error prints
 * "pkl-dump: FILE: REASON" to stderr and exits 1. */
#include "io/pkl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Read a whole file; returns a malloc'd buffer (NULL with errno on error). */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        uint8_t *b = realloc(buf, cap *= 2);
        if (!b) { free(buf); buf = NULL; errno = ENOMEM; }
        else buf = b;
    }
    if (buf && ferror(f)) { free(buf); buf = NULL; errno = EIO; }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: pkl-dump FILE\n");
        return 2;
    }
    size_t len;
    uint8_t *buf = read_file(argv[1], &len);
    if (!buf) {
        fprintf(stderr, "pkl-dump: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    pkl_coo m;
    char err[256];
    int rc = pkl_read_coo(buf, len, &m, err, sizeof err);
    free(buf);
    if (rc) {
        fprintf(stderr, "pkl-dump: %s: %s\n", argv[1], err);
        return 1;
    }
    printf("%" PRId64 " %" PRId64 " %" PRId64 "\n", m.rows, m.cols, m.n);
    for (int64_t k = 0; k < m.n; k++)
        printf("%" PRId64 " %" PRId64 " %.17g\n", m.row[k], m.col[k], m.val[k]);
    pkl_coo_free(&m);
    return fflush(stdout) == 0 ? 0 : 1;
}

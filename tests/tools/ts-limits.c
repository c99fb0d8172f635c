/* ts-limits: the stream writer keeps the limits the readers keep
 * (docs/STREAMS.md, "Limits"): it refuses what a reader would refuse, and
 * what it accepts reads back.  Each case prints one line, "ok NAME" or
 * "refused NAME: MESSAGE"; tests/hostile.bats checks them.
 * usage: ts-limits DIR   (writes DIR/limits.ts and reads it back) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/ts.h"

static char path[4096];

/* Write one dense tensor (or, with m, one csr matrix) as a whole stream,
 * then read it back; print how it went. */
static void try_write(const char *label, const char *name, dt_type t, int ndim, const int64_t *shape,
                      const ts_csr *m)
{
    ts_writer *w = ts_writer_open(path, 0, "ts-limits");
    if (!w) { fprintf(stderr, "ts-limits: out of memory\n"); exit(1); }
    int st;
    void *data = NULL;
    if (m) {
        st = ts_write_csr(w, name, m);
    } else {
        /* room for the data when it is small; shapes beyond 64 MiB (or
         * whose product overflows) must be refused before data is read */
        size_t n = dt_size(t);
        int big = 0;
        for (int i = 0; i < ndim; i++) big |= __builtin_mul_overflow(n, (size_t)shape[i], &n);
        big |= n > (64u << 20);
        data = ts_alloc(big ? 64 : n);
        st = ts_write_dense(w, name, t, ndim, shape, data);
    }
    char err[600];
    if (st < 0) {
        printf("refused %s: %s\n", label, ts_writer_error(w));
        ts_writer_abort(w);
        free(data);
        return;
    }
    if (ts_writer_close(w, err, sizeof err) < 0) { printf("refused %s: %s\n", label, err); free(data); return; }
    free(data);
    ts_reader *r = ts_reader_open(path);
    ts_record *rec;
    if (ts_reader_next(r, &rec) != 1) printf("unreadable %s: %s\n", label, ts_reader_error(r));
    else { printf("ok %s\n", label); ts_record_free(rec); }
    ts_reader_close(r);
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: ts-limits DIR\n"); return 2; }
    snprintf(path, sizeof path, "%s/limits.ts", argv[1]);

    int64_t empty_at_cap[2] = {0, TS_DIM_MAX}, empty_over[2] = {0, TS_DIM_MAX + 1};
    int64_t backed[1] = {TS_DIM_MAX + 1};                /* 16 MiB of u1: a payload pays for it */
    int64_t wraps[4] = {INT64_C(1) << 32, INT64_C(1) << 32, INT64_C(1) << 32, INT64_C(1) << 32};
    int64_t over4g[2] = {INT64_C(1) << 16, INT64_C(1) << 15};   /* 2^31 f4 = 8 GiB */
    try_write("empty-at-cap", "x", DT_F32, 2, empty_at_cap, NULL);
    try_write("empty-over-cap", "x", DT_F32, 2, empty_over, NULL);
    try_write("backed-over-cap", "x", DT_U8, 1, backed, NULL);
    try_write("dims-wrap", "x", DT_F32, 4, wraps, NULL);
    try_write("over-4GiB", "x", DT_F32, 2, over4g, NULL);
    try_write("empty-name", "", DT_F32, 1, (int64_t[]){1}, NULL);

    char longname[TS_NAME_MAX + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    try_write("long-name", longname, DT_F32, 1, (int64_t[]){1}, NULL);
    longname[TS_NAME_MAX] = 0;
    try_write("name-at-cap", longname, DT_F32, 1, (int64_t[]){1}, NULL);

    int64_t ip[3] = {0, 2, 3};
    int32_t sorted[3] = {1, 4, 0}, unsorted[3] = {4, 1, 0}, dup[3] = {2, 2, 0};
    float v[3] = {1, 1, 1};
    ts_csr m = {.rows = 2, .cols = 5, .nnz = 3, .indptr = ip, .indices = sorted, .values = v};
    try_write("csr-sorted", "m", 0, 0, NULL, &m);
    m.indices = unsorted;
    try_write("csr-unsorted", "m", 0, 0, NULL, &m);
    m.indices = dup;
    try_write("csr-duplicate", "m", 0, 0, NULL, &m);
    m.indices = sorted;
    m.cols = TS_DIM_MAX + 1;
    try_write("csr-cols-over-cap", "m", 0, 0, NULL, &m);
    remove(path);
    return 0;
}

/* fuzz-ts.c: libFuzzer harness for the tensor stream reader (common/io/ts_read.c,
 * bags in common/io/ts_record.c), and the writer (common/io/ts_write.c) on what the
 * reader accepts.  Built and run by `make fuzz`; tests/fuzz.bats replays the
 * corpus and fuzzes briefly in `make test`.
 *
 * The first input byte chooses how the rest is read:
 *   bit 0     a record filter is set (records whose payloads it refuses are
 *             read past, never held); bit 4 chooses which names it keeps
 *   bit 1     the bytes arrive through a pipe on stdin, so their total is not
 *             known in advance; otherwise from a regular file (a memfd opened
 *             by path), whose size bounds every declared length
 *   bit 2     the round trip below writes zstd (level 1) rather than raw
 * The rest is a stream: raw msgpack, zstd frames or both, framed by our
 * header/end records (count and CRC-32C checked) or not.  The whole input
 * is read into a bag, as every stage reads its inputs.
 *
 * Besides the sanitizers' checks, a failure to read must come with a
 * non-empty one-line reason, and what was read must be well formed: every
 * record can be looked up by its name, csr columns are in range, and the
 * writer writes back exactly what the reader gave (read again, the same
 * records, byte for byte).  Memory: where the input's size is known (a
 * regular file holding no zstd frame), no single allocation while reading
 * may exceed twice that size plus the reader's fixed buffers
 * (docs/STREAMS.md, "Limits"); in a pipe or a zstd frame a payload's
 * declared length (at most 4 GiB) is reserved by design: here any single
 * allocation over 64 MiB fails instead (__asan_default_options below), so
 * the reader's "out of memory" path is taken rather than mapping gigabytes
 * for every such input, and "out of memory" where the size is known is a
 * finding.  A breach is reported by abort(). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sanitizer/allocator_interface.h>

#include "io/ts.h"

/* the largest single allocation since watching began */
static volatile size_t largest;
static volatile int watching;
static void on_malloc(const volatile void *p, size_t n)
{
    (void)p;
    if (watching && n > largest) largest = n;
}
static void on_free(const volatile void *p) { (void)p; }

/* Allocations over 64 MiB return NULL (the reader says "out of memory");
 * ASAN_OPTIONS in the environment adds to this. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1:max_allocation_size_mb=64"; }

static int in_fd = -1, out_fd = -1;      /* memfds: the input file, the written stream */
static int saved_stdin = -1, saved_stdout = -1;

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz-ts: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    in_fd = memfd_create("fuzz-ts-in", MFD_CLOEXEC);
    out_fd = memfd_create("fuzz-ts-out", MFD_CLOEXEC);
    saved_stdin = dup(0);
    saved_stdout = dup(1);
    if (in_fd < 0 || out_fd < 0 || saved_stdin < 0 || saved_stdout < 0) fail("set-up failed", NULL);
    __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
    return 0;
}

/* A reason must be one line of text with no control characters. */
static void check_reason(const char *err)
{
    if (!err[0]) fail("a failure without a reason", NULL);
    for (const unsigned char *p = (const unsigned char *)err; *p; p++)
        if (*p < 0x20 || *p == 0x7f) fail("a reason holding a control character", err);
}

/* Keeps the names whose first byte is even (odd when bit 4 of the mode is set). */
static int keep_odd;
static int keep(const char *name, void *ctx)
{
    (void)ctx;
    if (!name || !name[0]) fail("the filter was asked about an empty name", NULL);
    return ((unsigned char)name[0] & 1) == keep_odd;
}

static int same_str(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

static int same_bytes(const void *a, size_t na, const void *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na) == 0);
}

static int same_record(const ts_record *a, const ts_record *b)
{
    if (!same_str(a->name, b->name) || a->kind != b->kind) return 0;
    switch (a->kind) {
    case TS_DENSE:
        if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
        for (int i = 0; i < a->ndim; i++)
            if (a->shape[i] != b->shape[i]) return 0;
        return same_bytes(a->data, a->nbytes, b->data, b->nbytes);
    case TS_CSR:
        return a->csr.rows == b->csr.rows && a->csr.cols == b->csr.cols && a->csr.nnz == b->csr.nnz &&
               same_bytes(a->csr.indptr, (size_t)(a->csr.rows + 1) * 8, b->csr.indptr, (size_t)(b->csr.rows + 1) * 8) &&
               same_bytes(a->csr.indices, (size_t)a->csr.nnz * 4, b->csr.indices, (size_t)b->csr.nnz * 4) &&
               same_bytes(a->csr.values, (size_t)a->csr.nnz * 4, b->csr.values, (size_t)b->csr.nnz * 4);
    default:
        if (a->nfields != b->nfields) return 0;
        for (size_t i = 0; i < a->nfields; i++) {
            const ts_field *x = &a->fields[i], *y = &b->fields[i];
            if (strcmp(x->key, y->key) != 0 || !x->raw != !y->raw) return 0;
            if (x->raw ? !same_bytes(x->raw, x->rawlen, y->raw, y->rawlen)
                       : !same_bytes(x->bin, x->binlen, y->bin, y->binlen))
                return 0;
        }
        return 1;
    }
}

/* What every reader guarantees about a record it returns. */
static void check_record(const ts_bag *bag, const ts_record *r)
{
    if (r->name && (!r->name[0] || strlen(r->name) > TS_NAME_MAX)) fail("a name outside the limits", r->name);
    if (r->name && ts_bag_get(bag, r->name) != r) fail("a record not found by its name", r->name);
    (void)ts_record_crc(r);                 /* reads every payload byte */
    char why[256];
    switch (r->kind) {
    case TS_DENSE: {
        uint64_t nbytes;
        if (!r->name) fail("a tensor without a name", NULL);
        if (ts_dense_size(r->ndim, r->shape, dt_size(r->dtype), &nbytes, why, sizeof why) < 0)
            fail("a dense record the limits refuse", why);
        if (nbytes != r->nbytes || ts_numel(r) * (int64_t)dt_size(r->dtype) != (int64_t)r->nbytes)
            fail("a dense record whose size is not its shape's", r->name);
        if (ts_check_finite(r, why, sizeof why) < 0 && !why[0]) fail("a non-finite value without a place", r->name);
        break;
    }
    case TS_CSR: {
        const ts_csr *m = &r->csr;
        if (!r->name) fail("a matrix without a name", NULL);
        if (m->rows < 0 || m->cols < 0 || m->cols > TS_DIM_MAX || m->indptr[0] != 0 || m->indptr[m->rows] != m->nnz)
            fail("a csr matrix with a bad shape or indptr", r->name);
        for (int64_t i = 0; i < m->rows; i++)
            for (int64_t k = m->indptr[i]; k < m->indptr[i + 1]; k++)
                if (m->indices[k] < 0 || m->indices[k] >= m->cols ||
                    (k > m->indptr[i] && m->indices[k] <= m->indices[k - 1]))
                    fail("a csr row with columns out of range or order", r->name);
        break;
    }
    default:
        for (size_t i = 0; i < r->nfields; i++)
            if (!r->fields[i].key || (!r->fields[i].raw && r->fields[i].binlen && !r->fields[i].bin))
                fail("an opaque field without its key or value", r->name);
        free(ts_record_str(r, "json"));
        free(ts_record_str(r, "name"));
        break;
    }
}

/* Write bag through the writer into out_fd (as stdout, the one target that
 * needs no file name) and read it back: the same records must come out. */
static void round_trip(const ts_bag *bag, int zlevel)
{
    char err[600];
    if (ftruncate(out_fd, 0) < 0 || lseek(out_fd, 0, SEEK_SET) < 0 || dup2(out_fd, 1) < 0) fail("set-up failed", NULL);
    ts_writer *w = ts_writer_open(NULL, zlevel, "fuzz-ts");
    if (!w) fail("out of memory", NULL);
    for (size_t i = 0; i < bag->n; i++)
        if (ts_write(w, bag->recs[i]) < 0) {
            snprintf(err, sizeof err, "%s", ts_writer_error(w));
            ts_writer_abort(w);
            dup2(saved_stdout, 1);
            fail("the writer refuses a record the reader accepted", err);
        }
    int st = ts_writer_close(w, err, sizeof err);
    dup2(saved_stdout, 1);
    if (st < 0) fail("the writer failed", err);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", out_fd);
    ts_bag back = {0};
    if (ts_bag_read(&back, path, err, sizeof err) < 0) fail("what the writer wrote does not read back", err);
    if (back.n != bag->n) fail("the round trip changed the number of records", NULL);
    for (size_t i = 0; i < bag->n; i++)
        if (!same_record(bag->recs[i], back.recs[i])) fail("the round trip changed a record", bag->recs[i]->name);
    ts_bag_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int mode = data[0];
    data++;
    size--;
    keep_odd = (mode >> 4) & 1;
    int (*filter)(const char *, void *) = (mode & 1) ? keep : NULL;

    char path[64];
    int pipefd[2] = {-1, -1};
    /* through a pipe if the whole input fits in one (written before reading) */
    if ((mode & 2) && pipe2(pipefd, O_CLOEXEC) == 0) {
        int cap = fcntl(pipefd[1], F_SETPIPE_SZ, size > 4096 ? (int)size : 4096);
        if (cap >= 0 && (size_t)cap >= size && write(pipefd[1], data, size) == (ssize_t)size) {
            close(pipefd[1]);
            dup2(pipefd[0], 0);
            close(pipefd[0]);
            snprintf(path, sizeof path, "-");
        } else {
            close(pipefd[0]);
            close(pipefd[1]);
            pipefd[0] = -1;
        }
    }
    if (pipefd[0] < 0) {
        if (ftruncate(in_fd, 0) < 0 || pwrite(in_fd, data, size, 0) != (ssize_t)size) fail("set-up failed", NULL);
        snprintf(path, sizeof path, "/proc/self/fd/%d", in_fd);
    }

    ts_bag bag = {0};
    char err[600];
    largest = 0;
    watching = 1;
    int st = ts_bag_read_filtered(&bag, path, filter, NULL, err, sizeof err);
    watching = 0;
    if (path[0] == '-') dup2(saved_stdin, 0);
    /* the size is known: a regular file, no zstd frame; the reader's own
     * buffers are 1 MiB each for input and decompressed bytes (1 KiB in the
     * fuzz build) */
    if (path[0] != '-' && !memmem(data, size, "\x28\xb5\x2f\xfd", 4)) {
        char what[96];
        snprintf(what, sizeof what, "%zu bytes for a %zu-byte file", (size_t)largest, size);
        if (largest > 2 * size + (2u << 20)) fail("an allocation larger than the input could back", what);
        /* the reader's own "out of memory" comes right after "PATH: "; the
         * same words inside a quoted record name are not one */
        size_t at = strlen(path) + 2;
        if (st < 0 && strlen(err) > at && strncmp(err + at, "out of memory", 13) == 0)
            fail("out of memory reading a file of known size", err);
    }
    if (st < 0) check_reason(err);
    for (size_t i = 0; i < bag.n; i++) check_record(&bag, bag.recs[i]);
    if (st == 0) {
        round_trip(&bag, (mode & 4) ? 1 : 0);
        /* what stages do next: widen to float32, take records out */
        for (size_t i = 0; i < bag.n; i++)
            if (bag.recs[i]->kind == TS_DENSE && ts_record_to_f32(bag.recs[i]) == 0 &&
                (bag.recs[i]->dtype != DT_F32 || bag.recs[i]->nbytes != (size_t)ts_numel(bag.recs[i]) * 4))
                fail("widening to float32 went wrong", bag.recs[i]->name);
        if (bag.n && bag.recs[0]->name) ts_record_free(ts_bag_take(&bag, bag.recs[0]->name));
        for (size_t i = 0; i < bag.n; i++)
            if (bag.recs[i]->name && ts_bag_get(&bag, bag.recs[i]->name) != bag.recs[i])
                fail("a record lost after another was taken", bag.recs[i]->name);
    }
    ts_bag_free(&bag);
    return 0;
}

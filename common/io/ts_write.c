/* ts_write.c: the tensor stream writer.
 *
 * msgpack-c's packer encodes records into a sink that keeps a running
 * CRC-32C and either buffers raw bytes for write(2) (large payloads go
 * straight from the tensor to the descriptor) or feeds zstd's streaming
 * compressor.  Files are written under a temporary name in the same folder
 * and renamed into place only when complete. */
#include "io/ts.h"

#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY   /* ZSTD_customMem: our allocator for its buffers */
#include <zstd.h>

#include "io/crc.h"

/* The fuzz build (Makefile, build/fuzz/) makes these small, so that small
 * records take the paths of large payloads; BUF_CAP >= DIRECT_MIN. */
#ifndef BUF_CAP
#define BUF_CAP (1u << 20)     /* staging buffer for small writes */
#endif
#ifndef DIRECT_MIN
#define DIRECT_MIN (64u << 10) /* raw writes at least this big bypass it */
#endif
#ifndef CHUNK
#define CHUNK (1u << 20)       /* piece of a large payload: checksum, then write */
#endif

struct ts_writer {
    int fd, own_fd;
    char *path, *tmp;          /* final and temporary names (files only) */
    ZSTD_CCtx *cctx;           /* NULL for raw output */
    uint8_t *buf;              /* [BUF_CAP] raw staging or zstd output */
    size_t len;
    int reused;                /* fd is an older file's: cut at its offset at close */
    uint32_t crc;              /* over every msgpack byte since the header */
    uint64_t nrec;
    int failed;
    char err[512];
    msgpack_packer pk;
};

static int wr_fail(ts_writer *w, const char *fmt, ...)
{
    if (w->failed) return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(w->err, sizeof w->err, "%s: ", w->path ? w->path : "stdout");
    vsnprintf(w->err + n, sizeof w->err - (size_t)n, fmt, ap);
    va_end(ap);
    w->failed = 1;
    return -1;
}

const char *ts_writer_error(const ts_writer *w) { return w->err; }
const char *ts_writer_tmppath(const ts_writer *w) { return w->tmp; }

const char *ts_tmp_host(void)
{
    static char host[65];
    if (gethostname(host, sizeof host - 1) != 0 || !host[0]) strcpy(host, "localhost");
    for (char *h = host; *h; h++)
        if (*h == '/') *h = '_';
    return host;
}

static int wr_all(ts_writer *w, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return wr_fail(w, "write failed: %s", strerror(errno));
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int wr_flush(ts_writer *w)
{
    int st = wr_all(w, w->buf, w->len);
    w->len = 0;
    return st;
}

/* Push n bytes through zstd with the given directive, writing its output. */
static int wr_zstd(ts_writer *w, const void *p, size_t n, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {p, n, 0};
    for (;;) {
        ZSTD_outBuffer out = {w->buf, BUF_CAP, 0};
        size_t rem = ZSTD_compressStream2(w->cctx, &out, &in, mode);
        if (ZSTD_isError(rem)) return wr_fail(w, "zstd: %s", ZSTD_getErrorName(rem));
        if (wr_all(w, w->buf, out.pos) < 0) return -1;
        if (mode == ZSTD_e_continue ? in.pos == in.size : rem == 0) return 0;
    }
}

/* The packer's sink: every msgpack byte passes here. */
static int wr_sink(void *data, const char *p, size_t n)
{
    ts_writer *w = data;
    if (w->failed) return -1;
    if (n >= DIRECT_MIN) {
        /* large payloads in pieces, checksummed while still in cache */
        if (!w->cctx && wr_flush(w) < 0) return -1;
        for (size_t at = 0; at < n; at += CHUNK) {
            size_t k = n - at < CHUNK ? n - at : CHUNK;
            w->crc = crc_32c(w->crc, p + at, k);
            if ((w->cctx ? wr_zstd(w, p + at, k, ZSTD_e_continue) : wr_all(w, (const uint8_t *)p + at, k)) < 0)
                return -1;
        }
        return 0;
    }
    w->crc = crc_32c(w->crc, p, n);
    if (w->cctx) return wr_zstd(w, p, n, ZSTD_e_continue);
    if (w->len + n > BUF_CAP && wr_flush(w) < 0) return -1;
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

static void wr_str(ts_writer *w, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(&w->pk, n);
    msgpack_pack_str_body(&w->pk, s, n);
}

static void wr_bin(ts_writer *w, const void *p, size_t n)
{
    msgpack_pack_bin(&w->pk, n);
    msgpack_pack_bin_body(&w->pk, p, n);
}

static void wr_shape(ts_writer *w, int ndim, const int64_t *shape)
{
    msgpack_pack_array(&w->pk, (size_t)ndim);
    for (int i = 0; i < ndim; i++) msgpack_pack_int64(&w->pk, shape[i]);
}

static ts_writer *wr_new(void)
{
    ts_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->buf = ts_alloc_uninit(BUF_CAP))) { free(w); return NULL; }
    w->fd = -1;
    msgpack_packer_init(&w->pk, w, wr_sink);
    return w;
}

/* Rename reuse to tmp and open it for overwriting: the descriptor, or -1
 * when reuse is not a regular file of one link that can be renamed. */
static int wr_take_over(const char *reuse, const char *tmp)
{
    struct stat st;
    if (!reuse || lstat(reuse, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) return -1;
    if (rename(reuse, tmp) != 0) return -1;
    int fd = open(tmp, O_WRONLY | O_CLOEXEC);
    if (fd < 0) unlink(tmp);
    return fd;
}

ts_writer *ts_writer_open(const char *path, int zlevel, const char *writer)
{
    return ts_writer_open_reusing(path, zlevel, writer, NULL);
}

ts_writer *ts_writer_open_reusing(const char *path, int zlevel, const char *writer, const char *reuse)
{
    ts_writer *w = wr_new();
    if (!w) return NULL;
    struct stat st;
    if (!path || strcmp(path, "-") == 0) {
        w->fd = 1;
    } else if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* a device or a FIFO (-o /dev/null): written in place; a temporary
         * renamed over it would replace the device node with a file */
        w->path = strdup(path);
        if (!w->path) { ts_writer_abort(w); return NULL; }
        w->fd = open(path, O_WRONLY | O_CLOEXEC);
        w->own_fd = 1;
        if (w->fd < 0) { wr_fail(w, "cannot open: %s", strerror(errno)); return w; }
    } else {
        w->path = strdup(path);
        /* PATH.tmp.HOST.PID: on a folder shared by several hosts (a cluster),
         * a leftover names the machine whose PIDs can judge it */
        const char *host = ts_tmp_host();
        size_t n = strlen(path) + strlen(host) + 32;
        w->tmp = malloc(n);
        if (!w->path || !w->tmp) { ts_writer_abort(w); return NULL; }
        snprintf(w->tmp, n, "%s.tmp.%s.%ld", path, host, (long)getpid());
        w->fd = wr_take_over(reuse, w->tmp);
        w->reused = w->fd >= 0;
        if (w->fd < 0) w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        w->own_fd = 1;
        if (w->fd < 0) {
            free(w->tmp);
            w->tmp = NULL;
            wr_fail(w, "cannot create: %s", strerror(errno));
            return w;
        }
    }
    if (zlevel > 0) {
        w->cctx = ZSTD_createCCtx_advanced((ZSTD_customMem){ts_zstd_alloc, ts_zstd_free, NULL});
        if (!w->cctx) { wr_fail(w, "out of memory"); return w; }
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, zlevel);
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
    }
    /* the segment header */
    msgpack_pack_map(&w->pk, 3);
    wr_str(w, "stream"); wr_str(w, "diffmm-ts");
    wr_str(w, "version"); msgpack_pack_int(&w->pk, 1);
    wr_str(w, "writer"); wr_str(w, writer ? writer : "?");
    return w;
}

/* A record name as every reader accepts it: 1 to TS_NAME_MAX bytes. */
static int wr_check_name(ts_writer *w, const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0) return wr_fail(w, "a record without a name cannot be written");
    if (n > TS_NAME_MAX) return wr_fail(w, "record name of %zu bytes (at most %d): '%.64s...'", n, TS_NAME_MAX, name);
    return 0;
}

int ts_write_dense(ts_writer *w, const char *name, dt_type dtype, int ndim,
                   const int64_t *shape, const void *data)
{
    if (w->failed || wr_check_name(w, name) < 0) return -1;
    /* the readers' rules (ts_dense_size): what they would refuse is never written */
    uint64_t nbytes;
    char why[256];
    if (ts_dense_size(ndim, shape, dt_size(dtype), &nbytes, why, sizeof why) < 0)
        return wr_fail(w, "tensor '%s': %s", name, why);
    size_t n = (size_t)nbytes;
    msgpack_pack_map(&w->pk, 4);
    wr_str(w, "name"); wr_str(w, name);
    wr_str(w, "dtype"); wr_str(w, dt_name(dtype));
    wr_str(w, "shape"); wr_shape(w, ndim, shape);
    wr_str(w, "data"); wr_bin(w, data, n);
    w->nrec++;
    return w->failed ? -1 : 0;
}

int ts_write_csr(ts_writer *w, const char *name, const ts_csr *m)
{
    if (w->failed || wr_check_name(w, name) < 0) return -1;
    /* the readers' rules: sizes, the shared cap on columns, indptr, and
     * columns in range and strictly increasing within each row */
    if (m->rows < 0 || m->cols < 0 || m->nnz < 0 || (uint64_t)m->nnz > TS_PAYLOAD_MAX / 4 ||
        (uint64_t)m->rows >= TS_PAYLOAD_MAX / 8)
        return wr_fail(w, "csr '%s' of %lld x %lld with %lld entries is too large for one record (%llu bytes per array)",
                       name, (long long)m->rows, (long long)m->cols, (long long)m->nnz,
                       (unsigned long long)TS_PAYLOAD_MAX);
    if (m->cols > TS_DIM_MAX)
        return wr_fail(w, "csr '%s' has %lld columns, more than the %lld a matrix may have", name, (long long)m->cols,
                       (long long)TS_DIM_MAX);
    if (m->indptr[0] != 0 || m->indptr[m->rows] != m->nnz)
        return wr_fail(w, "csr '%s': indptr runs from %lld to %lld, not 0 to its %lld entries", name,
                       (long long)m->indptr[0], (long long)m->indptr[m->rows], (long long)m->nnz);
    for (int64_t i = 0; i < m->rows; i++) {
        if (m->indptr[i + 1] < m->indptr[i]) return wr_fail(w, "csr '%s': indptr decreases at row %lld", name, (long long)i);
        int64_t prev = -1;
        for (int64_t k = m->indptr[i]; k < m->indptr[i + 1]; k++) {
            if (m->indices[k] <= prev || m->indices[k] >= m->cols)
                return wr_fail(w, "csr '%s': row %lld has column %d after %lld in %lld columns (columns must be in "
                               "range and strictly increasing within a row)", name, (long long)i, m->indices[k],
                               (long long)prev, (long long)m->cols);
            prev = m->indices[k];
        }
    }
    int64_t shape[2] = {m->rows, m->cols};
    msgpack_pack_map(&w->pk, 6);
    wr_str(w, "name"); wr_str(w, name);
    wr_str(w, "format"); wr_str(w, "csr");
    wr_str(w, "shape"); wr_shape(w, 2, shape);
    wr_str(w, "indptr"); wr_bin(w, m->indptr, (size_t)(m->rows + 1) * 8);
    wr_str(w, "indices"); wr_bin(w, m->indices, (size_t)m->nnz * 4);
    wr_str(w, "values"); wr_bin(w, m->values, (size_t)m->nnz * 4);
    w->nrec++;
    return w->failed ? -1 : 0;
}

int ts_write(ts_writer *w, const ts_record *r)
{
    if (r->kind == TS_DENSE) return ts_write_dense(w, r->name, r->dtype, r->ndim, r->shape, r->data);
    if (r->kind == TS_CSR) return ts_write_csr(w, r->name, &r->csr);
    if (w->failed || (r->name && wr_check_name(w, r->name) < 0)) return -1;
    msgpack_pack_map(&w->pk, r->nfields);
    for (size_t i = 0; i < r->nfields; i++) {
        const ts_field *f = &r->fields[i];
        wr_str(w, f->key);
        if (f->raw) wr_sink(w, (const char *)f->raw, f->rawlen);
        else wr_bin(w, f->bin, f->binlen);
    }
    w->nrec++;
    return w->failed ? -1 : 0;
}

static void wr_free(ts_writer *w)
{
    if (w->own_fd && w->fd >= 0) close(w->fd);
    ZSTD_freeCCtx(w->cctx);
    free(w->buf);
    free(w->path);
    free(w->tmp);
    free(w);
}

int ts_writer_close(ts_writer *w, char *err, size_t errlen)
{
    if (!w->failed) {
        uint32_t crc = w->crc;           /* covers header .. last record */
        msgpack_pack_map(&w->pk, 3);
        wr_str(w, "end"); wr_str(w, "diffmm-ts");
        wr_str(w, "records"); msgpack_pack_uint64(&w->pk, w->nrec);
        wr_str(w, "crc32c"); msgpack_pack_uint32(&w->pk, crc);
        if (!w->failed) {
            if (w->cctx) wr_zstd(w, NULL, 0, ZSTD_e_end);
            else wr_flush(w);
        }
    }
    if (!w->failed && w->reused) {               /* the offset is the length written */
        off_t end = lseek(w->fd, 0, SEEK_CUR);
        if (end < 0 || ftruncate(w->fd, end) < 0)
            wr_fail(w, "cannot cut the reused file to length: %s", strerror(errno));
    }
    if (!w->failed && w->own_fd) {
        if (close(w->fd) < 0) wr_fail(w, "close failed: %s", strerror(errno));
        w->fd = -1;
        if (!w->failed && w->tmp && rename(w->tmp, w->path) < 0)
            wr_fail(w, "cannot rename into place: %s", strerror(errno));
    }
    int st = w->failed ? -1 : 0;
    if (st < 0) {
        if (err) snprintf(err, errlen, "%s", w->err);
        ts_writer_abort(w);
        return -1;
    }
    wr_free(w);
    return 0;
}

void ts_writer_abort(ts_writer *w)
{
    if (!w) return;
    if (w->own_fd && w->fd >= 0) { close(w->fd); w->fd = -1; }
    if (w->tmp) unlink(w->tmp);
    wr_free(w);
}

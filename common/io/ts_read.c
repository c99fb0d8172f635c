/* ts_read.c: the tensor stream reader.
 *
 * Layers, bottom up: a descriptor read into a buffer; zstd frames detected
 * by magic at record boundaries and decompressed on the fly (large payloads
 * straight into their destination, never holding the whole input); a
 * streaming msgpack parser that reads bin payloads directly into aligned
 * tensor memory; record classification and validation; segment checks
 * (header, record count, CRC-32C). */
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
 * inputs reach the paths of payloads larger than a buffer. */
#ifndef IN_CAP
#define IN_CAP (1u << 20)        /* descriptor read buffer */
#endif
#ifndef OUT_CAP
#define OUT_CAP (1u << 20)       /* decompressed staging buffer */
#endif
#define KEY_MAX TS_NAME_MAX      /* longest map key or name */
#define RAW_MAX (64u << 20)      /* largest non-bin value kept as bytes */
#define DEPTH_MAX 64             /* nesting of arrays/maps in a value */

struct ts_reader {
    int fd, own_fd;
    char label[256];
    char err[512];
    int failed;
    uint8_t *in;                 /* [IN_CAP] bytes read from fd */
    size_t in_pos, in_len;
    int eof;
    ZSTD_DCtx *dctx;
    int in_frame;                /* inside a zstd frame */
    uint8_t *out;                /* [OUT_CAP] decompressed, not yet consumed */
    size_t out_pos, out_len;
    uint64_t offset;             /* msgpack bytes consumed so far */
    uint64_t nrec;               /* records returned so far */
    uint32_t crc;                /* CRC-32C of msgpack bytes since segment start */
    int in_segment;
    uint64_t seg_records;        /* records inside the open segment */
    char writer[64];             /* who wrote the open segment */
    const char *what;            /* record being parsed, for messages */
    int (*keep)(const char *name, void *ctx);   /* record filter, or NULL */
    void *keep_ctx;
    int64_t file_left;           /* bytes of a regular file after where we started, or -1 */
    uint64_t fd_read;            /* bytes read from fd so far */
};

/* Text from the input (names, keys, dtypes, the writer's name) shown in a
 * message: control bytes become '?', so a message stays one line and never
 * drives a terminal.  In place; returns s. */
static char *rd_printable(char *s)
{
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    return s;
}

static int rd_fail(ts_reader *r, const char *fmt, ...)
{
    if (r->failed) return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(r->err, sizeof r->err, "%s: ", r->label);
    vsnprintf(r->err + n, sizeof r->err - (size_t)n, fmt, ap);
    va_end(ap);
    r->failed = 1;
    return -1;
}

ts_reader *ts_reader_fdopen(int fd, const char *label)
{
    ts_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->in = ts_alloc_uninit(IN_CAP);
    r->out = ts_alloc_uninit(OUT_CAP);
    r->dctx = ZSTD_createDCtx_advanced((ZSTD_customMem){ts_zstd_alloc, ts_zstd_free, NULL});
    if (!r->in || !r->out || !r->dctx) { ts_reader_close(r); return NULL; }
    r->fd = fd;
    snprintf(r->label, sizeof r->label, "%s", label);
    r->file_left = -1;
    struct stat st;
    off_t at;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (at = lseek(fd, 0, SEEK_CUR)) >= 0 && at <= st.st_size)
        r->file_left = (int64_t)(st.st_size - at);
    return r;
}

ts_reader *ts_reader_open(const char *path)
{
    int stdin_ = !path || strcmp(path, "-") == 0;
    int fd = stdin_ ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    ts_reader *r = ts_reader_fdopen(fd < 0 ? -1 : fd, stdin_ ? "stdin" : path);
    if (!r) { if (fd > 0) close(fd); return NULL; }
    r->own_fd = !stdin_ && fd >= 0;
    if (fd < 0) rd_fail(r, "cannot open: %s", strerror(errno));
    else {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) rd_fail(r, "is a directory, not a stream");
    }
    return r;
}

void ts_reader_close(ts_reader *r)
{
    if (!r) return;
    if (r->own_fd) close(r->fd);
    free(r->in);
    free(r->out);
    ZSTD_freeDCtx(r->dctx);
    free(r);
}

const char *ts_reader_error(const ts_reader *r) { return r->err; }

void ts_reader_filter(ts_reader *r, int (*keep)(const char *name, void *ctx), void *ctx)
{
    r->keep = keep;
    r->keep_ctx = ctx;
}

/* ---- bytes from the descriptor ---- */

/* Make at least `want` (<= IN_CAP) unread input bytes available, or as many
 * as remain before end of file.  Returns the number available, -1 on error. */
static ssize_t rd_fill(ts_reader *r, size_t want)
{
    if (r->in_len - r->in_pos >= want || r->eof) return (ssize_t)(r->in_len - r->in_pos);
    memmove(r->in, r->in + r->in_pos, r->in_len - r->in_pos);
    r->in_len -= r->in_pos;
    r->in_pos = 0;
    while (r->in_len < want && !r->eof) {
        ssize_t k = read(r->fd, r->in + r->in_len, IN_CAP - r->in_len);
        if (k < 0) {
            if (errno == EINTR) continue;
            return rd_fail(r, "read failed: %s", strerror(errno));
        }
        if (k == 0) r->eof = 1;
        r->in_len += (size_t)k;
        r->fd_read += (uint64_t)k;
    }
    return (ssize_t)(r->in_len - r->in_pos);
}

/* At a point where a zstd frame may begin: enter it if the magic is there,
 * skip skippable frames.  Returns 0, or -1 on error. */
static int rd_detect_frame(ts_reader *r)
{
    for (;;) {
        ssize_t have = rd_fill(r, 8);
        if (have < 0) return -1;
        if (have < 4) return 0;
        uint32_t magic;
        memcpy(&magic, r->in + r->in_pos, 4);
        if (magic == ZSTD_MAGICNUMBER) {
            ZSTD_DCtx_reset(r->dctx, ZSTD_reset_session_only);
            r->in_frame = 1;
            return 0;
        }
        if ((magic & ZSTD_MAGIC_SKIPPABLE_MASK) != ZSTD_MAGIC_SKIPPABLE_START) return 0;
        if (have < 8) return rd_fail(r, "truncated zstd skippable frame");
        uint32_t len;
        memcpy(&len, r->in + r->in_pos + 4, 4);
        r->in_pos += 8;
        while (len) {
            ssize_t h = rd_fill(r, 1);
            if (h < 0) return -1;
            if (h == 0) return rd_fail(r, "truncated zstd skippable frame");
            size_t k = (size_t)h < len ? (size_t)h : len;
            r->in_pos += k;
            len -= (uint32_t)k;
        }
    }
}

/* Decompress into out (n bytes of room); returns bytes produced, -1 on
 * error.  Leaves the frame (and looks for the next) when it ends. */
static ssize_t rd_inflate(ts_reader *r, uint8_t *dst, size_t n)
{
    ZSTD_outBuffer ob = {dst, n, 0};
    while (ob.pos == 0 && r->in_frame) {
        ssize_t have = rd_fill(r, 1);
        if (have < 0) return -1;
        ZSTD_inBuffer ib = {r->in + r->in_pos, (size_t)have, 0};
        size_t ret = ZSTD_decompressStream(r->dctx, &ob, &ib);
        r->in_pos += ib.pos;
        if (ZSTD_isError(ret))
            return rd_fail(r, "corrupt zstd data near byte %llu of the stream: %s",
                           (unsigned long long)r->offset, ZSTD_getErrorName(ret));
        if (ret == 0) {
            r->in_frame = 0;
            if (rd_detect_frame(r) < 0) return -1;
        } else if (have == 0 && ib.pos == 0 && ob.pos == 0) {
            return rd_fail(r, "truncated: the zstd frame ends early (at byte %llu of its content)",
                           (unsigned long long)r->offset);
        }
    }
    return (ssize_t)ob.pos;
}

/* Read exactly n logical (msgpack) bytes into dst.  Returns 0, or -1 with
 * a message naming the truncation. */
static int rd_get(ts_reader *r, void *dst_, size_t n)
{
    uint8_t *dst = dst_;
    const uint8_t *start = dst;
    size_t total = n;
    while (n) {
        if (r->out_pos < r->out_len) {
            size_t k = r->out_len - r->out_pos < n ? r->out_len - r->out_pos : n;
            memcpy(dst, r->out + r->out_pos, k);
            r->out_pos += k; dst += k; n -= k;
            continue;
        }
        if (r->in_frame) {
            ssize_t k;
            if (n >= OUT_CAP) {          /* large payload: straight to dst */
                if ((k = rd_inflate(r, dst, n)) < 0) return -1;
                dst += k; n -= (size_t)k;
            } else {
                if ((k = rd_inflate(r, r->out, OUT_CAP)) < 0) return -1;
                r->out_pos = 0; r->out_len = (size_t)k;
            }
            continue;
        }
        if (r->in_pos < r->in_len) {
            size_t k = r->in_len - r->in_pos < n ? r->in_len - r->in_pos : n;
            memcpy(dst, r->in + r->in_pos, k);
            r->in_pos += k; dst += k; n -= k;
            continue;
        }
        if (r->eof) goto truncated;
        if (n >= IN_CAP) {               /* large payload: read() straight in */
            ssize_t k = read(r->fd, dst, n);
            if (k < 0) {
                if (errno == EINTR) continue;
                return rd_fail(r, "read failed: %s", strerror(errno));
            }
            if (k == 0) { r->eof = 1; goto truncated; }
            r->fd_read += (uint64_t)k;
            dst += k; n -= (size_t)k;
        } else if (rd_fill(r, 1) < 0) {
            return -1;
        }
    }
    r->crc = crc_32c(r->crc, start, total);
    r->offset += total;
    return 0;
truncated:
    r->offset += total - n;
    return rd_fail(r, "truncated: input ends at byte %llu inside %s",
                   (unsigned long long)r->offset, r->what);
}

/* At a record boundary: 1 if a record follows, 0 at clean end, -1 error. */
static int rd_more(ts_reader *r)
{
    for (;;) {
        if (r->out_pos < r->out_len) return 1;
        if (r->in_frame) {
            ssize_t k = rd_inflate(r, r->out, OUT_CAP);
            if (k < 0) return -1;
            r->out_pos = 0; r->out_len = (size_t)k;
            continue;
        }
        if (rd_detect_frame(r) < 0) return -1;
        if (r->in_frame) continue;
        ssize_t have = rd_fill(r, 1);
        if (have < 0) return -1;
        return have > 0;
    }
}

/* ---- msgpack, streamed ---- */

static int rd_u8(ts_reader *r, uint8_t *v) { return rd_get(r, v, 1); }

static int rd_be(ts_reader *r, int bytes, uint64_t *v)
{
    uint8_t b[8];
    if (rd_get(r, b, (size_t)bytes) < 0) return -1;
    *v = 0;
    for (int i = 0; i < bytes; i++) *v = (*v << 8) | b[i];
    return 0;
}

/* A growable byte buffer for captured values. */
typedef struct { uint8_t *p; size_t len, cap; } rd_buf;

static int rd_buf_put(ts_reader *r, rd_buf *b, const void *src, size_t n)
{
    if (b->len + n > RAW_MAX) return rd_fail(r, "value in %s larger than %u bytes", r->what, RAW_MAX);
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) return rd_fail(r, "out of memory");
        b->p = p; b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

/* Copy n bytes of input into b. */
static int rd_copy(ts_reader *r, rd_buf *b, uint64_t n)
{
    uint8_t tmp[4096];
    while (n) {
        size_t k = n < sizeof tmp ? (size_t)n : sizeof tmp;
        if (rd_get(r, tmp, k) < 0 || rd_buf_put(r, b, tmp, k) < 0) return -1;
        n -= k;
    }
    return 0;
}

/* Copy one whole msgpack value (its type byte already read as t) into b. */
static int rd_value(ts_reader *r, rd_buf *b, uint8_t t, int depth)
{
    if (depth > DEPTH_MAX) return rd_fail(r, "values nested deeper than %d in %s", DEPTH_MAX, r->what);
    if (rd_buf_put(r, b, &t, 1) < 0) return -1;
    uint64_t n = 0, elems = 0;
    int lenbytes = 0;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) return 0;
    if (t >= 0xa0 && t <= 0xbf) return rd_copy(r, b, t & 0x1f);
    if (t >= 0x90 && t <= 0x9f) elems = t & 0x0f;
    else if (t >= 0x80 && t <= 0x8f) elems = 2u * (t & 0x0f);
    else switch (t) {
    case 0xc4: case 0xd9: lenbytes = 1; break;          /* bin8 str8 */
    case 0xc5: case 0xda: lenbytes = 2; break;          /* bin16 str16 */
    case 0xc6: case 0xdb: lenbytes = 4; break;          /* bin32 str32 */
    case 0xc7: lenbytes = 1; break;                     /* ext8/16/32 */
    case 0xc8: lenbytes = 2; break;
    case 0xc9: lenbytes = 4; break;
    case 0xca: return rd_copy(r, b, 4);
    case 0xcb: return rd_copy(r, b, 8);
    case 0xcc: case 0xd0: return rd_copy(r, b, 1);
    case 0xcd: case 0xd1: return rd_copy(r, b, 2);
    case 0xce: case 0xd2: return rd_copy(r, b, 4);
    case 0xcf: case 0xd3: return rd_copy(r, b, 8);
    case 0xd4: return rd_copy(r, b, 2);                 /* fixext */
    case 0xd5: return rd_copy(r, b, 3);
    case 0xd6: return rd_copy(r, b, 5);
    case 0xd7: return rd_copy(r, b, 9);
    case 0xd8: return rd_copy(r, b, 17);
    case 0xdc: case 0xde: lenbytes = -2; break;         /* array16 map16 */
    case 0xdd: case 0xdf: lenbytes = -4; break;         /* array32 map32 */
    default: return rd_fail(r, "invalid msgpack byte 0x%02x in %s at byte %llu", t, r->what,
                            (unsigned long long)r->offset);
    }
    if (lenbytes) {
        int k = lenbytes < 0 ? -lenbytes : lenbytes;
        uint8_t lb[4];
        if (rd_get(r, lb, (size_t)k) < 0 || rd_buf_put(r, b, lb, (size_t)k) < 0) return -1;
        for (int i = 0; i < k; i++) n = (n << 8) | lb[i];
        if (lenbytes > 0) return rd_copy(r, b, n + (t >= 0xc7 && t <= 0xc9)); /* ext: +type */
        elems = (t == 0xde || t == 0xdf) ? 2 * n : n;
    }
    for (uint64_t i = 0; i < elems; i++) {
        uint8_t c;
        if (rd_u8(r, &c) < 0 || rd_value(r, b, c, depth + 1) < 0) return -1;
    }
    return 0;
}

/* Read a str whose type byte is t into s (NUL-terminated, <= KEY_MAX). */
static int rd_str(ts_reader *r, uint8_t t, char *s)
{
    uint64_t n;
    if (t >= 0xa0 && t <= 0xbf) n = t & 0x1f;
    else if (t == 0xd9) { if (rd_be(r, 1, &n) < 0) return -1; }
    else if (t == 0xda) { if (rd_be(r, 2, &n) < 0) return -1; }
    else if (t == 0xdb) { if (rd_be(r, 4, &n) < 0) return -1; }
    else return rd_fail(r, "map key in %s is not a string (type byte 0x%02x at byte %llu)",
                        r->what, t, (unsigned long long)r->offset);
    if (n > KEY_MAX) return rd_fail(r, "map key in %s longer than %d bytes", r->what, KEY_MAX);
    if (rd_get(r, s, (size_t)n) < 0) return -1;
    s[n] = 0;
    return 0;
}

/* ---- records ---- */

static void rd_fields_free(ts_field *f, size_t n)
{
    for (size_t i = 0; i < n; i++) { free(f[i].key); free(f[i].raw); free(f[i].bin); }
    free(f);
}

/* Consume n logical bytes without keeping them (checksummed as read). */
static int rd_discard(ts_reader *r, uint64_t n)
{
    uint8_t tmp[65536];
    while (n) {
        size_t k = n < sizeof tmp ? (size_t)n : sizeof tmp;
        if (rd_get(r, tmp, k) < 0) return -1;
        n -= k;
    }
    return 0;
}

/* The most logical bytes that can still come, when that is known: reading
 * a raw (uncompressed) part of a regular file, what is buffered plus what
 * the file holds after it.  Inside a zstd frame it is not known. */
static int rd_bytes_left(const ts_reader *r, uint64_t *left)
{
    if (r->file_left < 0 || r->in_frame) return 0;
    int64_t unread = r->file_left - (int64_t)r->fd_read;
    *left = (uint64_t)(unread > 0 ? unread : 0) + (r->in_len - r->in_pos) + (r->out_len - r->out_pos);
    return 1;
}

/* Parse one map into fields.  Bin values land in aligned buffers, unless
 * the filter has refused the record's name: then they are read past and
 * *skipped is set. */
static int rd_fields(ts_reader *r, ts_field **out, size_t *nout, int *skipped)
{
    *skipped = 0;
    uint8_t t;
    uint64_t n = 0;
    if (rd_u8(r, &t) < 0) return -1;
    if (t >= 0x80 && t <= 0x8f) n = t & 0x0f;
    else if (t == 0xde) { if (rd_be(r, 2, &n) < 0) return -1; }
    else if (t == 0xdf) { if (rd_be(r, 4, &n) < 0) return -1; }
    else return rd_fail(r, "record %llu at byte %llu is not a msgpack map (type byte 0x%02x): "
                        "not a tensor stream, or corrupt",
                        (unsigned long long)r->nrec + 1, (unsigned long long)r->offset - 1, t);
    if (n > 4096) return rd_fail(r, "record %llu has %llu fields (at most 4096)",
                                 (unsigned long long)r->nrec + 1, (unsigned long long)n);
    ts_field *f = calloc(n ? n : 1, sizeof *f);
    if (!f) return rd_fail(r, "out of memory");
    char key[KEY_MAX + 1];
    for (uint64_t i = 0; i < n; i++) {
        if (rd_u8(r, &t) < 0 || rd_str(r, t, key) < 0) goto fail;
        if (!(f[i].key = strdup(key))) { rd_fail(r, "out of memory"); goto fail; }
        if (rd_u8(r, &t) < 0) goto fail;
        if (t == 0xc4 || t == 0xc5 || t == 0xc6) {
            uint64_t len;
            if (rd_be(r, t == 0xc4 ? 1 : t == 0xc5 ? 2 : 4, &len) < 0) goto fail;
            uint64_t left;
            if (rd_bytes_left(r, &left) && len > left) {
                rd_fail(r, "truncated: '%s' in %s declares %llu bytes but the file holds only %llu more",
                        rd_printable(key), r->what, (unsigned long long)len, (unsigned long long)left);
                goto fail;
            }
            if (*skipped) {
                if (rd_discard(r, len) < 0) goto fail;
                continue;
            }
            void *p = ts_alloc_uninit(len);       /* filled by rd_get at once */
            if (!p) {
                rd_fail(r, "out of memory for %llu bytes in %s", (unsigned long long)len, r->what);
                goto fail;
            }
            f[i].bin = p;
            f[i].binlen = len;
            if (rd_get(r, p, len) < 0) goto fail;
        } else {
            rd_buf b = {0};
            if (rd_value(r, &b, t, 0) < 0) { free(b.p); goto fail; }
            f[i].raw = b.p;
            f[i].rawlen = b.len;
        }
        if (strcmp(key, "name") == 0 && f[i].raw) {
            /* name the record in later messages as soon as we know it */
            static __thread char namebuf[300];
            msgpack_unpacked u;
            msgpack_unpacked_init(&u);
            size_t off = 0;
            if (msgpack_unpack_next(&u, (const char *)f[i].raw, f[i].rawlen, &off) == MSGPACK_UNPACK_SUCCESS &&
                u.data.type == MSGPACK_OBJECT_STR) {
                /* a name is 1 to KEY_MAX bytes without NUL (which would cut it short in C) */
                size_t len = u.data.via.str.size;
                const char *why = len == 0 ? "is empty"
                                : len > KEY_MAX ? "is too long"
                                : memchr(u.data.via.str.ptr, 0, len) ? "holds a NUL byte" : NULL;
                if (why) {
                    rd_fail(r, "%s: 'name' %s (%zu bytes; a name is 1 to %d bytes, no NUL)", r->what, why, len,
                            KEY_MAX);
                    msgpack_unpacked_destroy(&u);
                    goto fail;
                }
                snprintf(namebuf, sizeof namebuf, "record '%.*s'", (int)(len > 256 ? 256 : len), u.data.via.str.ptr);
                r->what = rd_printable(namebuf);
                if (r->keep) {
                    char name[KEY_MAX + 1];
                    memcpy(name, u.data.via.str.ptr, len);
                    name[len] = 0;
                    *skipped = !r->keep(name, r->keep_ctx);
                }
            }
            msgpack_unpacked_destroy(&u);
        }
    }
    *out = f;
    *nout = (size_t)n;
    return 0;
fail:
    rd_fields_free(f, (size_t)n);
    return -1;
}

static ts_field *rd_field(ts_field *f, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i].key, key) == 0) return &f[i];
    return NULL;
}

/* Decode a field's msgpack value; caller destroys u. */
static int rd_obj(const ts_field *f, msgpack_unpacked *u)
{
    msgpack_unpacked_init(u);
    size_t off = 0;
    if (!f || !f->raw) return -1;
    return msgpack_unpack_next(u, (const char *)f->raw, f->rawlen, &off) == MSGPACK_UNPACK_SUCCESS ? 0 : -1;
}

/* f's value as a string in s (size cap), or -1. */
static int rd_field_str(const ts_field *f, char *s, size_t cap)
{
    msgpack_unpacked u;
    int ok = rd_obj(f, &u) == 0 && u.data.type == MSGPACK_OBJECT_STR && u.data.via.str.size < cap;
    if (ok) {
        /* msgpack-c gives an empty str a NULL pointer: memcpy may not see it */
        if (u.data.via.str.size) memcpy(s, u.data.via.str.ptr, u.data.via.str.size);
        s[u.data.via.str.size] = 0;
    }
    msgpack_unpacked_destroy(&u);
    return ok ? 0 : -1;
}

static int rd_field_int(const ts_field *f, int64_t *v)
{
    msgpack_unpacked u;
    int ok = rd_obj(f, &u) == 0;
    if (ok && u.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER && u.data.via.u64 <= INT64_MAX) *v = (int64_t)u.data.via.u64;
    else if (ok && u.data.type == MSGPACK_OBJECT_NEGATIVE_INTEGER) *v = u.data.via.i64;
    else ok = 0;
    msgpack_unpacked_destroy(&u);
    return ok ? 0 : -1;
}

/* A shape field: array of up to TS_MAXDIM non-negative ints (their limits
 * are checked by the caller, which knows what backs them). */
static int rd_shape(ts_reader *r, const ts_field *f, int *ndim, int64_t *shape)
{
    msgpack_unpacked u;
    int ok = rd_obj(f, &u) == 0 && u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size <= TS_MAXDIM;
    if (ok) {
        *ndim = (int)u.data.via.array.size;
        for (int i = 0; i < *ndim; i++) {
            msgpack_object *o = &u.data.via.array.ptr[i];
            if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > (uint64_t)INT64_MAX) ok = 0;
            else shape[i] = (int64_t)o->via.u64;
        }
    }
    msgpack_unpacked_destroy(&u);
    return ok ? 0 : rd_fail(r, "%s: 'shape' is not a list of at most %d non-negative integers", r->what, TS_MAXDIM);
}

/* Take ownership of a bin field's payload. */
static void *rd_take_bin(ts_field *f)
{
    void *p = f->bin;
    f->bin = NULL;
    return p;
}

static int rd_make_dense(ts_reader *r, ts_record *rec, ts_field *f, size_t n)
{
    char dts[16];
    ts_field *fd = rd_field(f, n, "dtype"), *fs = rd_field(f, n, "shape"), *fdata = rd_field(f, n, "data");
    if (!fs || !fdata) return rd_fail(r, "%s: dense tensor without %s", r->what, !fs ? "'shape'" : "'data'");
    if (rd_field_str(fd, dts, sizeof dts) < 0) return rd_fail(r, "%s: 'dtype' is not a short string", r->what);
    if (dt_parse(dts, strlen(dts), &rec->dtype) < 0)
        return rd_fail(r, "%s: unsupported dtype '%s' (expected <f4 <f2 <f8 <i4 <i8 or |u1)", r->what,
                       rd_printable(dts));
    if (rd_shape(r, fs, &rec->ndim, rec->shape) < 0) return -1;
    if (!fdata->bin) return rd_fail(r, "%s: 'data' is not a bin", r->what);
    uint64_t want;
    char why[256];
    if (ts_dense_size(rec->ndim, rec->shape, dt_size(rec->dtype), &want, why, sizeof why) < 0)
        return rd_fail(r, "%s: %s", r->what, why);
    if (want != fdata->binlen)
        return rd_fail(r, "%s: shape and dtype need %llu bytes but 'data' holds %zu", r->what,
                       (unsigned long long)want, fdata->binlen);
    rec->nbytes = fdata->binlen;
    rec->data = rd_take_bin(fdata);
    return 0;
}

static int rd_make_csr(ts_reader *r, ts_record *rec, ts_field *f, size_t n)
{
    char fmt[16];
    if (rd_field_str(rd_field(f, n, "format"), fmt, sizeof fmt) < 0 || strcmp(fmt, "csr") != 0)
        return rd_fail(r, "%s: unsupported sparse format (only \"csr\")", r->what);
    int ndim;
    int64_t shape[TS_MAXDIM];
    if (rd_shape(r, rd_field(f, n, "shape"), &ndim, shape) < 0) return -1;
    if (ndim != 2) return rd_fail(r, "%s: csr shape has %d dimensions, not 2", r->what, ndim);
    /* nothing backs the columns: they get the shared cap (below INT32_MAX, the indices' type) */
    if (shape[1] > TS_DIM_MAX)
        return rd_fail(r, "%s: %lld columns, more than the %lld a matrix may have", r->what, (long long)shape[1],
                       (long long)TS_DIM_MAX);
    ts_field *fp = rd_field(f, n, "indptr"), *fi = rd_field(f, n, "indices"), *fv = rd_field(f, n, "values");
    if (!fp || !fi || !fv || !fp->bin || !fi->bin || !fv->bin)
        return rd_fail(r, "%s: csr needs bin fields 'indptr', 'indices' and 'values'", r->what);
    int64_t rows = shape[0], cols = shape[1];
    /* the rows are backed by indptr, 8 bytes each: compare without multiplying */
    if (fp->binlen % 8 != 0 || fp->binlen / 8 == 0 || (uint64_t)(fp->binlen / 8 - 1) != (uint64_t)rows)
        return rd_fail(r, "%s: indptr holds %zu bytes, %lld rows need %llu", r->what, fp->binlen, (long long)rows,
                       (unsigned long long)rows * 8 + 8);
    const int64_t *ip = (const int64_t *)fp->bin;
    if (ip[0] != 0) return rd_fail(r, "%s: indptr starts at %lld, not 0", r->what, (long long)ip[0]);
    for (int64_t i = 0; i < rows; i++)
        if (ip[i + 1] < ip[i]) return rd_fail(r, "%s: indptr decreases at row %lld", r->what, (long long)i);
    int64_t nnz = ip[rows];
    /* nnz is checked against the entries present by dividing, never by
     * multiplying: nnz * 4 wraps for nnz >= 2^62 */
    if (fi->binlen % 4 != 0 || fv->binlen % 4 != 0 || (uint64_t)nnz != fi->binlen / 4 ||
        (uint64_t)nnz != fv->binlen / 4)
        return rd_fail(r, "%s: indptr ends at %lld but indices/values hold %zu/%zu entries", r->what,
                       (long long)nnz, fi->binlen / 4, fv->binlen / 4);
    const int32_t *ix = (const int32_t *)fi->bin;
    for (int64_t i = 0; i < rows; i++) {
        int64_t prev = -1;
        for (int64_t k = ip[i]; k < ip[i + 1]; k++) {
            if (ix[k] < 0 || ix[k] >= cols)
                return rd_fail(r, "%s: column index %d out of range for %lld columns", r->what, ix[k],
                               (long long)cols);
            if (ix[k] == prev)
                return rd_fail(r, "%s: row %lld holds column %d twice (columns must be strictly increasing within "
                               "a row)", r->what, (long long)i, ix[k]);
            if (ix[k] < prev)
                return rd_fail(r, "%s: row %lld has column %d after column %lld (columns must be strictly "
                               "increasing within a row)", r->what, (long long)i, ix[k], (long long)prev);
            prev = ix[k];
        }
    }
    rec->csr.rows = rows;
    rec->csr.cols = cols;
    rec->csr.nnz = nnz;
    rec->csr.indptr = rd_take_bin(fp);
    rec->csr.indices = rd_take_bin(fi);
    rec->csr.values = rd_take_bin(fv);
    return 0;
}

/* Segment framing records: 1 if handled (header or end), 0 if not one. */
static int rd_framing(ts_reader *r, ts_field *f, size_t n, uint32_t crc_before)
{
    char s[64];
    ts_field *fs = rd_field(f, n, "stream"), *fe = rd_field(f, n, "end");
    if (fs && rd_field_str(fs, s, sizeof s) == 0 && strcmp(s, "diffmm-ts") == 0) {
        int64_t v = 0;
        if (rd_field_int(rd_field(f, n, "version"), &v) < 0 || v != 1)
            return rd_fail(r, "stream format version %lld is not one this program reads (1)", (long long)v);
        if (r->in_segment)
            return rd_fail(r, "truncated: the stream written by %s stops after %llu records without its end "
                           "record, and another stream starts at byte %llu", r->writer,
                           (unsigned long long)r->seg_records, (unsigned long long)r->offset);
        if (rd_field_str(rd_field(f, n, "writer"), r->writer, sizeof r->writer) < 0) strcpy(r->writer, "?");
        rd_printable(r->writer);            /* only ever shown in messages */
        r->in_segment = 1;
        r->seg_records = 0;
        return 1;
    }
    if (fe && rd_field_str(fe, s, sizeof s) == 0 && strcmp(s, "diffmm-ts") == 0) {
        int64_t count = -1, crc = -1;
        rd_field_int(rd_field(f, n, "records"), &count);
        rd_field_int(rd_field(f, n, "crc32c"), &crc);
        if (!r->in_segment) return rd_fail(r, "end record at byte %llu without a stream header",
                                           (unsigned long long)r->offset);
        if (count != (int64_t)r->seg_records)
            return rd_fail(r, "corrupt: the end record counts %lld records but %llu were read",
                           (long long)count, (unsigned long long)r->seg_records);
        if (crc != (int64_t)crc_before)
            return rd_fail(r, "corrupt: checksum mismatch in the stream written by %s (crc32c %08llx "
                           "recorded, %08x read)", r->writer, (unsigned long long)crc, crc_before);
        r->in_segment = 0;
        return 1;
    }
    return 0;
}

int ts_reader_next(ts_reader *r, ts_record **out)
{
    *out = NULL;
    if (r->failed) return -1;
    for (;;) {
        int more = rd_more(r);
        if (more < 0) return -1;
        if (!more) {
            if (r->in_segment)
                return rd_fail(r, "truncated: the stream written by %s ends after %llu records "
                               "without its end record", r->writer, (unsigned long long)r->seg_records);
            return 0;
        }
        if (!r->in_segment) r->crc = 0;
        uint32_t crc_before = r->crc;
        char what[64];
        snprintf(what, sizeof what, "record %llu", (unsigned long long)r->nrec + 1);
        r->what = what;
        ts_field *f = NULL;
        size_t n = 0;
        int skipped;
        if (rd_fields(r, &f, &n, &skipped) < 0) return -1;
        if (skipped) {                          /* filtered out: counted, not kept */
            rd_fields_free(f, n);
            r->nrec++;
            r->seg_records++;
            continue;
        }
        int fr = rd_framing(r, f, n, crc_before);
        if (fr != 0) {
            rd_fields_free(f, n);
            if (fr < 0) return -1;
            continue;
        }
        ts_record *rec = calloc(1, sizeof *rec);
        if (!rec) { rd_fields_free(f, n); return rd_fail(r, "out of memory"); }
        char name[KEY_MAX + 1];
        if (rd_field_str(rd_field(f, n, "name"), name, sizeof name) == 0 && !(rec->name = strdup(name))) {
            rd_fields_free(f, n); free(rec); return rd_fail(r, "out of memory");
        }
        int st = 0;
        if (rd_field(f, n, "format")) {
            rec->kind = TS_CSR;
            st = rd_make_csr(r, rec, f, n);
        } else if (rd_field(f, n, "dtype")) {
            rec->kind = TS_DENSE;
            st = rd_make_dense(r, rec, f, n);
        } else {
            rec->kind = TS_OTHER;
            rec->fields = f;
            rec->nfields = n;
            f = NULL;
        }
        if (f) rd_fields_free(f, n);
        if (st == 0 && rec->kind != TS_OTHER && !rec->name) st = rd_fail(r, "%s: tensor without a 'name'", r->what);
        if (st < 0) { ts_record_free(rec); return -1; }
        r->nrec++;
        r->seg_records++;
        r->what = "a record";
        *out = rec;
        return 1;
    }
}

/* ---- whole streams into bags ---- */

int ts_bag_read(ts_bag *bag, const char *path, char *err, size_t errlen)
{
    return ts_bag_read_filtered(bag, path, NULL, NULL, err, errlen);
}

int ts_bag_read_filtered(ts_bag *bag, const char *path, int (*keep)(const char *, void *), void *ctx, char *err,
                         size_t errlen)
{
    ts_reader *rd = ts_reader_open(path);
    if (!rd) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (keep) ts_reader_filter(rd, keep, ctx);
    ts_record *r;
    int st;
    while ((st = ts_reader_next(rd, &r)) == 1)
        if (ts_bag_put(bag, r) < 0) {
            ts_record_free(r);
            snprintf(err, errlen, "%s: out of memory holding the records", path);
            ts_reader_close(rd);
            return -1;
        }
    if (st < 0) snprintf(err, errlen, "%s", ts_reader_error(rd));
    ts_reader_close(rd);
    return st < 0 ? -1 : 0;
}

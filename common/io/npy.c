/* npy.c: reads numpy .npy files (the release's <modality>_feat.npy item
 * features) into a row-major float32 matrix.
 *
 * Layout of a .npy file:
 *   "\x93NUMPY" major minor         8 bytes
 *   header length                   2 bytes LE (v1.0) or 4 bytes LE (v2.0, v3.0)
 *   header: a Python dict literal   {'descr': '<f2', 'fortran_order': False, 'shape': (R, C), }
 *                                   padded with spaces, ending in '\n'
 *   data: R * C elements            C order (row-major) or Fortran order (column-major)
 *
 * Everything about the file is validated before memory for the data is
 * allocated: the declared size must not overflow and must equal exactly the
 * bytes that follow the header; then the limits every stream reader applies
 * (docs/STREAMS.md, "Limits") must hold.  The data is then read in bounded chunks,
 * byte-swapped if big-endian, widened/narrowed to float32 with dt_to_f32 and
 * (for Fortran order) transposed into place. */
#include "io/npy.h"

#include "io/dt.h"
#include "io/ts.h"   /* the size limits every reader shares (TS_DIM_MAX, TS_PAYLOAD_MAX) */

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* dt_to_f32 reads little-endian elements with memcpy, and '=' (native) is
 * taken as '<': both need a little-endian host. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_HEADER (1u << 20)  /* numpy writes < 100 bytes; refuse absurd ones */
#define NPY_CHUNK (4u << 20)       /* raw bytes read per chunk */
#define NPY_MAX_DIMS 2

static void npy_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void npy_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Copy up to n bytes of s into buf (size bufsz) as printable ASCII, for
 * quoting file content in error messages; long strings end in "...". */
static const char *npy_printable(char *buf, size_t bufsz, const char *s, size_t n)
{
    size_t j = 0, i = 0;
    for (; i < n && j + 4 < bufsz; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (i < n) { buf[j++] = '.'; buf[j++] = '.'; buf[j++] = '.'; }
    buf[j] = '\0';
    return buf;
}

/* ---- header dict parser ------------------------------------------------ */

typedef struct {
    const char *s;   /* header text [n] (not NUL-terminated) */
    size_t n, pos;
    int version;     /* major version: 1 and 2 allow Python 2's "123L" */
    char *err;
    size_t errlen;
} npy_parser;

typedef struct {
    int have_descr, have_fortran, have_shape;
    const char *descr;    /* points into the header text [descr_len] */
    size_t descr_len;
    int fortran;
    int ndim;
    int64_t dims[NPY_MAX_DIMS];
} npy_header;

static int npy_fail(npy_parser *p, const char *what)
{
    char near[24];
    size_t left = p->pos < p->n ? p->n - p->pos : 0;
    if (left == 0)
        npy_err(p->err, p->errlen, "bad header dict: %s at end of header", what);
    else
        npy_err(p->err, p->errlen, "bad header dict: %s at byte %zu near \"%s\"", what, p->pos,
                npy_printable(near, sizeof near, p->s + p->pos, left < 12 ? left : 12));
    return -1;
}

static void npy_skip_ws(npy_parser *p)
{
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int npy_peek(npy_parser *p) { return p->pos < p->n ? (unsigned char)p->s[p->pos] : -1; }

static int npy_expect(npy_parser *p, char c, const char *what)
{
    npy_skip_ws(p);
    if (npy_peek(p) != (unsigned char)c) return npy_fail(p, what);
    p->pos++;
    return 0;
}

/* A quoted string, '...' or "...", without escapes; sets *str, *len. */
static int npy_parse_string(npy_parser *p, const char **str, size_t *len)
{
    npy_skip_ws(p);
    int q = npy_peek(p);
    if (q != '\'' && q != '"') return npy_fail(p, "expected a quoted string");
    size_t start = ++p->pos;
    while (p->pos < p->n && p->s[p->pos] != (char)q) {
        char c = p->s[p->pos];
        if (c == '\\') return npy_fail(p, "escape sequence in string");
        if (c == '\n') return npy_fail(p, "unterminated string");
        p->pos++;
    }
    if (p->pos >= p->n) return npy_fail(p, "unterminated string");
    *str = p->s + start;
    *len = p->pos - start;
    p->pos++;
    return 0;
}

static int npy_is_ident(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* True or False. */
static int npy_parse_bool(npy_parser *p, int *v)
{
    npy_skip_ws(p);
    size_t start = p->pos;
    while (p->pos < p->n && npy_is_ident((unsigned char)p->s[p->pos])) p->pos++;
    size_t len = p->pos - start;
    if (len == 4 && memcmp(p->s + start, "True", 4) == 0) { *v = 1; return 0; }
    if (len == 5 && memcmp(p->s + start, "False", 5) == 0) { *v = 0; return 0; }
    p->pos = start;
    return npy_fail(p, "fortran_order is not True or False");
}

/* A non-negative decimal integer (Python 2 "123L" allowed in v1/v2). */
static int npy_parse_dim(npy_parser *p, int64_t *v)
{
    npy_skip_ws(p);
    int c = npy_peek(p);
    if (c < '0' || c > '9') return npy_fail(p, "expected a non-negative integer in shape");
    if (c == '0' && p->pos + 1 < p->n && p->s[p->pos + 1] >= '0' && p->s[p->pos + 1] <= '9')
        return npy_fail(p, "leading zero in shape value");
    int64_t x = 0;
    while ((c = npy_peek(p)) >= '0' && c <= '9') {
        if (x > (INT64_MAX - (c - '0')) / 10) return npy_fail(p, "shape value too large");
        x = x * 10 + (c - '0');
        p->pos++;
    }
    if (p->version <= 2 && (c == 'L' || c == 'l')) p->pos++, c = npy_peek(p);
    if (c >= 0 && npy_is_ident(c)) return npy_fail(p, "bad integer in shape");
    *v = x;
    return 0;
}

/* A Python tuple of integers: (), (N,), (N, M), (N, M,), ... -> h->ndim, h->dims. */
static int npy_parse_shape(npy_parser *p, npy_header *h)
{
    if (npy_expect(p, '(', "shape is not a tuple") < 0) return -1;
    int ndim = 0, trailing_comma = 0;
    npy_skip_ws(p);
    while (npy_peek(p) != ')') {
        int64_t d = 0;
        if (npy_parse_dim(p, &d) < 0) return -1;
        if (ndim < NPY_MAX_DIMS) h->dims[ndim] = d;
        if (ndim < 64) ndim++;   /* only count; > 2 is refused below */
        npy_skip_ws(p);
        trailing_comma = 0;
        if (npy_peek(p) == ',') { p->pos++; trailing_comma = 1; npy_skip_ws(p); }
        else if (npy_peek(p) != ')') return npy_fail(p, "expected ',' or ')' in shape");
    }
    p->pos++;
    /* (N) is the integer N in Python, not a tuple */
    if (ndim == 1 && !trailing_comma) {
        p->pos--;
        return npy_fail(p, "shape (N) is not a tuple (need (N,))");
    }
    h->ndim = ndim;
    return 0;
}

/* The whole dict: exactly the keys descr, fortran_order and shape. */
static int npy_parse_header(npy_parser *p, npy_header *h)
{
    memset(h, 0, sizeof *h);
    if (npy_expect(p, '{', "expected '{'") < 0) return -1;
    for (;;) {
        npy_skip_ws(p);
        if (npy_peek(p) == '}') { p->pos++; break; }
        const char *key;
        size_t klen;
        size_t key_pos = p->pos;
        if (npy_parse_string(p, &key, &klen) < 0) return -1;
        if (npy_expect(p, ':', "expected ':' after key") < 0) return -1;
        npy_skip_ws(p);
        int *seen;
        if (klen == 5 && memcmp(key, "descr", 5) == 0) seen = &h->have_descr;
        else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0) seen = &h->have_fortran;
        else if (klen == 5 && memcmp(key, "shape", 5) == 0) seen = &h->have_shape;
        else {
            char k[40];
            npy_err(p->err, p->errlen, "bad header dict: unexpected key '%s'",
                    npy_printable(k, sizeof k, key, klen));
            return -1;
        }
        if (*seen) {
            p->pos = key_pos;
            return npy_fail(p, "duplicate key");
        }
        *seen = 1;
        if (seen == &h->have_descr) {
            if (npy_peek(p) == '[') {
                npy_err(p->err, p->errlen,
                        "unsupported dtype: structured (record) descr lists are not supported");
                return -1;
            }
            if (npy_parse_string(p, &h->descr, &h->descr_len) < 0) return -1;
        } else if (seen == &h->have_fortran) {
            if (npy_parse_bool(p, &h->fortran) < 0) return -1;
        } else {
            if (npy_parse_shape(p, h) < 0) return -1;
        }
        npy_skip_ws(p);
        if (npy_peek(p) == ',') { p->pos++; continue; }
        if (npy_peek(p) == '}') { p->pos++; break; }
        return npy_fail(p, "expected ',' or '}'");
    }
    npy_skip_ws(p);
    if (p->pos != p->n) return npy_fail(p, "trailing garbage after '}'");
    if (!h->have_descr || !h->have_fortran || !h->have_shape) {
        npy_err(p->err, p->errlen, "bad header dict: missing key '%s'",
                !h->have_descr ? "descr" : !h->have_fortran ? "fortran_order" : "shape");
        return -1;
    }
    return 0;
}

/* ---- dtype -------------------------------------------------------------- */

/* "<f2", ">i8", "=f4", ...: sets *t and *swap (big-endian data).  '|' (byte
 * order not applicable) is only valid for 1-byte types, none of which is
 * supported, so it is refused. */
static int npy_parse_descr(const char *d, size_t len, dt_type *t, int *swap,
                           char *err, size_t errlen)
{
    char shown[24];
    npy_printable(shown, sizeof shown, d, len);
    if (len != 3) goto unsupported;
    char le[4] = {'<', d[1], d[2], '\0'};
    if (dt_parse(le, 3, t) < 0 || *t == DT_U8) goto unsupported;
    switch (d[0]) {
    case '<': case '=': *swap = 0; return 0;
    case '>': *swap = 1; return 0;
    case '|':
        npy_err(err, errlen, "unsupported dtype '%s': byte order '|' is not valid for a %zu-byte type",
                shown, dt_size(*t));
        return -1;
    default: break;
    }
unsupported:
    npy_err(err, errlen, "unsupported dtype '%s' (need f2, f4, f8, i4 or i8 with <, > or =)", shown);
    return -1;
}

static void npy_byteswap(unsigned char *buf, size_t n, size_t size)
{
    for (size_t i = 0; i < n; i++, buf += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            unsigned char c = buf[a];
            buf[a] = buf[b];
            buf[b] = c;
        }
}

/* ---- reader ------------------------------------------------------------- */

static int npy_read_exact(FILE *f, void *buf, size_t n, const char *what, char *err, size_t errlen)
{
    size_t got = fread(buf, 1, n, f);
    if (got == n) return 0;
    if (ferror(f))
        npy_err(err, errlen, "read error in %s: %s", what, strerror(errno));
    else
        npy_err(err, errlen, "file truncated in %s (read %zu of %zu bytes)", what, got, n);
    return -1;
}

static uint32_t npy_le(const unsigned char *b, int n)
{
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

void npy_matrix_free(npy_matrix *m)
{
    if (!m) return;
    free(m->data);
    m->data = NULL;
    m->rows = m->cols = 0;
}

int npy_read_f32(FILE *f, int64_t file_size, npy_matrix *out, char *err, size_t errlen)
{
    unsigned char pre[12];
    char *header = NULL;
    unsigned char *raw = NULL;
    float *tmp = NULL, *data = NULL;

    memset(out, 0, sizeof *out);
    /* preamble: magic, version [8]; shorter files are named for what they lack */
    size_t want = file_size < 8 ? (file_size < 0 ? 0 : (size_t)file_size) : 8;
    if (npy_read_exact(f, pre, want, "magic", err, errlen) < 0) return -1;
    if (want == 0) {
        npy_err(err, errlen, "empty file, not a .npy");
        return -1;
    }
    if (memcmp(pre, NPY_MAGIC, want < NPY_MAGIC_LEN ? want : NPY_MAGIC_LEN) != 0) {
        npy_err(err, errlen, "not a .npy file (bad magic)");
        return -1;
    }
    if (want < 8) {
        npy_err(err, errlen, "file too short for a .npy header (%lld bytes)", (long long)file_size);
        return -1;
    }
    int major = pre[6], minor = pre[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0) {
        npy_err(err, errlen, "unsupported .npy format version %d.%d (need 1.0, 2.0 or 3.0)",
                major, minor);
        return -1;
    }
    int lenbytes = major == 1 ? 2 : 4;
    int64_t prelen = 8 + lenbytes;
    if (file_size < prelen) {
        npy_err(err, errlen, "file too short for a v%d.0 .npy header (%lld bytes)", major,
                (long long)file_size);
        return -1;
    }
    if (npy_read_exact(f, pre + 8, (size_t)lenbytes, "header length", err, errlen) < 0) return -1;
    uint32_t hlen = npy_le(pre + 8, lenbytes);
    if (hlen > NPY_MAX_HEADER) {
        npy_err(err, errlen, "header length %u is absurd (limit %u)", hlen, NPY_MAX_HEADER);
        return -1;
    }
    if ((int64_t)hlen > file_size - prelen) {
        npy_err(err, errlen, "header length %u exceeds file size (%lld bytes)", hlen,
                (long long)file_size);
        return -1;
    }
    header = malloc(hlen ? hlen : 1);
    if (!header) { npy_err(err, errlen, "out of memory for header"); return -1; }
    if (npy_read_exact(f, header, hlen, "header", err, errlen) < 0) goto fail;

    npy_parser p = {header, hlen, 0, major, err, errlen};
    npy_header h;
    if (npy_parse_header(&p, &h) < 0) goto fail;

    dt_type t;
    int swap;
    if (npy_parse_descr(h.descr, h.descr_len, &t, &swap, err, errlen) < 0) goto fail;
    memcpy(out->dtype, h.descr, 3);
    out->dtype[3] = '\0';
    free(header);
    header = NULL;

    /* shape -> rows x cols */
    if (h.ndim == 0) {
        npy_err(err, errlen, "0-d (scalar) array not supported; need 1-D or 2-D");
        goto fail;
    }
    if (h.ndim > NPY_MAX_DIMS) {
        npy_err(err, errlen, "%d-D shape not supported; need 1-D or 2-D", h.ndim);
        goto fail;
    }
    int64_t rows = h.dims[0], cols = h.ndim == 2 ? h.dims[1] : 1;
    size_t isz = dt_size(t);

    /* declared size vs. the file, before allocating anything */
    int64_t n, nbytes, have = file_size - prelen - (int64_t)hlen;
    if (__builtin_mul_overflow(rows, cols, &n) || __builtin_mul_overflow(n, (int64_t)isz, &nbytes)) {
        npy_err(err, errlen, "header declares %lld x %lld %s: size overflows",
                (long long)rows, (long long)cols, out->dtype);
        goto fail;
    }
    if (nbytes != have) {
        npy_err(err, errlen, "header declares %lld x %lld %s (%lld bytes) but file holds %lld (%s)",
                (long long)rows, (long long)cols, out->dtype, (long long)nbytes, (long long)have,
                nbytes < have ? "extra trailing bytes" : "truncated data");
        goto fail;
    }
    /* the stream format's limits (docs/STREAMS.md), so that what is read
     * here can be written as a record and read back: with no elements no
     * data backs the dimensions, which then get the shared cap; as float32
     * the array must fit one payload */
    if (n == 0 && (rows > TS_DIM_MAX || cols > TS_DIM_MAX)) {
        npy_err(err, errlen, "header declares %lld x %lld %s: a dimension of an array with no elements may be at "
                "most %lld", (long long)rows, (long long)cols, out->dtype, (long long)TS_DIM_MAX);
        goto fail;
    }
    if ((uint64_t)n > TS_PAYLOAD_MAX / sizeof(float)) {
        npy_err(err, errlen, "header declares %lld x %lld %s: %lld elements are more than one stream record holds "
                "as float32 (%llu bytes)", (long long)rows, (long long)cols, out->dtype, (long long)n,
                (unsigned long long)TS_PAYLOAD_MAX);
        goto fail;
    }
    size_t outbytes = (size_t)n * sizeof(float);

    void *mem = NULL;
    if (posix_memalign(&mem, 64, outbytes ? outbytes : 64) != 0) {
        npy_err(err, errlen, "out of memory for %lld x %lld float32", (long long)rows,
                (long long)cols);
        goto fail;
    }
    data = mem;

    /* data, in chunks of whole elements: [chunk_elems] raw -> float32 */
    size_t chunk_elems = NPY_CHUNK / isz;
    if ((uint64_t)chunk_elems > (uint64_t)n) chunk_elems = (size_t)n;
    int transpose = h.fortran && rows > 1 && cols > 1;
    if (n > 0) {
        raw = malloc(chunk_elems * isz);
        if (transpose) tmp = malloc(chunk_elems * sizeof(float));
        if (!raw || (transpose && !tmp)) {
            npy_err(err, errlen, "out of memory for read buffer");
            goto fail;
        }
    }
    for (int64_t done = 0; done < n;) {
        size_t k = (uint64_t)(n - done) < chunk_elems ? (size_t)(n - done) : chunk_elems;
        if (npy_read_exact(f, raw, k * isz, "data", err, errlen) < 0) goto fail;
        if (swap) npy_byteswap(raw, k, isz);
        if (!transpose) {
            dt_to_f32(data + done, raw, t, k);
        } else {
            /* file element e is column e / rows, row e % rows */
            dt_to_f32(tmp, raw, t, k);
            int64_t c = done / rows, r = done % rows;
            for (size_t i = 0; i < k; i++) {
                data[r * cols + c] = tmp[i];
                if (++r == rows) { r = 0; c++; }
            }
        }
        done += (int64_t)k;
    }
    if (fgetc(f) != EOF) {
        npy_err(err, errlen, "extra trailing bytes after %lld bytes of data (file grew?)",
                (long long)nbytes);
        goto fail;
    }
    free(raw);
    free(tmp);
    out->rows = rows;
    out->cols = cols;
    out->data = data;
    return 0;

fail:
    free(header);
    free(raw);
    free(tmp);
    free(data);
    memset(out, 0, sizeof *out);
    return -1;
}

int npy_write_f32(FILE *f, const float *x, int64_t rows, int64_t cols, char *err, size_t errlen)
{
    char head[128];
    int n = snprintf(head, sizeof head, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     (long long)rows, (long long)cols);
    int total = (10 + n + 1 + 63) / 64 * 64;         /* magic, version, length, dict, '\n': a multiple of 64 */
    int hl = total - 10;                             /* spaces pad the dict; '\n' ends it */
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    memset(head + n, ' ', (size_t)(hl - n - 1));
    head[hl - 1] = '\n';
    if (fwrite(pre, 1, 10, f) != 10 || fwrite(head, 1, (size_t)hl, f) != (size_t)hl ||
        fwrite(x, 4, (size_t)(rows * cols), f) != (size_t)(rows * cols)) {
        npy_err(err, errlen, "write failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

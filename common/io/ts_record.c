/* ts_record.c: in-memory tensor records and bags of named records. */
#include "io/ts.h"

#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "io/crc.h"

/* Arrays of 1 MiB and more are aligned to 2 MiB and offered to the kernel
 * as transparent huge pages (where it has them on request, as Debian's
 * default "madvise" mode does): one page fault per 2 MiB instead of 512,
 * and fewer TLB misses when the matrix products stream the weights.  The
 * huge pages cover the array rounded down to 2 MiB, or up when that adds
 * at most an eighth (TikTok's [N x 64] embeddings, 4.10 MB, take two huge
 * pages and 94 KB more, not one and 2 MB of small pages); an array of 1 to
 * 2 MiB takes one whole huge page.  On these virtual machines a 4 KiB
 * page fault costs about 10 us even on memory the host still backs
 * (tests/tools/fresh-bench.c), so 256 of them cost more than one huge
 * page of 2 MiB: that sets the 1 MiB threshold. */
#define TS_HUGE (2u << 20)
#define TS_HUGE_MIN (1u << 20)
#define TS_HUGE_ROUND(n) (((n) + TS_HUGE - 1) & ~(size_t)(TS_HUGE - 1))

/* Touch every page of a fresh array [nbytes] from all threads.  On these
 * virtual machines the first touch of memory the host has taken back is
 * slow (the host backs the page then): 260-372 MB/s in 4 KiB pages and
 * 427-590 in huge pages on one thread, 1050-1480 in huge pages on two
 * (tests/tools/fresh-bench.c).  The stage's own loops, or read(2) filling
 * a payload, then find the pages there.  Memory the process reuses costs
 * nothing more here.  (This starts OpenMP's threads in stages that had
 * none: cli_on_signal knows.) */
static void ts_prefault(char *p, size_t nbytes)
{
    int64_t pages = (int64_t)((nbytes + 4095) / 4096);
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int64_t i = 0; i < pages; i++) ((volatile char *)p)[i * 4096] = 0;
}

/* nbytes of 64-byte aligned memory; from TS_HUGE_MIN on 2 MiB aligned on
 * huge pages, touched from every thread when prefault is set. */
static void *ts_alloc_pages(size_t nbytes, int prefault)
{
    void *p = NULL;
    if (nbytes < TS_HUGE_MIN) return posix_memalign(&p, 64, nbytes ? nbytes : 1) == 0 ? p : NULL;
    size_t up = TS_HUGE_ROUND(nbytes);
    size_t span = up - nbytes <= nbytes / 8 || nbytes < TS_HUGE ? up : nbytes & ~(size_t)(TS_HUGE - 1);
    if (posix_memalign(&p, TS_HUGE, span > nbytes ? span : nbytes) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, span, MADV_HUGEPAGE);             /* a hint: may fail */
#endif
    if (prefault) ts_prefault(p, nbytes);
    return p;
}

void *ts_alloc_uninit(size_t nbytes) { return ts_alloc_pages(nbytes, 1); }

/* Not touched here: zstd sizes its window by what the frame header
 * declares (up to 128 MiB for a hostile one) and may use little of it. */
void *ts_zstd_alloc(void *opaque, size_t nbytes)
{
    (void)opaque;
    return ts_alloc_pages(nbytes, 0);
}

void ts_zstd_free(void *opaque, void *p)
{
    (void)opaque;
    free(p);
}

void *ts_alloc(size_t nbytes)
{
    void *p = ts_alloc_uninit(nbytes);
    if (p) memset(p, 0, nbytes);
    return p;
}

void ts_csr_free(ts_csr *m)
{
    free(m->indptr);
    free(m->indices);
    free(m->values);
    memset(m, 0, sizeof *m);
}

static ts_record *tsr_new(const char *name, ts_kind kind)
{
    ts_record *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->kind = kind;
    if (name && !(r->name = strdup(name))) { free(r); return NULL; }
    return r;
}

ts_record *ts_dense_new(const char *name, dt_type dtype, int ndim, const int64_t *shape)
{
    uint64_t nbytes;
    char why[200];
    if (ts_dense_size(ndim, shape, dt_size(dtype), &nbytes, why, sizeof why) < 0) return NULL;
    ts_record *r = tsr_new(name, TS_DENSE);
    if (!r) return NULL;
    r->dtype = dtype;
    r->ndim = ndim;
    for (int i = 0; i < ndim; i++) r->shape[i] = shape[i];
    r->nbytes = (size_t)nbytes;
    if (!(r->data = ts_alloc(r->nbytes))) { ts_record_free(r); return NULL; }
    return r;
}

ts_record *ts_csr_new(const char *name, ts_csr *m)
{
    ts_record *r = tsr_new(name, TS_CSR);
    if (!r) return NULL;
    r->csr = *m;
    memset(m, 0, sizeof *m);
    return r;
}

/* msgpack bytes of a string value, malloc'd. */
static uint8_t *tsr_pack_str(const char *s, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    size_t n = strlen(s);
    msgpack_pack_str(&pk, n);
    msgpack_pack_str_body(&pk, s, n);
    *len = sb.size;
    return (uint8_t *)sb.data; /* sbuffer memory comes from malloc */
}

ts_record *ts_meta_new(const char *name, const char *json)
{
    ts_record *r = tsr_new(name, TS_OTHER);
    if (!r) return NULL;
    r->fields = calloc(2, sizeof *r->fields);
    if (!r->fields) { ts_record_free(r); return NULL; }
    r->nfields = 2;
    r->fields[0].key = strdup("name");
    r->fields[0].raw = tsr_pack_str(name, &r->fields[0].rawlen);
    r->fields[1].key = strdup("json");
    r->fields[1].raw = tsr_pack_str(json, &r->fields[1].rawlen);
    for (int i = 0; i < 2; i++)
        if (!r->fields[i].key || !r->fields[i].raw) { ts_record_free(r); return NULL; }
    return r;
}

void ts_record_free(ts_record *r)
{
    if (!r) return;
    free(r->name);
    free(r->data);
    ts_csr_free(&r->csr);
    for (size_t i = 0; i < r->nfields; i++) {
        free(r->fields[i].key);
        free(r->fields[i].raw);
        free(r->fields[i].bin);
    }
    free(r->fields);
    free(r);
}

int64_t ts_numel(const ts_record *r)
{
    int64_t n = 1;
    for (int i = 0; i < r->ndim; i++)
        if (__builtin_mul_overflow(n, r->shape[i], &n)) return INT64_MAX;
    return n;
}

int ts_dense_size(int ndim, const int64_t *shape, size_t elem_size, uint64_t *nbytes, char *why, size_t whylen)
{
    *nbytes = 0;
    if (ndim < 0 || ndim > TS_MAXDIM) {
        snprintf(why, whylen, "%d dimensions (at most %d)", ndim, TS_MAXDIM);
        return -1;
    }
    int empty = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            snprintf(why, whylen, "dimension %d is negative (%lld)", i, (long long)shape[i]);
            return -1;
        }
        empty |= shape[i] == 0;
    }
    if (empty) {
        /* no payload backs the other dimensions: they get the shared cap */
        for (int i = 0; i < ndim; i++)
            if (shape[i] > TS_DIM_MAX) {
                snprintf(why, whylen, "dimension %d is %lld in a tensor with no elements (at most %lld)", i,
                         (long long)shape[i], (long long)TS_DIM_MAX);
                return -1;
            }
        return 0;
    }
    uint64_t n = elem_size;
    int over = 0;
    for (int i = 0; i < ndim; i++) over |= __builtin_mul_overflow(n, (uint64_t)shape[i], &n);
    if (over || n > TS_PAYLOAD_MAX) {
        char dims[8 * 22] = "";
        size_t k = 0;
        for (int i = 0; i < ndim && k < sizeof dims; i++)
            k += (size_t)snprintf(dims + k, sizeof dims - k, "%s%lld", i ? "x" : "", (long long)shape[i]);
        if (over)
            snprintf(why, whylen, "shape %s of %zu-byte elements needs more than 2^64 bytes (a payload holds at "
                     "most %llu)", dims, elem_size, (unsigned long long)TS_PAYLOAD_MAX);
        else
            snprintf(why, whylen, "shape %s of %zu-byte elements needs %llu bytes (a payload holds at most %llu)",
                     dims, elem_size, (unsigned long long)n, (unsigned long long)TS_PAYLOAD_MAX);
        return -1;
    }
    *nbytes = n;
    return 0;
}

/* Does any of the n 32-bit floats (as bits) have an all-ones exponent? */
static int tsr_any_nonfinite_f4(const uint32_t *b, size_t n)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) bad |= (uint32_t)((b[i] & 0x7f800000u) == 0x7f800000u);
    return bad != 0;
}

static int64_t tsr_first_nonfinite(const ts_record *r)
{
    if (r->kind != TS_DENSE) return -1;
    int64_t n = ts_numel(r);
    if (r->dtype == DT_F32) {
        /* blocks the compiler vectorises; the exact place is looked for only in a bad block */
        const uint32_t *b = r->data;
        for (int64_t at = 0; at < n; at += 4096) {
            size_t k = (size_t)(n - at < 4096 ? n - at : 4096);
            if (!tsr_any_nonfinite_f4(b + at, k)) continue;
            for (size_t i = 0; i < k; i++)
                if ((b[at + (int64_t)i] & 0x7f800000u) == 0x7f800000u) return at + (int64_t)i;
        }
    } else if (r->dtype == DT_F16) {
        const uint16_t *h = r->data;
        for (int64_t i = 0; i < n; i++)
            if ((h[i] & 0x7c00u) == 0x7c00u) return i;
    } else if (r->dtype == DT_F64) {
        /* finite as float32, the type stages compute in: 1e300 is not */
        const double *d = r->data;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite((float)d[i])) return i;
    }
    return -1;
}

int ts_check_finite(const ts_record *r, char *why, size_t whylen)
{
    int64_t at = tsr_first_nonfinite(r);
    if (at < 0) return 0;
    int64_t per_row = 1;                 /* elements in one row: the product of the later dimensions */
    for (int i = 1; i < r->ndim; i++) per_row *= r->shape[i];
    float v;
    dt_to_f32(&v, (const char *)r->data + (size_t)at * dt_size(r->dtype), r->dtype, 1);
    if (r->ndim >= 2)
        snprintf(why, whylen, "row %lld holds %g (column %lld)", (long long)(at / per_row), (double)v,
                 (long long)(at % per_row));
    else
        snprintf(why, whylen, "element %lld is %g", (long long)at, (double)v);
    return -1;
}

int ts_record_to_f32(ts_record *r)
{
    if (r->kind != TS_DENSE) return -1;
    if (r->dtype == DT_F32) return 0;
    size_t n = (size_t)ts_numel(r);
    float *f = ts_alloc(n * 4);
    if (!f) return -1;
    dt_to_f32(f, r->data, r->dtype, n);
    free(r->data);
    r->data = f;
    r->dtype = DT_F32;
    r->nbytes = n * 4;
    return 0;
}

char *ts_record_str(const ts_record *r, const char *key)
{
    for (size_t i = 0; i < r->nfields; i++) {
        const ts_field *f = &r->fields[i];
        if (strcmp(f->key, key) != 0 || !f->raw) continue;
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        char *s = NULL;
        if (msgpack_unpack_next(&u, (const char *)f->raw, f->rawlen, &off) == MSGPACK_UNPACK_SUCCESS &&
            u.data.type == MSGPACK_OBJECT_STR)
            /* an empty str may come with a NULL pointer: never pass that on */
            s = u.data.via.str.size ? strndup(u.data.via.str.ptr, u.data.via.str.size) : strdup("");
        msgpack_unpacked_destroy(&u);
        return s;
    }
    return NULL;
}

uint32_t ts_record_crc(const ts_record *r)
{
    switch (r->kind) {
    case TS_DENSE: return crc_32c(0, r->data, r->nbytes);
    case TS_CSR: {
        uint32_t c = crc_32c(0, r->csr.indptr, (size_t)(r->csr.rows + 1) * 8);
        c = crc_32c(c, r->csr.indices, (size_t)r->csr.nnz * 4);
        return crc_32c(c, r->csr.values, (size_t)r->csr.nnz * 4);
    }
    default: {
        uint32_t c = 0;
        for (size_t i = 0; i < r->nfields; i++) {
            c = crc_32c(c, r->fields[i].key, strlen(r->fields[i].key));
            if (r->fields[i].raw) c = crc_32c(c, r->fields[i].raw, r->fields[i].rawlen);
            else c = crc_32c(c, r->fields[i].bin, r->fields[i].binlen);
        }
        return c;
    }
    }
}

/* ---- bags ----
 *
 * recs keeps the records in first-seen order (callers walk it); beside it
 * an open-addressed hash table of the names (linear probing, at most half
 * full) finds a name in constant time, so reading n records is O(n), not
 * O(n^2).  Should the table ever fail to grow, lookups fall back to a scan. */

static uint64_t bag_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;              /* FNV-1a, 64 bits */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static void bag_slot_add(ts_bag *bag, size_t pos)
{
    size_t mask = bag->nslots - 1, k = (size_t)bag_hash(bag->recs[pos]->name) & mask;
    while (bag->slots[k]) k = (k + 1) & mask;
    bag->slots[k] = pos + 1;
}

/* Build the table anew with nslots slots (a power of two > 2n). */
static void bag_reindex(ts_bag *bag, size_t nslots)
{
    free(bag->slots);
    bag->slots = calloc(nslots, sizeof *bag->slots);
    bag->nslots = bag->slots ? nslots : 0;
    if (!bag->slots) return;
    for (size_t i = 0; i < bag->n; i++)
        if (bag->recs[i]->name) bag_slot_add(bag, i);
}

static ptrdiff_t bag_find(const ts_bag *bag, const char *name)
{
    if (!name) return -1;
    if (!bag->slots) {
        for (size_t i = 0; i < bag->n; i++)
            if (bag->recs[i]->name && strcmp(bag->recs[i]->name, name) == 0) return (ptrdiff_t)i;
        return -1;
    }
    size_t mask = bag->nslots - 1;
    for (size_t k = (size_t)bag_hash(name) & mask; bag->slots[k]; k = (k + 1) & mask) {
        size_t i = bag->slots[k] - 1;
        if (strcmp(bag->recs[i]->name, name) == 0) return (ptrdiff_t)i;
    }
    return -1;
}

int ts_bag_put(ts_bag *bag, ts_record *r)
{
    ptrdiff_t i = bag_find(bag, r->name);
    if (i >= 0) {
        ts_record_free(bag->recs[i]);
        bag->recs[i] = r;
        return 0;
    }
    if (bag->n == bag->cap) {
        size_t cap = bag->cap ? 2 * bag->cap : 16;
        ts_record **p = realloc(bag->recs, cap * sizeof *p);
        if (!p) return -1;
        bag->recs = p;
        bag->cap = cap;
    }
    bag->recs[bag->n++] = r;
    if (!r->name) return 0;
    if (2 * bag->n >= bag->nslots) bag_reindex(bag, bag->nslots ? 2 * bag->nslots : 64);
    else bag_slot_add(bag, bag->n - 1);
    return 0;
}

ts_record *ts_bag_get(const ts_bag *bag, const char *name)
{
    ptrdiff_t i = bag_find(bag, name);
    return i >= 0 ? bag->recs[i] : NULL;
}

ts_record *ts_bag_take(ts_bag *bag, const char *name)
{
    ptrdiff_t i = bag_find(bag, name);
    if (i < 0) return NULL;
    ts_record *r = bag->recs[i];
    memmove(bag->recs + i, bag->recs + i + 1, (bag->n - (size_t)i - 1) * sizeof *bag->recs);
    bag->n--;
    if (bag->slots) bag_reindex(bag, bag->nslots);   /* positions moved: O(n), as the memmove */
    return r;
}

void ts_bag_free(ts_bag *bag)
{
    for (size_t i = 0; i < bag->n; i++) ts_record_free(bag->recs[i]);
    free(bag->recs);
    free(bag->slots);
    memset(bag, 0, sizeof *bag);
}

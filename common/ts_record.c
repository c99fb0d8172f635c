/* ts_record.c: in-memory tensor records and bags of named records. */
#include "ts.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc.h"

void *ts_alloc(size_t nbytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, nbytes ? nbytes : 1) != 0) return NULL;
    memset(p, 0, nbytes);
    return p;
}

void ts_csr_free(ts_csr *m)
{
    free(m->indptr);
    free(m->indices);
    free(m->values);
    memset(m, 0, sizeof *m);
}

static ts_record *rec_new(const char *name, ts_kind kind)
{
    ts_record *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->kind = kind;
    if (name && !(r->name = strdup(name))) { free(r); return NULL; }
    return r;
}

ts_record *ts_dense_new(const char *name, dt_type dtype, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > TS_MAXDIM) return NULL;
    ts_record *r = rec_new(name, TS_DENSE);
    if (!r) return NULL;
    r->dtype = dtype;
    r->ndim = ndim;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) { ts_record_free(r); return NULL; }
        r->shape[i] = shape[i];
        n *= (size_t)shape[i];
    }
    r->nbytes = n * dt_size(dtype);
    if (!(r->data = ts_alloc(r->nbytes))) { ts_record_free(r); return NULL; }
    return r;
}

ts_record *ts_csr_new(const char *name, ts_csr *m)
{
    ts_record *r = rec_new(name, TS_CSR);
    if (!r) return NULL;
    r->csr = *m;
    memset(m, 0, sizeof *m);
    return r;
}

/* msgpack bytes of a string value, malloc'd. */
static uint8_t *rec_pack_str(const char *s, size_t *len)
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
    ts_record *r = rec_new(name, TS_OTHER);
    if (!r) return NULL;
    r->fields = calloc(2, sizeof *r->fields);
    if (!r->fields) { ts_record_free(r); return NULL; }
    r->nfields = 2;
    r->fields[0].key = strdup("name");
    r->fields[0].raw = rec_pack_str(name, &r->fields[0].rawlen);
    r->fields[1].key = strdup("json");
    r->fields[1].raw = rec_pack_str(json, &r->fields[1].rawlen);
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
    for (int i = 0; i < r->ndim; i++) n *= r->shape[i];
    return n;
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
            s = strndup(u.data.via.str.ptr, u.data.via.str.size);
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

/* ---- bags ---- */

static ptrdiff_t bag_find(const ts_bag *bag, const char *name)
{
    if (!name) return -1;
    for (size_t i = 0; i < bag->n; i++)
        if (bag->recs[i]->name && strcmp(bag->recs[i]->name, name) == 0) return (ptrdiff_t)i;
    return -1;
}

void ts_bag_put(ts_bag *bag, ts_record *r)
{
    ptrdiff_t i = bag_find(bag, r->name);
    if (i >= 0) {
        ts_record_free(bag->recs[i]);
        bag->recs[i] = r;
        return;
    }
    if (bag->n == bag->cap) {
        size_t cap = bag->cap ? 2 * bag->cap : 16;
        ts_record **p = realloc(bag->recs, cap * sizeof *p);
        if (!p) abort(); /* a few pointers: out of memory here is hopeless */
        bag->recs = p;
        bag->cap = cap;
    }
    bag->recs[bag->n++] = r;
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
    return r;
}

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
    while ((st = ts_reader_next(rd, &r)) == 1) ts_bag_put(bag, r);
    if (st < 0) snprintf(err, errlen, "%s", ts_reader_error(rd));
    ts_reader_close(rd);
    return st < 0 ? -1 : 0;
}

void ts_bag_free(ts_bag *bag)
{
    for (size_t i = 0; i < bag->n; i++) ts_record_free(bag->recs[i]);
    free(bag->recs);
    memset(bag, 0, sizeof *bag);
}

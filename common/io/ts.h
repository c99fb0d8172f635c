/* ts.h: tensor streams, the format every stage reads and writes.
 *
 * A stream is a sequence of msgpack maps ("records"), raw or zstd-compressed;
 * docs/STREAMS.md is the one place the format is written down.  Records:
 *
 *   dense   {"name", "dtype": "<f4"|"<f2"|"<f8"|"<i4"|"<i8"|"|u1",
 *            "shape": [int...], "data": bin}          row-major little-endian
 *   csr     {"name", "format": "csr", "shape": [rows, cols],
 *            "indptr": bin <i8, "indices": bin <i4, "values": bin <f4}
 *   other   any other map (metadata such as {"name": "meta", "json": str});
 *           kept as opaque fields so --pass can write it out again
 *
 * Our writer frames what it writes as a segment: a header record
 * {"stream": "diffmm-ts", "version": 1, "writer": STAGE} first and an end
 * record {"end": "diffmm-ts", "records": N, "crc32c": C} last, C being the
 * CRC-32C of every msgpack byte from the header up to the end record.  A
 * reader checks both, so a raw stream cut at a record boundary or with a
 * flipped bit is caught; zstd frames carry their own checksum as well.
 * Records outside any segment (streams that other programs wrote) are read
 * without those checks.  `cat a b` of two streams is a stream.
 *
 * Errors are explicit returns: functions give 0 (or a pointer) on success
 * and -1 (or NULL) on failure, with a one-line reason in the object's error
 * buffer (ts_reader_error, ts_writer_error). */
#ifndef TS_H
#define TS_H

#include <stddef.h>
#include <stdint.h>

#include "io/dt.h"

#define TS_MAXDIM 8

/* Limits on what a file may declare, shared by every reader and writer
 * (the stream reader and writer, the .npy and pickle readers); the policy
 * is written down in docs/STREAMS.md, "Limits":
 *
 * TS_DIM_MAX: the largest size of a dimension that no bytes in the input
 * pay for: the columns of a csr matrix, every dimension of a tensor or
 * .npy array with no elements, the shape of a pickled coo matrix and the
 * minor side of a csr/csc one.  Stages allocate tables in proportion to
 * these (item embeddings, a transposed graph), so a few bytes could
 * otherwise claim gigabytes.  2^24 rows of 64 float32 is also where an
 * embedding table reaches TS_PAYLOAD_MAX.  Dimensions that a payload does
 * pay for (a dense tensor with elements, a csr's rows, whose indptr holds
 * 8 bytes each) are limited by TS_PAYLOAD_MAX alone.
 * TS_PAYLOAD_MAX: the most bytes one payload holds (a msgpack bin32).
 * TS_NAME_MAX: the longest record name (and map key), in bytes. */
#define TS_DIM_MAX (INT64_C(1) << 24)
#define TS_PAYLOAD_MAX UINT32_MAX
#define TS_NAME_MAX 4096

typedef enum { TS_DENSE, TS_CSR, TS_OTHER } ts_kind;

/* A sparse matrix in compressed sparse row form. */
typedef struct {
    int64_t rows, cols, nnz;
    int64_t *indptr;   /* [rows+1] offsets into indices/values */
    int32_t *indices;  /* [nnz] column of each entry, sorted within a row */
    float *values;     /* [nnz] */
} ts_csr;

/* One field of an opaque record: the key and either the value's msgpack
 * bytes (raw) or, for bin values, the payload (bin). */
typedef struct {
    char *key;
    uint8_t *raw; size_t rawlen;   /* msgpack-encoded value, or NULL */
    uint8_t *bin; size_t binlen;   /* bin payload when raw is NULL */
} ts_field;

typedef struct ts_record {
    char *name;         /* NULL for a nameless foreign record */
    ts_kind kind;
    /* TS_DENSE */
    dt_type dtype;
    int ndim;
    int64_t shape[TS_MAXDIM];
    void *data;         /* [prod(shape)] elements of dtype, 64-byte aligned */
    size_t nbytes;
    /* TS_CSR */
    ts_csr csr;
    /* TS_OTHER */
    ts_field *fields;
    size_t nfields;
} ts_record;

/* ---- records ---------------------------------------------------------- */

/* A new dense record owning a zeroed, aligned buffer of the given shape. */
ts_record *ts_dense_new(const char *name, dt_type dtype, int ndim, const int64_t *shape);
/* A new csr record taking ownership of m's arrays (m is emptied). */
ts_record *ts_csr_new(const char *name, ts_csr *m);
/* A new metadata record {"name": name, "json": json}. */
ts_record *ts_meta_new(const char *name, const char *json);
void ts_record_free(ts_record *r);
/* Number of elements of a dense record (INT64_MAX if the shape's product
 * overflows, which no record from ts_reader or ts_dense_new has). */
int64_t ts_numel(const ts_record *r);
/* Check a dense shape against the limits above: 0 and *nbytes (product of
 * the shape and elem_size) if it may be written or read, or -1 and a
 * reason in why (e.g. "dimension 1 is 1099511627776 in a tensor with no
 * elements (at most 16777216)"). */
int ts_dense_size(int ndim, const int64_t *shape, size_t elem_size, uint64_t *nbytes, char *why, size_t whylen);
/* Are all values of a dense record finite as float32, the type stages
 * compute in (integers always are; f8 1e300 is not)?  0 if so; -1 if not,
 * with the first NaN or infinity in why, e.g. "row 5 holds nan (column 2)"
 * (rows: the first dimension). */
int ts_check_finite(const ts_record *r, char *why, size_t whylen);
/* Widen or convert a dense record to float32 in place (f2 exactly). */
int ts_record_to_f32(ts_record *r);
/* The string value of a field of an opaque record, or NULL.  The result is
 * malloc'd; free it. */
char *ts_record_str(const ts_record *r, const char *key);
/* CRC-32C of a record's payload (dense data, or indptr|indices|values). */
uint32_t ts_record_crc(const ts_record *r);

void *ts_alloc(size_t nbytes);   /* 64-byte aligned (2 MiB, huge pages, from 1 MiB on), zeroed; NULL on failure */
void *ts_alloc_uninit(size_t nbytes);   /* the same, not zeroed (for what is overwritten at once) */
/* zstd's allocator for the streams' (de)compression contexts
 * (ZSTD_customMem): their windows (MBs) go on huge pages, untouched */
void *ts_zstd_alloc(void *opaque, size_t nbytes);
void ts_zstd_free(void *opaque, void *p);
void ts_csr_free(ts_csr *m);

/* ---- reading ---------------------------------------------------------- */

typedef struct ts_reader ts_reader;

/* Open a file, or stdin for "-" or NULL.  label names it in errors. */
ts_reader *ts_reader_open(const char *path);
/* Read from an open descriptor (not closed by ts_reader_close). */
ts_reader *ts_reader_fdopen(int fd, const char *label);
/* Next record: 1 and *out set, 0 at the clean end of input, -1 on error. */
int ts_reader_next(ts_reader *r, ts_record **out);
const char *ts_reader_error(const ts_reader *r);
/* Keep only records whose name keep(name, ctx) accepts: the payloads of the
 * others are read past (and checksummed) without being held in memory.
 * Records whose name comes after their payload, or without a name, are kept. */
void ts_reader_filter(ts_reader *r, int (*keep)(const char *name, void *ctx), void *ctx);
void ts_reader_close(ts_reader *r);

/* ---- writing ---------------------------------------------------------- */

typedef struct ts_writer ts_writer;

/* Write to path, or stdout for "-" or NULL.  A file is written under a
 * temporary name and renamed by ts_writer_close.  zlevel 0 is raw msgpack,
 * 1..22 zstd at that level (with checksum).  writer names the program. */
ts_writer *ts_writer_open(const char *path, int zlevel, const char *writer);
/* The same, writing a file over the pages of reuse: a regular file the
 * caller no longer needs (an older epoch's state), renamed to the
 * temporary name, overwritten in place and cut to length at close.  Pages
 * the page cache still holds are rewritten at memory speed; new ones cost
 * a first touch (0.3-0.6 s for 322 MB on these VMs, docs/NOTES.md).
 * reuse is gone afterwards, whether the write succeeds or not.  When it is
 * missing, not a regular file, has other hard links or cannot be renamed
 * (another file system), the file is made new as by ts_writer_open. */
ts_writer *ts_writer_open_reusing(const char *path, int zlevel, const char *writer, const char *reuse);
int ts_write(ts_writer *w, const ts_record *r);
int ts_write_dense(ts_writer *w, const char *name, dt_type dtype, int ndim,
                   const int64_t *shape, const void *data);
int ts_write_csr(ts_writer *w, const char *name, const ts_csr *m);
/* Where a module that saves state sends each dense tensor: ctx is the
 * caller's (a stage passes cli_emit_dense and its output); 0, or -1 to stop. */
typedef int (*ts_emit_fn)(void *ctx, const char *name, dt_type dtype, int ndim, const int64_t *shape, const void *data);
/* Finish: end record, flush, rename into place.  Frees w either way. */
int ts_writer_close(ts_writer *w, char *err, size_t errlen);
/* Give up: remove the temporary file.  Frees w. */
void ts_writer_abort(ts_writer *w);
const char *ts_writer_error(const ts_writer *w);
/* The temporary path being written, or NULL (for signal clean-up). */
const char *ts_writer_tmppath(const ts_writer *w);
/* This host's name as it appears in temporary names "PATH.tmp.HOST.PID"
 * ('/' made '_'; "localhost" when unknown), so that a folder shared by
 * several hosts tells whose leftover a temporary is.  A static buffer. */
const char *ts_tmp_host(void);

/* ---- bags: every input as one set of named records --------------------- */

typedef struct {
    ts_record **recs;   /* [n] in first-seen order */
    size_t n, cap;
    /* private: open-addressed hash of the names, slot -> position + 1 (0:
     * empty), [nslots] a power of two; NULL until first needed */
    size_t *slots, nslots;
} ts_bag;

/* Read every record of path into bag; a later record replaces an earlier
 * one of the same name (in its place).  0 or -1 with err set. */
int ts_bag_read(ts_bag *bag, const char *path, char *err, size_t errlen);
/* The same, keeping only records that keep (may be NULL) accepts. */
int ts_bag_read_filtered(ts_bag *bag, const char *path, int (*keep)(const char *, void *), void *ctx, char *err,
                         size_t errlen);
/* Add (taking ownership), replacing a record of the same name: 0, or -1
 * when out of memory (r is then still the caller's). */
int ts_bag_put(ts_bag *bag, ts_record *r);
ts_record *ts_bag_get(const ts_bag *bag, const char *name);
/* Remove and return a record (the caller owns it), or NULL. */
ts_record *ts_bag_take(ts_bag *bag, const char *name);
void ts_bag_free(ts_bag *bag);

#endif

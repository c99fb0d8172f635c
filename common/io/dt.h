/* dt.h: element types of tensor streams and exact conversions between them.
 *
 * The spelling follows numpy's dtype.str ("<f4", "<f2", ...), which is what
 * stream records carry.  Conversions to float32 are exact for f2 and for
 * integers below 2^24; f8 -> f4 rounds to nearest. */
#ifndef DT_H
#define DT_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    DT_F32 = 0, /* "<f4" */
    DT_F16,     /* "<f2" */
    DT_F64,     /* "<f8" */
    DT_I32,     /* "<i4" */
    DT_I64,     /* "<i8" */
    DT_U8,      /* "|u1" */
    DT_COUNT
} dt_type;

/* Bytes per element. */
size_t dt_size(dt_type t);
/* numpy spelling, e.g. "<f4". */
const char *dt_name(dt_type t);
/* Parse a numpy spelling; returns 0 and sets *t, or -1 if unknown. */
int dt_parse(const char *s, size_t len, dt_type *t);

/* IEEE binary16 -> binary32, exact (subnormals, inf and NaN kept). */
float dt_half_to_float(uint16_t h);
/* Convert n little-endian elements of type t at src to float32 at dst.
 * src and dst may not overlap. */
void dt_to_f32(float *dst, const void *src, dt_type t, size_t n);

#endif

/* dt.c: element type names, sizes and conversions to float32. */
#include "io/dt.h"

#include <string.h>

static const struct { const char *name; size_t size; } dt_table[DT_COUNT] = {
    [DT_F32] = {"<f4", 4}, [DT_F16] = {"<f2", 2}, [DT_F64] = {"<f8", 8},
    [DT_I32] = {"<i4", 4}, [DT_I64] = {"<i8", 8}, [DT_U8] = {"|u1", 1},
};

size_t dt_size(dt_type t) { return t < DT_COUNT ? dt_table[t].size : 0; }
const char *dt_name(dt_type t) { return t < DT_COUNT ? dt_table[t].name : "?"; }

int dt_parse(const char *s, size_t len, dt_type *t)
{
    for (int i = 0; i < DT_COUNT; i++)
        if (strlen(dt_table[i].name) == len && memcmp(dt_table[i].name, s, len) == 0) {
            *t = (dt_type)i;
            return 0;
        }
    return -1;
}

float dt_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {                 /* inf or NaN */
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {             /* normal */
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {             /* signed zero */
        bits = sign;
    } else {                           /* subnormal: renormalise */
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void dt_to_f32(float *dst, const void *src, dt_type t, size_t n)
{
    const unsigned char *p = src;
    switch (t) {
    case DT_F32: memcpy(dst, src, n * 4); break;
    case DT_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h; memcpy(&h, p + 2 * i, 2);
            dst[i] = dt_half_to_float(h);
        }
        break;
    case DT_F64:
        for (size_t i = 0; i < n; i++) { double v; memcpy(&v, p + 8 * i, 8); dst[i] = (float)v; }
        break;
    case DT_I32:
        for (size_t i = 0; i < n; i++) { int32_t v; memcpy(&v, p + 4 * i, 4); dst[i] = (float)v; }
        break;
    case DT_I64:
        for (size_t i = 0; i < n; i++) { int64_t v; memcpy(&v, p + 8 * i, 8); dst[i] = (float)v; }
        break;
    case DT_U8:
        for (size_t i = 0; i < n; i++) dst[i] = (float)p[i];
        break;
    default: break;
    }
}

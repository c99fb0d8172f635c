/* crc.c: CRC-32C with a hardware path (three interleaved crc32q lanes,
 * joined by a precomputed zero-block operator) and a portable
 * slicing-by-8 fallback. */
#include "io/crc.h"

#include <string.h>

#define POLY 0x82f63b78u /* reflected Castagnoli polynomial */

static uint32_t crc_table[8][256];
static int crc_ready, crc_hw;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (POLY & (0u - (c & 1)));
        crc_table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
    crc_ready = 1;
}

static uint32_t crc_soft(uint32_t c, const unsigned char *p, size_t n)
{
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= c;
        c = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
            crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
            crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
            crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--) c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
    return c;
}

#if defined(__x86_64__)
/* A 32x32 matrix over GF(2) acting on a CRC register: mat[i] is the image
 * of bit i.  Used to shift a register over a block of zero bytes, which is
 * how the three interleaved hardware lanes are joined. */
static uint32_t crc_gf2_times(const uint32_t *mat, uint32_t vec)
{
    uint32_t sum = 0;
    for (int i = 0; vec; i++, vec >>= 1)
        if (vec & 1) sum ^= mat[i];
    return sum;
}

static void crc_gf2_square(uint32_t *sq, const uint32_t *mat)
{
    for (int i = 0; i < 32; i++) sq[i] = crc_gf2_times(mat, mat[i]);
}

/* op = the operator that advances a register over len zero bytes. */
static void crc_zeros_op(uint32_t *op, size_t len)
{
    uint32_t a[32], b[32], cur[32], tmp[32];
    a[0] = POLY;                                    /* one zero bit */
    for (int i = 1; i < 32; i++) a[i] = 1u << (i - 1);
    crc_gf2_square(b, a);                           /* two bits */
    crc_gf2_square(a, b);                           /* four bits */
    crc_gf2_square(cur, a);                         /* one byte */
    for (int i = 0; i < 32; i++) op[i] = 1u << i;   /* identity */
    while (len) {
        if (len & 1) {
            for (int i = 0; i < 32; i++) tmp[i] = crc_gf2_times(cur, op[i]);
            memcpy(op, tmp, sizeof tmp);
        }
        len >>= 1;
        if (len) {
            crc_gf2_square(tmp, cur);
            memcpy(cur, tmp, sizeof tmp);
        }
    }
}

#define CRC_BLOCK 8192 /* bytes per interleaved lane */

__attribute__((target("sse4.2")))
static uint32_t crc_hard(uint32_t c, const unsigned char *p, size_t n)
{
    static uint32_t block_op[32];
    static int block_op_ready;
    if (!block_op_ready) { crc_zeros_op(block_op, CRC_BLOCK); block_op_ready = 1; }
    uint64_t c0 = c;
    while (n >= 3 * CRC_BLOCK) {
        uint64_t c1 = 0, c2 = 0;
        const unsigned char *p1 = p + CRC_BLOCK, *p2 = p + 2 * CRC_BLOCK;
        for (size_t i = 0; i < CRC_BLOCK; i += 8) {
            uint64_t w0, w1, w2;
            memcpy(&w0, p + i, 8); memcpy(&w1, p1 + i, 8); memcpy(&w2, p2 + i, 8);
            c0 = __builtin_ia32_crc32di(c0, w0);
            c1 = __builtin_ia32_crc32di(c1, w1);
            c2 = __builtin_ia32_crc32di(c2, w2);
        }
        c0 = crc_gf2_times(block_op, (uint32_t)c0) ^ c1;
        c0 = crc_gf2_times(block_op, (uint32_t)c0) ^ c2;
        p += 3 * CRC_BLOCK;
        n -= 3 * CRC_BLOCK;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c0 = __builtin_ia32_crc32di(c0, w);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c0;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t crc_32c(uint32_t crc, const void *p, size_t n)
{
    if (!crc_ready) crc_init();
    uint32_t c = ~crc;
#if defined(__x86_64__)
    if (crc_hw) return ~crc_hard(c, p, n);
#endif
    return ~crc_soft(c, p, n);
}

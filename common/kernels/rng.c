/* rng.c: xoshiro256** (Blackman and Vigna) seeded through splitmix64. */
#include "kernels/rng.h"

#include <math.h>

static uint64_t rng_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int rng_fits(int64_t epoch, int64_t modality, int64_t index)
{
    return epoch >= 0 && epoch < (INT64_C(1) << RNG_EPOCH_BITS) && modality >= 0 &&
           modality < (INT64_C(1) << RNG_MODALITY_BITS) && index >= 0 && index < (INT64_C(1) << RNG_INDEX_BITS);
}

uint64_t rng_stream(unsigned purpose, int64_t epoch, int64_t modality, int64_t index)
{
    if (purpose == 0 || purpose > 255 || !rng_fits(epoch, modality, index)) return 0;
    return (uint64_t)purpose << 56 | (uint64_t)epoch << (RNG_MODALITY_BITS + RNG_INDEX_BITS) |
           (uint64_t)modality << RNG_INDEX_BITS | (uint64_t)index;
}

/* mix = splitmix(seed) ^ stream * odd: a bijection of the stream number,
 * and each state word a bijection of mix, so distinct streams never start
 * in the same state. */
void rng_seed(rng_t *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed;
    uint64_t mix = rng_splitmix(&x) ^ stream * 0xd1342543de82ef95ull;
    for (int i = 0; i < 4; i++) r->s[i] = rng_splitmix(&mix);
}

static inline uint64_t rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_u64(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return out;
}

double rng_uniform(rng_t *r) { return (double)(rng_u64(r) >> 11) * 0x1.0p-53; }

uint64_t rng_below(rng_t *r, uint64_t n)
{
    /* Lemire's multiply-and-reject */
    unsigned __int128 m = (unsigned __int128)rng_u64(r) * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        uint64_t floor = (0 - n) % n;
        while (low < floor) {
            m = (unsigned __int128)rng_u64(r) * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double rng_normal(rng_t *r)
{
    double u1 = 1.0 - rng_uniform(r); /* (0, 1] */
    double u2 = rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- ziggurat ---- */

#define ZIG_N 128
#define ZIG_R 3.442619855899            /* start of the tail */
#define ZIG_V 9.91256303526217e-3       /* area of each layer */

static uint32_t zig_k[ZIG_N];           /* integer thresholds of the fast path */
static float zig_w[ZIG_N], zig_f[ZIG_N];
static int zig_ready;

static void zig_init(void)
{
    const double m = 2147483648.0;
    double dn = ZIG_R, tn = dn, q = ZIG_V / exp(-0.5 * dn * dn);
    zig_k[0] = (uint32_t)((dn / q) * m);
    zig_k[1] = 0;
    zig_w[0] = (float)(q / m);
    zig_w[ZIG_N - 1] = (float)(dn / m);
    zig_f[0] = 1.0f;
    zig_f[ZIG_N - 1] = (float)exp(-0.5 * dn * dn);
    for (int i = ZIG_N - 2; i >= 1; i--) {
        dn = sqrt(-2.0 * log(ZIG_V / dn + exp(-0.5 * dn * dn)));
        zig_k[i + 1] = (uint32_t)((dn / tn) * m);
        tn = dn;
        zig_f[i] = (float)exp(-0.5 * dn * dn);
        zig_w[i] = (float)(dn / m);
    }
    zig_ready = 1;
}

/* The slow path: the tail beyond R, or a wedge between layers. */
static float zig_slow(rng_t *r, int32_t hz, uint32_t iz)
{
    for (;;) {
        float x = (float)hz * zig_w[iz];
        if (iz == 0) {                            /* tail */
            double xt, yt;
            do {
                xt = -log(1.0 - rng_uniform(r)) / ZIG_R;
                yt = -log(1.0 - rng_uniform(r));
            } while (yt + yt < xt * xt);
            return (float)(hz > 0 ? ZIG_R + xt : -ZIG_R - xt);
        }
        if (zig_f[iz] + rng_uniform(r) * (zig_f[iz - 1] - zig_f[iz]) < exp(-0.5 * (double)x * x)) return x;
        uint64_t u = rng_u64(r);
        hz = (int32_t)(uint32_t)u;
        iz = (uint32_t)(u >> 32) & (ZIG_N - 1);
        uint32_t a = (uint32_t)(hz < 0 ? -(int64_t)hz : hz);
        if (a < zig_k[iz]) return (float)hz * zig_w[iz];
    }
}

void rng_normal_fill(rng_t *r, float *out, int64_t n)
{
    if (!zig_ready) zig_init();
    for (int64_t i = 0; i < n; i++) {
        uint64_t u = rng_u64(r);
        int32_t hz = (int32_t)(uint32_t)u;
        uint32_t iz = (uint32_t)(u >> 32) & (ZIG_N - 1);
        uint32_t a = (uint32_t)(hz < 0 ? -(int64_t)hz : hz);
        out[i] = a < zig_k[iz] ? (float)hz * zig_w[iz] : zig_slow(r, hz, iz);
    }
}

void rng_shuffle_i32(rng_t *r, int64_t n, int k, int32_t *const *arrays)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_below(r, (uint64_t)i + 1);
        for (int a = 0; a < k; a++) {
            int32_t t = arrays[a][i];
            arrays[a][i] = arrays[a][j];
            arrays[a][j] = t;
        }
    }
}

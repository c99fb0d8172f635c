/* rng-streams: every stream a TikTok-sized run draws from starts with its
 * own first value, and rng_stream refuses what does not fit its fields.
 *
 * Draws the first value of rng_stream(purpose, epoch, modality, index) for
 * every purpose, epochs 0-99, modalities 0-7 and indices 0..U-1 plus every
 * 2^k - 1, 2^k, 2^k + 1 up to 2^24 (the old stream numbers collided at
 * user 4096 = 1 << 12 shifted into the purpose bits), sorts them and
 * reports any two equal.  Exit 0 when all differ.
 * usage: rng-streams [USERS=9308] [SEED=421] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/rng.h"

static void radix_sort(uint64_t *a, uint64_t *tmp, size_t n)
{
    for (int shift = 0; shift < 64; shift += 16) {
        size_t count[65537] = {0};
        for (size_t i = 0; i < n; i++) count[((a[i] >> shift) & 0xffff) + 1]++;
        for (int b = 0; b < 65536; b++) count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++) tmp[count[(a[i] >> shift) & 0xffff]++] = a[i];
        memcpy(a, tmp, n * sizeof *a);
    }
}

int main(int argc, char **argv)
{
    int64_t users = argc > 1 ? atoll(argv[1]) : 9308;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 421;
    static const unsigned purposes[] = {RNG_INIT, RNG_NEGATIVES, RNG_SHUFFLE, RNG_DENOISE_INIT, RNG_DENOISE,
                                        RNG_EDGE_DROP, RNG_DENOISE_ORDER, RNG_SAMPLE, RNG_UI_DROP};
    int np = (int)(sizeof purposes / sizeof *purposes), ne = 100, nm = 8;
    int64_t idx[1 << 16];
    int ni = 0;
    for (int64_t u = 0; u < users && ni < (1 << 15); u++) idx[ni++] = u;
    for (int k = 1; k <= 24; k++)
        for (int64_t d = -1; d <= 1; d++)
            if (((INT64_C(1) << k) + d) >= users) idx[ni++] = (INT64_C(1) << k) + d;
    size_t n = (size_t)np * ne * nm * ni;
    uint64_t *v = malloc(n * 8), *tmp = malloc(n * 8);
    if (!v || !tmp) { fprintf(stderr, "rng-streams: out of memory\n"); return 2; }
    int bad = 0;
#pragma omp parallel for collapse(3) schedule(static) reduction(| : bad)
    for (int p = 0; p < np; p++)
        for (int e = 0; e < ne; e++)
            for (int m = 0; m < nm; m++) {
                uint64_t *out = v + (((size_t)p * ne + e) * nm + m) * ni;
                for (int i = 0; i < ni; i++) {
                    uint64_t s = rng_stream(purposes[p], e, m, idx[i]);
                    rng_t r;
                    rng_seed(&r, seed, s);
                    out[i] = rng_u64(&r);
                    bad |= s == 0;
                }
            }
    if (bad) { fprintf(stderr, "rng-streams: a tuple in range got no stream\n"); return 1; }
    radix_sort(v, tmp, n);
    size_t same = 0;
    for (size_t i = 1; i < n; i++) same += v[i] == v[i - 1];
    /* what does not fit is refused, never wrapped into another field */
    int refused = rng_stream(RNG_DENOISE, 0, 0, INT64_C(1) << 28) == 0 && rng_stream(RNG_DENOISE, 1 << 20, 0, 0) == 0 &&
                  rng_stream(RNG_DENOISE, 0, 256, 0) == 0 && rng_stream(RNG_DENOISE, -1, 0, 0) == 0 &&
                  rng_stream(0, 0, 0, 0) == 0 && rng_stream(256, 0, 0, 0) == 0 &&
                  rng_stream(RNG_DENOISE, (1 << 20) - 1, 255, (INT64_C(1) << 28) - 1) != 0;
    printf("%zu streams (%d purposes x %d epochs x %d modalities x %d indices up to %lld): %zu first values equal\n",
           n, np, ne, nm, ni, (long long)idx[ni - 1], same);
    printf("out-of-range fields %s\n", refused ? "refused" : "NOT refused");
    free(v); free(tmp);
    return same == 0 && refused ? 0 : 1;
}

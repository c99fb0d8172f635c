/* rng.h: seeded random numbers (xoshiro256**, seeded through splitmix64).
 *
 * Every random choice in the project comes from an rng_t seeded with
 * (seed, stream): the user's --seed, and a stream number that names the
 * purpose and the epoch (see RNG_* below), so runs repeat exactly and
 * stages never share a sequence by accident. */
#ifndef RNG_H
#define RNG_H

#include <stdint.h>

typedef struct { uint64_t s[4]; } rng_t;

/* Purposes, combined with the epoch as rng_stream(RNG_X, epoch). */
enum {
    RNG_INIT = 1,       /* recommender parameter initialisation */
    RNG_NEGATIVES,      /* BPR negative sampling */
    RNG_SHUFFLE,        /* interaction order */
    RNG_DENOISE_INIT,   /* denoiser initialisation */
    RNG_DENOISE,        /* diffusion steps, noise, dropout */
    RNG_EDGE_DROP,      /* edge dropout of regenerated graphs */
    RNG_TEST = 100      /* tests and examples */
};

static inline uint64_t rng_stream(uint64_t purpose, uint64_t epoch) { return (purpose << 32) ^ epoch; }

void rng_seed(rng_t *r, uint64_t seed, uint64_t stream);
uint64_t rng_u64(rng_t *r);
/* Uniform in [0, 1) with 53 random bits. */
double rng_uniform(rng_t *r);
/* Uniform integer in [0, n), unbiased; n > 0. */
uint64_t rng_below(rng_t *r, uint64_t n);
/* Standard normal (Box-Muller on two uniforms; no cached second value). */
double rng_normal(rng_t *r);
/* n standard normals in float, fast (Marsaglia and Tsang's ziggurat with
 * 128 layers): for the diffusion's noise, where millions are drawn. */
void rng_normal_fill(rng_t *r, float *out, int64_t n);

#endif

/* rng.h: seeded random numbers (xoshiro256**, seeded through splitmix64).
 *
 * Every random choice in the project comes from an rng_t seeded with
 * (seed, stream): the user's --seed, and a stream number that names the
 * purpose, the epoch, the modality and an index (rng_stream below), so runs
 * repeat exactly and stages never share a sequence by accident.  Seeding is
 * a bijection of the stream number for a given seed, so distinct streams
 * start in distinct states (tests/tools/rng-streams checks first values). */
#ifndef RNG_H
#define RNG_H

#include <stdint.h>

typedef struct { uint64_t s[4]; } rng_t;

/* Purposes: the top field of a stream number. */
enum {
    RNG_INIT = 1,       /* recommender parameter initialisation */
    RNG_NEGATIVES,      /* BPR negative sampling, per epoch */
    RNG_SHUFFLE,        /* the recommender's interaction order, per epoch */
    RNG_DENOISE_INIT,   /* denoiser initialisation, per modality */
    RNG_DENOISE,        /* a user's diffusion steps, noise and dropout, per epoch and modality */
    RNG_EDGE_DROP,      /* edge dropout of a regenerated graph, per epoch and modality */
    RNG_DENOISE_ORDER,  /* the denoisers' user order, per epoch */
    RNG_SAMPLE,         /* the reverse process's noise, per epoch, modality and batch */
    RNG_UI_DROP,        /* build-graph's optional edge dropout of graph/ui */
    RNG_TEST = 100      /* tests and examples */
};

/* A stream number packs (purpose, epoch, modality, index) into disjoint
 * bit fields, so two different tuples never name the same stream:
 *
 *   bits 63..56  purpose   8 bits   RNG_*
 *   bits 55..36  epoch    20 bits   0 .. 1048575
 *   bits 35..28  modality  8 bits   0 .. 255
 *   bits 27..0   index    28 bits   0 .. 268435455 (a user, a batch's first user)
 *
 * No stage composes a stream number by hand: rng_stream does, and returns
 * 0, which is no stream's number, when a field does not fit its width. */
#define RNG_EPOCH_BITS    20
#define RNG_MODALITY_BITS 8
#define RNG_INDEX_BITS    28
uint64_t rng_stream(unsigned purpose, int64_t epoch, int64_t modality, int64_t index);
/* Do (epoch, modality, index) fit their fields?  A stage asks once for the
 * largest values it will use, so the streams it draws later cannot fail. */
int rng_fits(int64_t epoch, int64_t modality, int64_t index);

void rng_seed(rng_t *r, uint64_t seed, uint64_t stream);
uint64_t rng_u64(rng_t *r);
/* Uniform in [0, 1) with 53 random bits. */
double rng_uniform(rng_t *r);
/* Uniform integer in [0, n), unbiased; n > 0. */
uint64_t rng_below(rng_t *r, uint64_t n);
/* Standard normal (Box-Muller on two uniforms; no cached second value). */
double rng_normal(rng_t *r);
/* Fisher-Yates: the same random permutation of the first n entries of each
 * of the k arrays (for i = n-1 .. 1, swap i with rng_below(i + 1)). */
void rng_shuffle_i32(rng_t *r, int64_t n, int k, int32_t *const *arrays);
/* n standard normals in float, fast (Marsaglia and Tsang's ziggurat with
 * 128 layers): for the diffusion's noise, where millions are drawn. */
void rng_normal_fill(rng_t *r, float *out, int64_t n);

#endif

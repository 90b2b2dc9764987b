/*
 * rng.h — counter-based random numbers (Philox4x32-10, Salmon et al. SC'11).
 *
 * Every random draw in shardrec is a pure function of
 *     (seed, purpose, step, global sample index, draw index)
 * and never of the rank or of how many draws happened before. Hence a dropout
 * mask for user 1234 at step 77 is the same on 1 rank or 64 ranks, and a resumed
 * run redraws exactly what the uninterrupted run drew: there is no generator
 * state to checkpoint beyond the seed and the counters already in the cursor.
 *
 * A stream is opened for one (seed, purpose, step, sample) tuple and yields up
 * to 2^34 values; the purpose keeps e.g. dropout and reparameterisation noise
 * independent even for the same sample and step.
 */
#ifndef SHARDREC_RNG_H
#define SHARDREC_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SR_RNG_INIT = 1,      /* parameter initialisation: sample = parameter index */
  SR_RNG_SHUFFLE = 2,   /* epoch shuffles: step = epoch */
  SR_RNG_DROPOUT = 3,   /* input / hidden dropout masks */
  SR_RNG_NOISE = 4,     /* reparameterisation noise epsilon */
  SR_RNG_SPLIT = 5,     /* dataset splits (held-out users, fold-in/held-out items) */
  SR_RNG_SYNTH = 6,     /* synthetic data generation */
  SR_RNG_SSL = 7,       /* SSL item sampling, feature masks (two-tower) */
  SR_RNG_NEGATIVES = 8, /* sampled negatives */
  SR_RNG_MERGE = 9      /* randomness in checkpoint merging */
} sr_rng_purpose;

typedef struct {
  uint32_t key[2];     /* from seed and purpose */
  uint32_t counter[4]; /* [0] = block, [1] = step, [2..3] = sample index */
  uint32_t out[4];     /* current block of 4 outputs */
  int used;            /* outputs of `out` already consumed (4 = need a new block) */
  int has_spare_normal;
  float spare_normal;
} sr_rng;

/* One Philox4x32-10 block: out = Philox(key, ctr). */
void sr_philox4x32(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]);

/* `purpose` is an sr_rng_purpose, optionally plus 256 * sub-stream (e.g. a layer
 * index) so two dropout layers of one step draw independent masks. */
void sr_rng_init(sr_rng *r, uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample);
uint32_t sr_rng_u32(sr_rng *r);
/* Advances the stream by n 32-bit draws, in O(1) (no normal may be pending). */
void sr_rng_skip(sr_rng *r, uint64_t n);
/* Uniform in [0, 1) with 24 random bits (exactly representable floats). */
float sr_rng_uniform(sr_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double sr_rng_uniform_double(sr_rng *r);
/* Standard normal N(0,1) (Box-Muller; pairs are used in order). */
float sr_rng_normal(sr_rng *r);
/* Uniform integer in [0, n), unbiased (rejection). n >= 1. */
uint64_t sr_rng_below(sr_rng *r, uint64_t n);

/* Fisher-Yates permutation of 0..n-1 drawn from one stream. */
void sr_rng_permutation(sr_rng *r, int64_t *perm, int64_t n);

#ifdef __cplusplus
}
#endif
#endif

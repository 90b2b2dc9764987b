/* rng.c — Philox4x32-10 counter-based generator and keyed streams (rng.h). */
#include "shardrec/rng.h"

#include <math.h>

#include "shardrec/error.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void sr_philox4x32(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; round++) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
    uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    uint32_t n3 = (uint32_t)p0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

void sr_rng_init(sr_rng *r, uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample) {
  /* The key is a Philox hash of (seed, purpose): distinct purposes give
   * unrelated streams even for seeds that differ in few bits. */
  const uint32_t seed_key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  const uint32_t purpose_ctr[4] = {purpose, 0x5eed5eedu, 0, 0};
  uint32_t mixed[4];
  sr_philox4x32(seed_key, purpose_ctr, mixed);
  r->key[0] = mixed[0];
  r->key[1] = mixed[1];
  r->counter[0] = 0;
  r->counter[1] = (uint32_t)step;
  r->counter[2] = (uint32_t)sample;
  r->counter[3] = (uint32_t)(sample >> 32);
  r->used = 4;
  r->has_spare_normal = 0;
  r->spare_normal = 0.0f;
}

uint32_t sr_rng_u32(sr_rng *r) {
  if (r->used == 4) {
    sr_philox4x32(r->key, r->counter, r->out);
    r->counter[0]++;
    r->used = 0;
  }
  return r->out[r->used++];
}

void sr_rng_skip(sr_rng *r, uint64_t n) {
  SR_ASSERT(!r->has_spare_normal);
  /* Position = 32-bit draws consumed: block counter[0] is the next one to
   * generate, and `used` of the block before it are gone (4: none loaded). */
  const uint64_t position = (uint64_t)r->counter[0] * 4 - (uint64_t)(4 - r->used) + n;
  r->counter[0] = (uint32_t)(position / 4);
  r->used = 4;
  if (position % 4 == 0) return;
  sr_philox4x32(r->key, r->counter, r->out);
  r->counter[0]++;
  r->used = (int)(position % 4);
}

float sr_rng_uniform(sr_rng *r) { return (float)(sr_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

double sr_rng_uniform_double(sr_rng *r) {
  uint64_t hi = sr_rng_u32(r) >> 5, lo = sr_rng_u32(r) >> 6; /* 27 + 26 bits */
  return ((double)hi * 67108864.0 + (double)lo) * (1.0 / 9007199254740992.0);
}

float sr_rng_normal(sr_rng *r) {
  if (r->has_spare_normal) {
    r->has_spare_normal = 0;
    return r->spare_normal;
  }
  /* Box-Muller with u1 in (0, 1] so log(u1) is finite. */
  double u1 = ((double)(sr_rng_u32(r) >> 8) + 1.0) * (1.0 / 16777216.0);
  double u2 = (double)(sr_rng_u32(r) >> 8) * (1.0 / 16777216.0);
  double radius = sqrt(-2.0 * log(u1)), angle = 6.283185307179586 * u2;
  r->spare_normal = (float)(radius * sin(angle));
  r->has_spare_normal = 1;
  return (float)(radius * cos(angle));
}

uint64_t sr_rng_below(sr_rng *r, uint64_t n) {
  /* Accept x < 2^64 - (2^64 mod n) so that x % n is unbiased. */
  uint64_t rem = (UINT64_MAX % n + 1) % n;
  for (;;) {
    uint64_t x = ((uint64_t)sr_rng_u32(r) << 32) | sr_rng_u32(r);
    if (x <= UINT64_MAX - rem) return x % n;
  }
}

void sr_rng_permutation(sr_rng *r, int64_t *perm, int64_t n) {
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)sr_rng_below(r, (uint64_t)i + 1);
    int64_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

/* feature_mask.c — mutual information between item features and the CFM /
 * RFM splits for SSL views (feature_mask.h). */
#include "shardrec/feature_mask.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/mem.h"
#include "shardrec/rng.h"

/* ---- mutual information ------------------------------------------------------------- */

/* One (value_a, value_b) pair of one item; key = value_a * V_b + value_b. */
typedef struct {
  uint64_t key;
  int64_t item;
} value_pair;

/* (key, item): pairs are unique within an item, so equal keys are summed in
 * item order whatever qsort does with ties. */
static int compare_pairs(const void *pa, const void *pb) {
  const value_pair *a = pa, *b = pb;
  if (a->key != b->key) return a->key < b->key ? -1 : 1;
  return (a->item > b->item) - (a->item < b->item);
}

/* The mass 1 of an item spread over its |a_i| * |b_i| pairs. */
static double pair_mass(const sr_csr *fa, const sr_csr *fb, int64_t item) {
  return 1.0 / ((double)sr_csr_row_len(fa, item) * (double)sr_csr_row_len(fb, item));
}

static int has_both(const sr_csr *fa, const sr_csr *fb, int64_t item) {
  return sr_csr_row_len(fa, item) > 0 && sr_csr_row_len(fb, item) > 0;
}

/* Marginal masses m_a (V_a), m_b (V_b) of the joint, in item order; returns
 * the total mass T (items having both features). */
static double marginal_masses(double *ma, double *mb, const sr_csr *fa, const sr_csr *fb) {
  double total = 0.0;
  for (int64_t i = 0; i < fa->n_rows; i++) {
    if (!has_both(fa, fb, i)) continue;
    total += 1.0;
    /* Summing a pair mass over the other feature's values leaves 1/|a_i|. */
    const double share_a = 1.0 / (double)sr_csr_row_len(fa, i), share_b = 1.0 / (double)sr_csr_row_len(fb, i);
    for (int64_t k = fa->indptr[i]; k < fa->indptr[i + 1]; k++) ma[fa->indices[k]] += share_a;
    for (int64_t k = fb->indptr[i]; k < fb->indptr[i + 1]; k++) mb[fb->indices[k]] += share_b;
  }
  return total;
}

/* All value pairs of the items having both features, sorted by (key, item). */
static value_pair *sorted_pairs(const sr_csr *fa, const sr_csr *fb, int64_t *count) {
  int64_t n = 0;
  for (int64_t i = 0; i < fa->n_rows; i++)
    if (has_both(fa, fb, i)) n += sr_csr_row_len(fa, i) * sr_csr_row_len(fb, i);
  value_pair *pairs = sr_malloc((size_t)(n > 0 ? n : 1) * sizeof *pairs);
  int64_t p = 0;
  for (int64_t i = 0; i < fa->n_rows; i++) {
    if (!has_both(fa, fb, i)) continue;
    for (int64_t ka = fa->indptr[i]; ka < fa->indptr[i + 1]; ka++)
      for (int64_t kb = fb->indptr[i]; kb < fb->indptr[i + 1]; kb++)
        pairs[p++] = (value_pair){(uint64_t)fa->indices[ka] * (uint64_t)fb->n_cols + (uint64_t)fb->indices[kb], i};
  }
  qsort(pairs, (size_t)n, sizeof *pairs, compare_pairs);
  *count = n;
  return pairs;
}

/* MI = (1/T) sum_(u,v) m_uv log(m_uv T / (m_u m_v)), masses as in the header. */
static double pair_mutual_information(const sr_csr *fa, const sr_csr *fb) {
  double *ma = sr_calloc((size_t)(fa->n_cols > 0 ? fa->n_cols : 1), sizeof *ma);
  double *mb = sr_calloc((size_t)(fb->n_cols > 0 ? fb->n_cols : 1), sizeof *mb);
  const double total = marginal_masses(ma, mb, fa, fb);
  int64_t n;
  value_pair *pairs = sorted_pairs(fa, fb, &n);
  double mi = 0.0;
  for (int64_t p = 0; p < n;) {
    const uint64_t key = pairs[p].key;
    double m_uv = 0.0;
    for (; p < n && pairs[p].key == key; p++) m_uv += pair_mass(fa, fb, pairs[p].item);
    const double m_u = ma[key / (uint64_t)fb->n_cols], m_v = mb[key % (uint64_t)fb->n_cols];
    mi += m_uv * log(m_uv * total / (m_u * m_v));
  }
  free(pairs);
  free(ma);
  free(mb);
  /* Round-off may leave -1e-17 for independent features: MI is >= 0. */
  return total > 0.0 && mi > 0.0 ? mi / total : 0.0;
}

int sr_feature_mutual_information(double *mi, const sr_csr *features, int n_features) {
  for (int f = 1; f < n_features; f++)
    if (features[f].n_rows != features[0].n_rows)
      return SR_FAIL(SR_EINVAL, "item feature %d has %lld items, feature 0 has %lld", f,
                     (long long)features[f].n_rows, (long long)features[0].n_rows);
  for (int a = 0; a < n_features; a++)
    for (int b = a; b < n_features; b++)
      mi[a * n_features + b] = mi[b * n_features + a] = pair_mutual_information(&features[a], &features[b]);
  return SR_OK;
}

/* ---- splits ---------------------------------------------------------------------------------- */

static int split_size(int n_features) { return n_features / 2 + 1; }

static void split_stream(sr_rng *rng, uint64_t seed, uint64_t step, uint64_t sample) {
  sr_rng_init(rng, seed, SR_RNG_SSL + 256u * (uint32_t)SR_SSL_SPLIT_SUBSTREAM, step, sample);
}

void sr_cfm_split(uint8_t *in_a, const double *mi, int n_features, int seed_feature) {
  SR_ASSERT(seed_feature >= 0 && seed_feature < n_features);
  memset(in_a, 0, (size_t)n_features);
  in_a[seed_feature] = 1;
  const double *to_seed = mi + (int64_t)seed_feature * n_features;
  /* Repeatedly take the best feature not yet in F_a; scanning upwards with a
   * strict > keeps the lower index on ties. F is small: O(F^2) is nothing. */
  for (int taken = 1; taken < split_size(n_features); taken++) {
    int best = -1;
    for (int f = 0; f < n_features; f++)
      if (!in_a[f] && (best < 0 || to_seed[f] > to_seed[best])) best = f;
    in_a[best] = 1;
  }
}

int sr_cfm_seed_feature(uint64_t seed, uint64_t step, int n_features) {
  SR_ASSERT(n_features >= 1);
  sr_rng rng;
  split_stream(&rng, seed, step, 1);
  return (int)sr_rng_below(&rng, (uint64_t)n_features);
}

void sr_rfm_split(uint8_t *in_a, int n_features, uint64_t seed, uint64_t step) {
  SR_ASSERT(n_features >= 1);
  sr_rng rng;
  split_stream(&rng, seed, step, 0);
  int64_t *perm = sr_malloc((size_t)n_features * sizeof *perm);
  sr_rng_permutation(&rng, perm, n_features);
  memset(in_a, 0, (size_t)n_features);
  for (int t = 0; t < split_size(n_features); t++) in_a[perm[t]] = 1;
  free(perm);
}

/*
 * synth.h — synthetic interaction data with planted structure, so learning can
 * be verified without downloading anything.
 *
 * Users and items get latent factors in R^k; item popularity follows a Zipf-like
 * law; user u clicks n_u items drawn without replacement with probability
 * proportional to exp(<p_u, q_i>/temperature + popularity_i) (Gumbel top-k).
 * Optional item features are derived from the item factors (so they carry
 * signal): a "cluster" (argmax factor), multi-valued "tags" (the top factors)
 * and a "popularity" bucket.
 *
 * With causal_features the other way round (the long-tail benchmark): the
 * features come first and determine the factors. Each item has 1 to 3
 * values of each of n_informative_features + n_noise_features multi-valued
 * features ("informative_1".., "noise_1"..; feature_values values each);
 * every value v of informative feature f has a vector e_fv ~ N(0, I_k / k) and
 *   q_i = sqrt(1 - rho) / sqrt(F) * sum_f (1 / sqrt(m_fi)) * sum_{v of f for i} e_fv
 *         + sqrt(rho) * z_i,    z_i ~ N(0, I_k / k),
 * with F informative features, m_fi values of f for item i and rho =
 * factor_noise, so q_i ~ N(0, I_k / k) as without features, and a share 1 - rho
 * of it is what the item's informative features say; noise features say nothing.
 */
#ifndef SHARDREC_SYNTH_H
#define SHARDREC_SYNTH_H

#include <stdint.h>

#include "shardrec/csr.h"
#include "shardrec/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int64_t n_users, n_items;
  int n_factors;
  double mean_items_per_user; /* n_u ~ 5 + Poisson-ish around this mean */
  double popularity_skew;     /* Zipf exponent of item popularity (0 = flat) */
  double temperature;         /* lower = users follow their factors more strictly */
  int with_item_features;
  uint64_t seed;
  int causal_features;        /* the features determine the factors (above) */
  int n_informative_features; /* causal: features that make the factors (3) */
  int n_noise_features;       /* causal: features drawn independently of everything (2) */
  int feature_values;         /* causal: vocabulary of each feature (24) */
  double factor_noise;        /* causal: rho, the share of factor variance no feature explains (0.2) */
} sr_synth_opts;

void sr_synth_opts_default(sr_synth_opts *o);
/* full: (n_users, n_items) binary CSR. item_features: malloc'd array of
 * *n_item_features features (rows = n_items), or NULL/0 without features. */
int sr_synth_generate(const sr_synth_opts *o, sr_csr *full, sr_feature **item_features, int *n_item_features);
/* q (n_items, n_factors) = the item factors sr_synth_generate plants; with
 * causal_features made from `item_features` as it returned them, else
 * drawn (item_features unused). */
void sr_synth_item_factors(const sr_synth_opts *o, const sr_feature *item_features, float *q);

#ifdef __cplusplus
}
#endif
#endif

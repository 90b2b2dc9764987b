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
} sr_synth_opts;

void sr_synth_opts_default(sr_synth_opts *o);
/* full: (n_users, n_items) binary CSR. item_features: malloc'd array of
 * *n_item_features features (rows = n_items), or NULL/0 without features. */
int sr_synth_generate(const sr_synth_opts *o, sr_csr *full, sr_feature **item_features, int *n_item_features);

#ifdef __cplusplus
}
#endif
#endif

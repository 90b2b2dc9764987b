/*
 * feature_mask.h — complementary feature masking for the SSL item views
 * (Yao et al. 2020, methods.md §2): mutual information between categorical
 * item features, and the CFM / RFM splits of the F features into F_a (masked
 * in view 1) and F_b (masked in view 2).
 *
 * The split is drawn once per batch (every SSL item of a step shares it) from
 * the stream (seed, SR_RNG_SSL + 256*SR_SSL_SPLIT_SUBSTREAM, step, sample):
 * sample 0 for RFM, 1 for CFM's seed feature. The SSL items themselves are
 * drawn from (seed, SR_RNG_SSL + 256*SR_SSL_SAMPLE_SUBSTREAM, step, j)
 * (two_tower.h). Both sub-streams lie above every feature index, so they
 * never meet a value-dropout stream (embedding.h uses SR_RNG_SSL + 256*feature).
 */
#ifndef SHARDREC_FEATURE_MASK_H
#define SHARDREC_FEATURE_MASK_H

#include <stdint.h>

#include "shardrec/csr.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest sub-stream that keeps SR_RNG_SSL + 256*sub within 32 bits. */
#define SR_SSL_SPLIT_SUBSTREAM 0xFFFFFF
/* The sub-stream of the uniform SSL item sample; value-dropout feature
 * indices stay below it. */
#define SR_SSL_SAMPLE_SUBSTREAM 0xFFFFFE

/* mi (F, F), symmetric, in nats. features[f] is feature f over the item
 * corpus: one CSR row per item (all F share n_rows), columns = its values.
 *
 * Joint distribution of features a and b (our choice, covers multi-valued
 * features): each item that has at least one value of a and one of b
 * contributes mass 1, spread evenly over its |a_i| * |b_i| value pairs; the
 * masses are normalised over those items. The marginals are those of this
 * joint, so MI is a KL divergence (>= 0, 0 for independent features) and for
 * single-valued features it is the usual MI; MI(f, f) is then H(f). Items
 * missing a or b do not count for that pair. A pair with no such item has
 * MI 0. Deterministic (sums in a fixed order).
 * Fails with SR_EINVAL when the features disagree on the number of items. */
int sr_feature_mutual_information(double *mi, const sr_csr *features, int n_features);

/* CFM: in_a (F) = 1 for F_a = {seed_feature} plus the floor(F/2) other
 * features with the highest MI to it (ties to the lower index), 0 for F_b.
 * With F = 2 every feature lands in F_a and F_b is empty (as the rule says). */
void sr_cfm_split(uint8_t *in_a, const double *mi, int n_features, int seed_feature);
/* CFM's per-batch seed feature: uniform over [0, F), keyed by (seed, step). */
int sr_cfm_seed_feature(uint64_t seed, uint64_t step, int n_features);
/* RFM (our choice of size): F_a is a uniformly random subset of the same size
 * as CFM's, floor(F/2) + 1, keyed by (seed, step), so the two strategies
 * differ only in which features are grouped together. */
void sr_rfm_split(uint8_t *in_a, int n_features, uint64_t seed, uint64_t step);

#ifdef __cplusplus
}
#endif
#endif

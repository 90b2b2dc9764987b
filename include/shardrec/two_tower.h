/*
 * two_tower.h — the SSL-augmented two-tower retrieval model (methods.md §2)
 * with cross-device negatives (§3) and the optional losses of §5.
 *
 * Each tower: one embedding table per categorical feature (multi-valued
 * features mean-pooled, embedding.h) -> concatenation -> MLP (ReLU between
 * layers) -> L2 normalisation -> an embedding of dimension d. Features:
 *   query tower: "history" (the user's items, without the sample's own
 *                positive item in training; the fold-in items in
 *                evaluation), "user_id", or a /features/user/NAME feature;
 *   item tower:  "item_id", a /features/item/NAME feature, or "all" (every
 *                item feature of the file, in file order).
 * Every feature has a learned default embedding, used when it is masked (SSL)
 * or has no value for an entity.
 *
 * A training sample is one (user, positive item) pair. A step:
 *   1. query tower on this rank's B pairs -> q (B, d); item tower on their
 *      positive items -> x (B, d);
 *   2. with dist.cross_device_negatives, x is all-gathered and put in global
 *      batch order (N rows), so each query is scored against all N items;
 *      its loss is divided by N, and the gradient of the gathered rows is
 *      summed back to the rank that embedded them (exchange.h). Without it,
 *      the B local items are the candidates (still divided by N);
 *   3. logQ: log p_j of each candidate, from the streaming estimator fed the
 *      global batch's item ids in global order (the same on every rank and
 *      for any number of ranks) or from static training frequencies;
 *   4. SSL (ssl.enabled): M items drawn uniformly from the corpus, keyed by
 *      (seed, step, j) for j < M, the rank taking a contiguous share of j;
 *      two views with complementary feature masks (CFM/RFM, one split per
 *      step) and value dropout; InfoNCE of view 1 against the (gathered)
 *      view 2, weighted by ssl.weight, divided by M;
 *   5. backward through both towers. MLP weights and default embeddings are
 *      dense parameters (all-reduced by the trainer); embedding tables get
 *      sparse gradients that update_sparse exchanges (only touched rows) and
 *      applies with lazy Adam or Adagrad.
 * With cross-device negatives, P ranks with global batch N compute exactly
 * the gradient of one process with batch N.
 */
#ifndef SHARDREC_TWO_TOWER_H
#define SHARDREC_TWO_TOWER_H

#include <stdint.h>

#include "shardrec/config.h"
#include "shardrec/dataset.h"
#include "shardrec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Builds the model over data's items and features (copied). Fails with a
 * message naming the key when a configured feature does not exist. */
int sr_two_tower_create(const sr_config *cfg, const sr_dataset *data, const sr_dist *dist, sr_model **out);

/* Adds every embedding table's pending sparse gradient (this rank's, since
 * the last update) into `grads` (params.total floats, laid out like the
 * value arena) and empties the lists: the whole gradient in one place, with
 * the dense prefix copied from the gradient arena, for gradient checks. */
void sr_two_tower_gradient(sr_model *m, float *grads);
/* Output dimension d of both towers. */
int64_t sr_two_tower_dim(const sr_model *m);
/* Seconds the training steps spent in the exchanges of row-sharded tables
 * (row lookups and gradient rows to their owners; 0 without them). */
double sr_two_tower_table_exchange_seconds(const sr_model *m);
/* out (n_items, d): every item's evaluation-mode embedding. */
void sr_two_tower_embed_items(sr_model *m, float *out);
/* out (R, d): query embeddings of R users from their items (`history`, R
 * rows) and ids (original numbering). */
void sr_two_tower_embed_users(sr_model *m, const sr_csr *history, const int64_t *user_ids, float *out);

#ifdef __cplusplus
}
#endif
#endif

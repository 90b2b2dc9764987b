/*
 * ease.h — EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse
 * Data", WWW 2019): an item-item model in closed form.
 *
 *   G = X^T X + lambda I      X (users, I) the binary training rows
 *   P = G^-1                  Cholesky (LAPACK dpotrf + dpotri, lapack.h)
 *   B = I - P diag(1 / diag(P)),  i.e. B_ij = -P_ij / P_jj, B_ii = 0
 *   scores of a user = x B    x the user's (fold-in) row
 *
 * The one parameter is B (I, I) float32 ("ease.B"), so checkpoints, `shardrec
 * eval` and merging treat it as any model; training is fit() instead of
 * gradient steps. Distributed: each rank adds its shard's rows into the
 * lower triangle of X^T X (sparse: a row of n items adds n(n+1)/2 ones,
 * X is never densified), rank 0 receives the sum (exact: integer counts in
 * float64), inverts it and broadcasts B, so P ranks give 1 rank's B bit for
 * bit. Memory per rank: B (4 I^2 bytes) and the lower half of G in float64
 * (4 I (I + 1) bytes).
 */
#ifndef SHARDREC_EASE_H
#define SHARDREC_EASE_H

#include <stdint.h>

#include "shardrec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

int sr_ease_create(const sr_config *cfg, int64_t n_items, sr_model **out);
/* Bytes a fit holds per rank besides B: the lower half of G in float64. */
int64_t sr_ease_gram_bytes(int64_t n_items);

#ifdef __cplusplus
}
#endif
#endif

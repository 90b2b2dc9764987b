/*
 * embedding.h — embedding bags with sparse gradients, SSL feature masking and
 * value dropout, and sparse ("lazy") optimizer updates for embedding tables.
 *
 * One categorical feature of a batch is a CSR bag (R rows, n_cols = the
 * feature's vocabulary V): row r lists the value ids of sample r. Its table
 * is (V, D). Conventions as in nn.h: row-major float32, backward kernels
 * ACCUMULATE.
 *
 * Which rows use the default embedding (our choice, one rule for all cases):
 * row r is a "default row" when it is masked (masked[r] != 0, SSL feature
 * masking), or when none of its values is kept (the row is empty, or value
 * dropout dropped every value). A default row outputs the feature's learned
 * default embedding (1, D) and sends its gradient there; without a default
 * (default_row == NULL) it outputs zeros and has no gradient. Other rows are
 * the mean of the table rows of their kept values; stored CSR values, if
 * any, are ignored (a bag is a set).
 *
 * Table gradients are sparse: a batch touches few of the V rows, so the
 * gradient is a coalesced list of (row id, gradient row) sorted by id, never
 * a dense (V, D) buffer.
 */
#ifndef SHARDREC_EMBEDDING_H
#define SHARDREC_EMBEDDING_H

#include <stddef.h>
#include <stdint.h>

#include "shardrec/csr.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- sparse gradient ---------------------------------------------------------
 * rows (n, dim): rows[i] is the gradient of table row ids[i]; ids strictly
 * increasing. Storage grows as needed and is kept across sr_sparse_grad_clear. */
typedef struct {
  int64_t dim;
  int64_t n;
  int64_t *ids;
  float *rows;
  size_t cap; /* rows allocated in ids / rows */
} sr_sparse_grad;

void sr_sparse_grad_init(sr_sparse_grad *g, int64_t dim);
/* Empties the list (n = 0), keeping the storage for the next step. */
void sr_sparse_grad_clear(sr_sparse_grad *g);
/* Makes room for n rows (ids and gradient rows), keeping the first g->n. */
void sr_sparse_grad_reserve(sr_sparse_grad *g, int64_t n);
void sr_sparse_grad_free(sr_sparse_grad *g);
/* dense (V, dim) += g: row ids[i] of dense gets rows[i]. */
void sr_sparse_grad_add_to_dense(float *dense, const sr_sparse_grad *g);

/* ---- embedding bag -------------------------------------------------------------
 * out (R, D), R = bag->n_rows; table (V, D), V = bag->n_cols.
 * keep (nnz) or NULL (all kept): keep[k] != 0 keeps stored entry k (value dropout).
 * masked (R) or NULL (none masked). default_row (D) or NULL; it must be
 * given when some row is masked. */
void sr_embedding_bag_forward(float *out, const sr_csr *bag, const uint8_t *keep, const uint8_t *masked,
                              const float *table, const float *default_row, int64_t D);
/* Accumulates the table gradient into dtable (dtable->dim == D): row r with c
 * kept values adds dout[r] / c to each of their ids; the new contributions
 * are merged into the existing list, each id summing, in this order, its
 * existing row and then its contributions by increasing (row, entry), so
 * the result is deterministic. The default rows' dout is summed, in row
 * order, into ddefault (D) (skipped when NULL: a frozen default). Shared
 * tables (item tower on the main batch and on both SSL views) accumulate
 * all their uses into one list. */
void sr_embedding_bag_backward(sr_sparse_grad *dtable, float *ddefault, const float *dout, const sr_csr *bag,
                               const uint8_t *keep, const uint8_t *masked, int64_t D);

/* ---- value dropout (SSL augmentation of multi-valued features; history dropout) ----
 * keep (nnz): entry k of row r is dropped (keep[k] = 0) with probability p,
 * using the k-th draw of the stream (seed, purpose, step, sample_ids[r]); a
 * row whose values are all dropped becomes a default row. No rescaling: the
 * bag is a mean over the kept values. The SSL views use purpose SR_RNG_SSL +
 * 256*feature with feature below SR_SSL_SAMPLE_SUBSTREAM (feature_mask.h),
 * whose streams it would otherwise share; with complementary masking each
 * feature is unmasked in exactly one of the two views, so both views may use
 * the same sample ids. */
void sr_embedding_bag_dropout(uint8_t *keep, const sr_csr *bag, float p, uint64_t seed, uint32_t purpose,
                              uint64_t step, const int64_t *sample_ids);

/* ---- L2 penalty on the rows a bag looks up ------------------------------------------
 * Returns scale * sum over the non-default rows r of the mean, over r's kept
 * values k, of ||table row of k||^2 / 2, and accumulates its gradient (row of
 * k times scale / kept count of r) into dtable, merged as the backward pass
 * merges. `bag` gives the ids the gradient goes to, `lookup` the same entries
 * as indices into `table` (the bag itself for a whole table; a renumbered
 * copy for rows fetched from their owners). keep / masked as above. */
double sr_embedding_bag_l2(sr_sparse_grad *dtable, const sr_csr *bag, const sr_csr *lookup, const uint8_t *keep,
                           const uint8_t *masked, const float *table, int64_t D, float scale);

/* ---- sparse optimizer updates ------------------------------------------------------
 * Both update only the table rows listed in g (table, state: (V, dim)).
 *
 * Lazy Adam: for each listed row, m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
 * w -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), t = `step` (>= 1),
 * the GLOBAL optimizer step (the bias correction follows the training
 * clock, not the number of times the row was touched). Unlike dense Adam,
 * rows absent from g keep their moments and values unchanged: dense Adam
 * would decay their moments and keep moving them by the momentum of past
 * gradients. No weight decay is applied. */
typedef struct {
  float lr, beta1, beta2, eps;
} sr_sparse_adam;

void sr_sparse_adam_step(float *table, float *m, float *v, const sr_sparse_grad *g, const sr_sparse_adam *hp,
                         int64_t step);
/* Adagrad: accum += g^2, w -= lr g / (sqrt(accum) + eps) on listed rows. The
 * caller initialises accum (0, or e.g. 0.1 as TensorFlow does). Untouched
 * rows are unchanged, as in dense Adagrad (a zero gradient changes nothing). */
void sr_sparse_adagrad_step(float *table, float *accum, const sr_sparse_grad *g, float lr, float eps);

#ifdef __cplusplus
}
#endif
#endif

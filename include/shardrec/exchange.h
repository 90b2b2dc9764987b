/*
 * exchange.h — the collectives of the two-tower model: rows gathered from
 * every rank (cross-device negatives, methods.md §3), their gradients summed
 * back to the owning ranks, and sparse embedding-table gradients exchanged as
 * (row id, gradient row) lists instead of all-reducing whole tables.
 *
 * Ranks contribute different numbers of rows (a global batch is split by who
 * holds each sample), so every call takes this rank's count and the layout
 * of all ranks' counts (sr_exchange_layout). Gathered arrays are in rank
 * order: rank 0's rows, then rank 1's, ... . Every function is collective
 * over dist->comm and is the identity on a single rank.
 */
#ifndef SHARDREC_EXCHANGE_H
#define SHARDREC_EXCHANGE_H

#include <stdint.h>

#include "shardrec/csr.h"
#include "shardrec/dist.h"
#include "shardrec/embedding.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How many rows each rank holds: rows [offset[r], offset[r] + count[r]) of
 * a gathered array came from rank r; total = sum of counts. */
typedef struct {
  int size;        /* ranks */
  int64_t *count;  /* [size] */
  int64_t *offset; /* [size] exclusive prefix sums of count */
  int64_t total;   /* rows over all ranks */
} sr_exchange_layout;

/* Collective: learns every rank's n_local. */
int sr_exchange_layout_init(sr_exchange_layout *l, const sr_dist *dist, int64_t n_local);
void sr_exchange_layout_free(sr_exchange_layout *l);

/* all (l->total, dim) = the (count[r], dim) rows `local` of every rank r, in
 * rank order. local is this rank's (count[rank], dim). */
int sr_gather_rows_f32(const sr_dist *dist, const sr_exchange_layout *l, const float *local, int64_t dim, float *all);
/* The same for int64 values (dim 1): ids, positions. */
int sr_gather_i64(const sr_dist *dist, const sr_exchange_layout *l, const int64_t *local, int64_t *all);
/* all = every rank's rows of `local`, in rank order (a CSR of the same
 * columns; values kept when local has them, which must agree over ranks). */
int sr_gather_csr_rows(const sr_dist *dist, const sr_csr *local, sr_csr *all);
/* The reverse of a gather for gradients: local (count[rank], dim) = the sum
 * over ranks of their rows [offset[rank], offset[rank] + count[rank]) of
 * all_grad (l->total, dim). all_grad is not modified. */
int sr_scatter_sum_rows_f32(const sr_dist *dist, const sr_exchange_layout *l, const float *all_grad, int64_t dim,
                            float *local);

/* In place: g becomes the sum over ranks of every rank's g, as a coalesced
 * list sorted by id: exactly the dense all-reduce of the densified lists,
 * without ever forming a dense (V, dim) buffer. Each id's row sums the
 * ranks' rows in rank order (deterministic, identical on every rank). Only
 * the touched rows travel (ids + rows, gathered from every rank). */
int sr_sparse_grad_allreduce(const sr_dist *dist, sr_sparse_grad *g);

/* ---- row-sharded tables ----------------------------------------------------
 * A table of V rows split over the ranks in contiguous ranges: rank r owns
 * rows [bounds[r], bounds[r + 1]) (bounds has size + 1 entries, bounds[0] =
 * 0, bounds[size] = V) and stores them as `local` (its rows, dim values each). */

/* rows (n, dim) = the table rows `ids` (n global ids, strictly increasing):
 * each rank sends the ids it needs to their owners (all-to-all), the owners
 * copy them out of their slice and send them back. Collective; n may be 0. */
int sr_fetch_rows_f32(const sr_dist *dist, const int64_t *bounds, const float *local, int64_t dim, const int64_t *ids,
                      int64_t n, float *rows);
/* In place: g, this rank's coalesced list over global ids, becomes the sum
 * over ranks of the rows this rank owns, sorted by id, each id's rows summed
 * in rank order: exactly the owned part of sr_sparse_grad_allreduce's
 * result, while only the touched rows travel, once, to their owner. */
int sr_sparse_grad_reduce_to_owners(const sr_dist *dist, const int64_t *bounds, sr_sparse_grad *g);

#ifdef __cplusplus
}
#endif
#endif

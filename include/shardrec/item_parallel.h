/*
 * item_parallel.h — item parallelism (dist.item_parallel = K): groups of K
 * ranks share each batch and split the item dimension of a model's item
 * layers, so that those layers, their gradients, optimizer state and the
 * (batch, items) activations shrink by K on every rank (docs/scaling.md).
 *
 * The P ranks form a grid of P/K replicas x K item shards: world rank w is
 * shard w % K of replica w / K.
 *  - The K ranks of a replica (`group`) read the same part of the data (part
 *    `replica` of P/K), compute every batch together and exchange the
 *    (batch, hidden) partial products of the split layers. Shard s holds
 *    items [item_begin, item_end): contiguous ranges balanced by count
 *    (sr_shard_even_range).
 *  - The P/K ranks of a shard (`replicas`) hold the same slice of every
 *    parameter and different data: gradients are summed over them, exactly as
 *    data-parallel training sums them over the world (grad_reduce.h).
 * With K = 1 the grid is plain data parallelism; a single process ignores K.
 *
 * The multinomial log-likelihood is computed as vocabulary-parallel
 * cross-entropy: every rank holds the logits of its items only, and the rows'
 * maxima, sums of exponentials and target terms are combined in the group, so
 * no rank ever holds a whole (batch, items) matrix. Evaluation ranks each
 * shard's items and merges the per-shard top-K lists in the group.
 */
#ifndef SHARDREC_ITEM_PARALLEL_H
#define SHARDREC_ITEM_PARALLEL_H

#include <stdint.h>

#include "shardrec/csr.h"
#include "shardrec/dist.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int n_shards, shard;     /* K, and this rank's shard = its rank in `group` */
  int n_replicas, replica; /* P/K, and this rank's replica = its rank in `replicas` */
  int64_t n_items;         /* the whole item dimension */
  int64_t item_begin, item_end;
  sr_dist group;    /* the K ranks of this replica, in shard order */
  sr_dist replicas; /* the P/K ranks holding this rank's shard, in replica order */
  /* 1: the group's ranks hold the same rows (item-parallel training); 0: a
   * scoring grid (sr_item_grid_init_scoring), whose ranks hold their own
   * rows, which evaluation gathers in the group before scoring them. */
  int rows_shared;
  double comm_seconds; /* time spent in the group's collectives so far (the functions below) */
} sr_item_grid;

/* The part of the data this rank reads (its replica) and the number of parts:
 * (rank / K, P / K). Fails on every rank, naming dist.item_parallel, unless K
 * divides the number of ranks; a single process ignores K: (0, 1). */
int sr_item_grid_data_part(const sr_dist *world, int item_parallel, int *part, int *parts);
/* Builds the grid over `world` (collective: splits two communicators) for a
 * dimension of n_items >= K items. */
int sr_item_grid_init(sr_item_grid *g, const sr_dist *world, int item_parallel, int64_t n_items);
/* A grid for evaluation only (row-sharded two-tower tables): the P ranks of
 * world split the items (group = world, shard = rank) while training stays
 * data-parallel over all of them (replicas = world, n_replicas = 1). */
int sr_item_grid_init_scoring(sr_item_grid *g, const sr_dist *world, int64_t n_items);
void sr_item_grid_free(sr_item_grid *g);
/* [begin, end) of the items of `shard`. */
void sr_item_grid_range(const sr_item_grid *g, int shard, int64_t *begin, int64_t *end);

/* Sums buf (n floats) over the group, in place: the partial products of a
 * layer whose inner dimension is split. */
int sr_item_grid_sum(sr_item_grid *g, float *buf, int64_t n);

/* sr_softmax_nll (nn.h) over rows whose C columns are split among the group:
 * logits (R, C_local) are this rank's columns, targets (R, C_local) its
 * entries of the rows (sr_csr_slice_columns). Writes this rank's dlogits
 * (may alias logits) and sets *loss to the rows' loss / norm, the same on
 * every rank of the group. Collective over the group. */
int sr_item_grid_softmax_nll(sr_item_grid *g, float *dlogits, const float *logits, const sr_csr *targets, int64_t R,
                             float norm, double *loss);

/* The top k items of each of R rows over the whole item dimension, ranked as
 * sr_topk ranks a whole row (higher score first, ties to the lower item id,
 * NaN last), from this rank's scores (R, item_end - item_begin) of its items.
 * Each shard ranks its own items, shard 0 gathers the candidates and merges
 * them: on shard 0 top (R, k) receives item ids, top_scores (R, k) their
 * scores; on the other shards they are not touched. k <= n_items. Collective
 * over the group. */
int sr_item_grid_topk(sr_item_grid *g, const float *scores, int64_t R, int k, int32_t *top, float *top_scores);

#ifdef __cplusplus
}
#endif
#endif

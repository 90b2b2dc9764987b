/* item_parallel.c — the replica x item-shard grid, the group softmax and the
 * group top-K (item_parallel.h). */
#include "shardrec/item_parallel.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dist_internal.h"
#include "shardrec/error.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"
#include "shardrec/metrics.h"
#include "shardrec/nn.h"
#include "shardrec/shard.h"

/* ---- the grid ------------------------------------------------------------------------- */

int sr_item_grid_data_part(const sr_dist *world, int item_parallel, int *part, int *parts) {
  const int K = world->size > 1 ? item_parallel : 1;
  if (K < 1 || world->size % K != 0)
    return SR_FAIL(SR_ECONFIG,
                   "dist.item_parallel: %d does not divide the %d ranks (use a divisor of the rank count)",
                   item_parallel, world->size);
  *part = world->rank / K;
  *parts = world->size / K;
  return SR_OK;
}

static int split(const sr_dist *world, int color, int key, sr_dist *out) {
  MPI_TRY(MPI_Comm_split(world->comm, color, key, &out->comm), "MPI_Comm_split");
  MPI_Comm_set_errhandler(out->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(out->comm, &out->rank);
  MPI_Comm_size(out->comm, &out->size);
  return SR_OK;
}

int sr_item_grid_init(sr_item_grid *g, const sr_dist *world, int item_parallel, int64_t n_items) {
  memset(g, 0, sizeof *g);
  g->group.comm = g->replicas.comm = MPI_COMM_NULL;
  SR_TRY(sr_item_grid_data_part(world, item_parallel, &g->replica, &g->n_replicas));
  g->n_shards = world->size / g->n_replicas;
  g->shard = world->rank % g->n_shards;
  if (n_items < g->n_shards)
    return SR_FAIL(SR_ECONFIG, "dist.item_parallel: %d shards for %lld items", g->n_shards, (long long)n_items);
  g->n_items = n_items;
  sr_item_grid_range(g, g->shard, &g->item_begin, &g->item_end);
  g->rows_shared = 1;
  int rc = split(world, g->replica, g->shard, &g->group);
  if (rc == SR_OK) rc = split(world, g->shard, g->replica, &g->replicas);
  if (rc != SR_OK) sr_item_grid_free(g);
  return rc;
}

int sr_item_grid_init_scoring(sr_item_grid *g, const sr_dist *world, int64_t n_items) {
  memset(g, 0, sizeof *g);
  g->group.comm = g->replicas.comm = MPI_COMM_NULL;
  if (n_items < world->size)
    return SR_FAIL(SR_EINVAL, "%lld items cannot be split over %d ranks", (long long)n_items, world->size);
  g->n_shards = world->size;
  g->shard = world->rank;
  g->n_replicas = 1;
  g->n_items = n_items;
  sr_item_grid_range(g, g->shard, &g->item_begin, &g->item_end);
  int rc = split(world, 0, world->rank, &g->group); /* one color: a copy of world */
  if (rc == SR_OK) rc = split(world, 0, world->rank, &g->replicas);
  if (rc != SR_OK) sr_item_grid_free(g);
  return rc;
}

void sr_item_grid_free(sr_item_grid *g) {
  if (g->group.comm != MPI_COMM_NULL) MPI_Comm_free(&g->group.comm);
  if (g->replicas.comm != MPI_COMM_NULL) MPI_Comm_free(&g->replicas.comm);
}

void sr_item_grid_range(const sr_item_grid *g, int shard, int64_t *begin, int64_t *end) {
  sr_shard_even_range(g->n_items, shard, g->n_shards, begin, end);
}

int sr_item_grid_sum(sr_item_grid *g, float *buf, int64_t n) {
  const double t0 = sr_now();
  const int rc = sr_dist_sum_f32(&g->group, buf, n);
  g->comm_seconds += sr_now() - t0;
  return rc;
}

/* ---- softmax over split rows ----------------------------------------------------------- */

int sr_item_grid_softmax_nll(sr_item_grid *g, float *dlogits, const float *logits, const sr_csr *targets, int64_t R,
                             float norm, double *loss) {
  const int64_t C = targets->n_cols;
  const float inv_norm = 1.0f / norm;
  *loss = 0.0;
  if (R == 0) return SR_OK;
  if (R > INT_MAX / 3) return SR_FAIL(SR_EINVAL, "group softmax of %lld rows exceeds one MPI count", (long long)R);
  sr_softmax_row *rows = sr_malloc((size_t)R * sizeof *rows);
  float *max = sr_malloc((size_t)R * sizeof *max);
  double *sums = sr_malloc((size_t)R * 3 * sizeof *sums); /* per row: sum_exp, sum_x, dot_xl */
  int rc = SR_OK;
  /* The row's max is exact whatever the split, so every rank shifts its
   * exponentials by the same value as one process would. C >= 1: every
   * shard holds at least one item. */
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < R; r++) {
    sr_softmax_target_sums(&rows[r], logits + r * C, targets, r);
    max[r] = sr_max(logits + r * C, C);
  }
  double t0 = sr_now();
  int mpi = MPI_Allreduce(MPI_IN_PLACE, max, (int)R, MPI_FLOAT, MPI_MAX, g->group.comm);
  g->comm_seconds += sr_now() - t0;
  if (mpi != MPI_SUCCESS) rc = sr_mpi_fail(mpi, "all-reduce of the softmax row maxima");
  if (rc == SR_OK) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
      rows[r].max = max[r];
      sums[3 * r] = sr_exp_shifted(dlogits + r * C, logits + r * C, C, max[r]);
      sums[3 * r + 1] = rows[r].sum_x;
      sums[3 * r + 2] = rows[r].dot_xl;
    }
    t0 = sr_now();
    rc = sr_dist_sum_f64(&g->group, sums, (int)(3 * R));
    g->comm_seconds += sr_now() - t0;
  }
  if (rc == SR_OK) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < R; r++) {
      rows[r].sum_exp = sums[3 * r];
      rows[r].sum_x = sums[3 * r + 1];
      rows[r].dot_xl = sums[3 * r + 2];
      sums[3 * r] = sr_softmax_nll_finish_row(dlogits + r * C, C, targets, r, &rows[r], inv_norm); /* row loss */
    }
    /* Summed in row order, as sr_softmax_nll: the total does not depend on threads. */
    double total = 0.0;
    for (int64_t r = 0; r < R; r++) total += sums[3 * r];
    *loss = total / norm;
  }
  free(rows);
  free(max);
  free(sums);
  return rc;
}

/* ---- top-K over split rows ----------------------------------------------------------- */

/* How many candidates shard s contributes per row: its top min(k, its items). */
static int shard_depth(const sr_item_grid *g, int shard, int k) {
  int64_t begin, end;
  sr_item_grid_range(g, shard, &begin, &end);
  return end - begin < k ? (int)(end - begin) : k;
}

/* Shard 0: from the gathered candidates (shard by shard, R rows of depth[s]
 * each) the best k of every row. Concatenating a row's lists in shard order
 * lists equal scores by increasing item id (each list is sorted with ties to
 * the lower id, and shard s's ids are below shard s + 1's), so sr_topk over
 * the concatenation, which breaks ties by position, ranks exactly as it
 * ranks a whole row. */
static void merge_candidates(const sr_item_grid *g, const int32_t *ids, const float *scores, const int *depth,
                             int64_t R, int k, int32_t *top, float *top_scores) {
  int total = 0;
  for (int s = 0; s < g->n_shards; s++) total += depth[s];
  int32_t *row_ids = sr_malloc((size_t)total * sizeof *row_ids), *best = sr_malloc((size_t)k * sizeof *best);
  float *row_scores = sr_malloc((size_t)total * sizeof *row_scores);
  for (int64_t r = 0; r < R; r++) {
    int64_t n = 0, shard_start = 0;
    for (int s = 0; s < g->n_shards; s++) {
      memcpy(row_ids + n, ids + shard_start + r * depth[s], (size_t)depth[s] * sizeof *ids);
      memcpy(row_scores + n, scores + shard_start + r * depth[s], (size_t)depth[s] * sizeof *scores);
      n += depth[s];
      shard_start += R * depth[s];
    }
    sr_topk(best, row_scores, total, k);
    for (int i = 0; i < k; i++) {
      top[r * k + i] = row_ids[best[i]];
      top_scores[r * k + i] = row_scores[best[i]];
    }
  }
  free(row_ids);
  free(best);
  free(row_scores);
}

int sr_item_grid_topk(sr_item_grid *g, const float *scores, int64_t R, int k, int32_t *top, float *top_scores) {
  SR_ASSERT(k >= 1 && k <= g->n_items);
  const int64_t C = g->item_end - g->item_begin;
  const int K = g->n_shards, root = g->shard == 0;
  int64_t total = 0;
  for (int s = 0; s < K; s++) total += R * shard_depth(g, s, k);
  if (total > INT_MAX)
    return SR_FAIL(SR_EINVAL, "top-%d candidates of %lld rows exceed one MPI count", k, (long long)R);
  int *depth = sr_malloc((size_t)K * sizeof *depth), *counts = sr_malloc((size_t)K * sizeof *counts);
  int *displs = sr_malloc((size_t)K * sizeof *displs);
  for (int s = 0, at = 0; s < K; s++) {
    depth[s] = shard_depth(g, s, k);
    counts[s] = (int)(R * depth[s]);
    displs[s] = at;
    at += counts[s];
  }
  /* This shard's candidates, item ids made global. */
  const int mine = depth[g->shard];
  int32_t *local_ids = sr_malloc((size_t)(R * mine > 0 ? R * mine : 1) * sizeof *local_ids);
  float *local_scores = sr_malloc((size_t)(R * mine > 0 ? R * mine : 1) * sizeof *local_scores);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < R; r++) {
    int32_t *ids = local_ids + r * mine;
    sr_topk(ids, scores + r * C, C, mine);
    for (int i = 0; i < mine; i++) {
      local_scores[r * mine + i] = scores[r * C + ids[i]];
      ids[i] += (int32_t)g->item_begin;
    }
  }
  int32_t *all_ids = root ? sr_malloc((size_t)(total > 0 ? total : 1) * sizeof *all_ids) : NULL;
  float *all_scores = root ? sr_malloc((size_t)(total > 0 ? total : 1) * sizeof *all_scores) : NULL;
  int rc = SR_OK;
  const double t0 = sr_now();
  int mpi =
      MPI_Gatherv(local_ids, counts[g->shard], MPI_INT32_T, all_ids, counts, displs, MPI_INT32_T, 0, g->group.comm);
  if (mpi == MPI_SUCCESS)
    mpi = MPI_Gatherv(local_scores, counts[g->shard], MPI_FLOAT, all_scores, counts, displs, MPI_FLOAT, 0,
                      g->group.comm);
  g->comm_seconds += sr_now() - t0;
  if (mpi != MPI_SUCCESS) rc = sr_mpi_fail(mpi, "gather of the shards' top-K candidates");
  if (rc == SR_OK && root) merge_candidates(g, all_ids, all_scores, depth, R, k, top, top_scores);
  free(depth);
  free(counts);
  free(displs);
  free(local_ids);
  free(local_scores);
  free(all_ids);
  free(all_scores);
  return rc;
}

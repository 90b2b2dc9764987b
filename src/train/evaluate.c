/* evaluate.c — model and popularity-baseline evaluation over a split (evaluate.h). */
#include "shardrec/evaluate.h"

#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/exchange.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"
#include "shardrec/watchdog.h"

/* Item parallelism: scores (R, this rank's items). Each shard ranks its own
 * items with the fold-in excluded, the group's shard 0 merges the lists into
 * the ranking of the whole row and counts the users (sums over all ranks then
 * count each user once). An MPI failure ends the job, as one in score() does. */
static void accumulate_item_split(sr_item_grid *g, sr_metrics *m, float *scores, const sr_csr *foldin,
                                  const sr_csr *heldout) {
  const int64_t R = foldin->n_rows;
  sr_csr local;
  sr_csr_slice_columns(foldin, g->item_begin, g->item_end, &local, NULL);
  sr_metrics_exclude_foldin(scores, g->item_end - g->item_begin, &local);
  sr_csr_free(&local);
  const int k = sr_metrics_depth(m, g->n_items);
  int32_t *top = sr_malloc((size_t)(R * k) * sizeof *top);
  float *top_scores = sr_malloc((size_t)(R * k) * sizeof *top_scores);
  if (sr_item_grid_topk(g, scores, R, k, top, top_scores) != SR_OK) SR_DIE("evaluation: %s", sr_error_message());
  for (int64_t r = 0; r < R && g->shard == 0; r++) {
    const int64_t n_heldout = sr_csr_row_len(heldout, r);
    if (n_heldout > 0)
      sr_metrics_add_user(m, top + r * k, top_scores + r * k, k, heldout->indices + heldout->indptr[r], n_heldout);
  }
  free(top);
  free(top_scores);
}

/* Calls fill(ctx, foldin, user_ids, scores) for each batch, then accumulates
 * metrics; `items` (NULL: scores cover every item) as in sr_model. */
typedef void (*score_fn)(void *ctx, const sr_csr *foldin, const int64_t *user_ids, float *scores);

static void evaluate_batches(score_fn fill, void *ctx, int64_t n_items, sr_item_grid *items,
                             const sr_eval_split *split, int64_t row_begin, int64_t row_end, int64_t batch_size,
                             sr_metrics *metrics) {
  int64_t widest = row_end - row_begin < batch_size ? row_end - row_begin : batch_size;
  if (widest <= 0) return;
  const int64_t columns = items ? items->item_end - items->item_begin : n_items;
  float *scores = sr_aligned_calloc((size_t)(widest * columns) * sizeof(float));
  for (int64_t b = row_begin; b < row_end; b += batch_size) {
    int64_t e = b + batch_size < row_end ? b + batch_size : row_end;
    sr_csr foldin, heldout;
    sr_csr_slice_rows(&split->foldin, b, e, &foldin);
    sr_csr_slice_rows(&split->heldout, b, e, &heldout);
    fill(ctx, &foldin, split->user_ids + b, scores);
    if (items)
      accumulate_item_split(items, metrics, scores, &foldin, &heldout);
    else
      sr_metrics_accumulate(metrics, scores, e - b, n_items, &foldin, &heldout);
    sr_csr_free(&foldin);
    sr_csr_free(&heldout);
    sr_watchdog_beat(); /* progress within a long evaluation */
  }
  free(scores);
}

static void score_with_model(void *ctx, const sr_csr *foldin, const int64_t *user_ids, float *scores) {
  sr_model *m = ctx;
  m->ops->score(m, foldin, user_ids, scores);
}

/* A model split over ranks scores collectively (its lookups are exchanges):
 * every rank makes as many score calls, empty ones after its own batches. */
static void score_empty_batches(sr_model *m, int64_t n_batches) {
  int64_t most = n_batches;
  if (sr_dist_max_i64(m->dist, &most, 1) != SR_OK) SR_DIE("%s", sr_error_message());
  sr_csr empty;
  sr_csr_alloc(&empty, 0, m->n_items, 0, 0);
  for (; n_batches < most; n_batches++) m->ops->score(m, &empty, NULL, NULL);
  sr_csr_free(&empty);
}

/* all = rows [row_begin, row_end) of every rank of the group, in rank order:
 * what a scoring grid's ranks score together (each its own items). */
static void gather_split(const sr_dist *group, const sr_eval_split *split, int64_t row_begin, int64_t row_end,
                         sr_eval_split *all) {
  memset(all, 0, sizeof *all);
  sr_csr foldin, heldout;
  sr_csr_slice_rows(&split->foldin, row_begin, row_end, &foldin);
  sr_csr_slice_rows(&split->heldout, row_begin, row_end, &heldout);
  sr_exchange_layout users;
  int rc = sr_exchange_layout_init(&users, group, row_end - row_begin);
  if (rc == SR_OK) {
    all->n_users = all->n_users_total = users.total;
    all->user_ids = sr_malloc((size_t)(users.total > 0 ? users.total : 1) * sizeof *all->user_ids);
    rc = sr_gather_i64(group, &users, split->user_ids + row_begin, all->user_ids);
    sr_exchange_layout_free(&users);
  }
  if (rc == SR_OK) rc = sr_gather_csr_rows(group, &foldin, &all->foldin);
  if (rc == SR_OK) rc = sr_gather_csr_rows(group, &heldout, &all->heldout);
  sr_csr_free(&foldin);
  sr_csr_free(&heldout);
  if (rc != SR_OK) SR_DIE("evaluation: %s", sr_error_message());
}

void sr_evaluate_rows(sr_model *m, const sr_eval_split *split, int64_t row_begin, int64_t row_end, int64_t batch_size,
                      sr_metrics *metrics) {
  metrics->unseen_items_ranked = m->ranks_unseen_items;
  if (m->ops->begin_eval) m->ops->begin_eval(m);
  if (m->items && !m->items->rows_shared) { /* a scoring grid: the group scores every rank's rows */
    sr_eval_split all;
    gather_split(&m->items->group, split, row_begin, row_end, &all);
    evaluate_batches(score_with_model, m, m->n_items, m->items, &all, 0, all.n_users, batch_size, metrics);
    sr_eval_split_free(&all);
    return;
  }
  evaluate_batches(score_with_model, m, m->n_items, m->items, split, row_begin, row_end, batch_size, metrics);
  if (m->dist && sr_params_sharded(&m->params) > 0)
    score_empty_batches(m, row_end > row_begin ? (row_end - row_begin + batch_size - 1) / batch_size : 0);
}

typedef struct {
  const float *popularity;
  int64_t n_items;
} popularity_ctx;

static void score_by_popularity(void *ctx, const sr_csr *foldin, const int64_t *user_ids, float *scores) {
  const popularity_ctx *p = ctx;
  (void)user_ids; /* the same ranking for everyone */
  for (int64_t r = 0; r < foldin->n_rows; r++)
    memcpy(scores + r * p->n_items, p->popularity, (size_t)p->n_items * sizeof(float));
}

void sr_evaluate_popularity(const float *popularity, int64_t n_items, const sr_eval_split *split, int64_t batch_size,
                            sr_metrics *metrics) {
  popularity_ctx ctx = {popularity, n_items};
  metrics->unseen_items_ranked = 0; /* an item without training interactions scores 0 */
  evaluate_batches(score_by_popularity, &ctx, n_items, NULL, split, 0, split->n_users, batch_size, metrics);
}

/* counts (malloc'd, n_cols) = training interactions of each item over the
 * ranks of dist, summed as integers: exact past 2^24 per item. */
static int global_item_counts(const sr_dist *dist, const sr_csr *train_shard, int64_t **counts) {
  const int64_t I = train_shard->n_cols;
  *counts = sr_malloc((size_t)(I > 0 ? I : 1) * sizeof **counts);
  sr_item_counts(*counts, train_shard);
  return sr_dist_sum_i64(dist, *counts, (int)I);
}

int sr_global_popularity(const sr_dist *dist, const sr_csr *train_shard, float *popularity) {
  int64_t *counts;
  int rc = global_item_counts(dist, train_shard, &counts);
  for (int64_t i = 0; rc == SR_OK && i < train_shard->n_cols; i++) popularity[i] = (float)counts[i];
  free(counts);
  return rc;
}

int sr_popularity_slice_map(const sr_dist *dist, const sr_csr *train_shard, const double shares[2],
                            uint8_t *item_slice) {
  int64_t *counts;
  int rc = global_item_counts(dist, train_shard, &counts);
  if (rc == SR_OK) sr_popularity_slices(counts, train_shard->n_cols, shares, item_slice);
  free(counts);
  return rc;
}

void sr_metrics_log_slices(const char *label, const sr_metrics *m) {
  for (int s = 0; s < m->n_slices; s++) {
    if (s == SR_SLICE_COLD && m->slice_items[s] == 0) continue; /* no cold-start items in this data */
    char line[1024];
    sr_metrics_format_slice(m, s, line, sizeof line);
    sr_info("%s %s", label, line);
  }
}

/* The sums and user counts of the whole and of each slice, in one reduction
 * (counts are exact in double: far below 2^53). */
int sr_metrics_reduce(const sr_dist *dist, sr_metrics *m) {
  double sums[(SR_N_SLICES + 1) * (SR_MAX_METRICS + 1)];
  const int width = m->n + 1, n = width * (1 + m->n_slices);
  for (int i = 0; i < m->n; i++) sums[i] = m->sum[i];
  sums[m->n] = (double)m->n_users;
  for (int s = 0; s < m->n_slices; s++) {
    for (int i = 0; i < m->n; i++) sums[width * (s + 1) + i] = m->slice_sum[s][i];
    sums[width * (s + 1) + m->n] = (double)m->slice_users[s];
  }
  SR_TRY(sr_dist_sum_f64(dist, sums, n));
  for (int i = 0; i < m->n; i++) m->sum[i] = sums[i];
  m->n_users = (int64_t)sums[m->n];
  for (int s = 0; s < m->n_slices; s++) {
    for (int i = 0; i < m->n; i++) m->slice_sum[s][i] = sums[width * (s + 1) + i];
    m->slice_users[s] = (int64_t)sums[width * (s + 1) + m->n];
  }
  return SR_OK;
}

/* recommend.c — top-K unseen items per user (recommend.h). */
#include "shardrec/recommend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/mem.h"
#include "shardrec/metrics.h"

const char *const sr_recommend_users_names[] = {"all", "train", "valid", "test", NULL};

/* Per user (original numbering), the number of items over every source. */
static void count_items(const sr_csr *m, const int64_t *user_ids, int64_t *counts) {
  for (int64_t r = 0; r < m->n_rows; r++) counts[user_ids[r]] += sr_csr_row_len(m, r);
}

static void append_items(const sr_csr *m, const int64_t *user_ids, const int64_t *start, int64_t *fill,
                         int32_t *items) {
  for (int64_t r = 0; r < m->n_rows; r++) {
    const int64_t u = user_ids[r], n = sr_csr_row_len(m, r);
    memcpy(items + start[u] + fill[u], m->indices + m->indptr[r], (size_t)n * sizeof *items);
    fill[u] += n;
  }
}

static int compare_i32(const void *a, const void *b) {
  const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* Every user with a row in any split, ascending, with the sorted union of
 * their items (under the weak protocol a user's splits share items). */
static void select_all(const sr_dataset *d, sr_csr *rows, int64_t **user_ids) {
  const int64_t U = d->n_users;
  int64_t *counts = sr_calloc((size_t)U + 1, sizeof *counts), *fill = sr_calloc((size_t)U + 1, sizeof *fill);
  uint8_t *present = sr_calloc((size_t)U + 1, 1);
  const sr_csr *parts[5] = {&d->train, &d->valid.foldin, &d->valid.heldout, &d->test.foldin, &d->test.heldout};
  const int64_t *ids[5] = {d->train_user_ids, d->valid.user_ids, d->valid.user_ids, d->test.user_ids,
                           d->test.user_ids};
  for (int p = 0; p < 5; p++) {
    count_items(parts[p], ids[p], counts);
    for (int64_t r = 0; r < parts[p]->n_rows; r++) present[ids[p][r]] = 1;
  }
  int64_t *start = sr_calloc((size_t)U + 1, sizeof *start), total = 0;
  for (int64_t u = 0; u < U; u++) start[u + 1] = start[u] + counts[u];
  int32_t *items = sr_malloc((size_t)(start[U] > 0 ? start[U] : 1) * sizeof *items);
  for (int p = 0; p < 5; p++) append_items(parts[p], ids[p], start, fill, items);
  int64_t n_users = 0;
  for (int64_t u = 0; u < U; u++) n_users += present[u];
  sr_csr_alloc(rows, n_users, d->n_items, start[U], 0);
  *user_ids = sr_malloc((size_t)(n_users > 0 ? n_users : 1) * sizeof **user_ids);
  int64_t r = 0;
  for (int64_t u = 0; u < U; u++) {
    if (!present[u]) continue;
    int32_t *own = items + start[u];
    qsort(own, (size_t)counts[u], sizeof *own, compare_i32);
    for (int64_t k = 0; k < counts[u]; k++)
      if (k == 0 || own[k] != own[k - 1]) rows->indices[total++] = own[k];
    (*user_ids)[r++] = u;
    rows->indptr[r] = total;
  }
  rows->nnz = total;
  free(counts);
  free(fill);
  free(present);
  free(start);
  free(items);
}

void sr_recommend_select(const sr_dataset *d, sr_recommend_users which, sr_csr *rows, int64_t **user_ids) {
  if (which == SR_RECOMMEND_ALL) {
    select_all(d, rows, user_ids);
    return;
  }
  const sr_csr *m = which == SR_RECOMMEND_TRAIN   ? &d->train
                    : which == SR_RECOMMEND_VALID ? &d->valid.foldin
                                                  : &d->test.foldin;
  const int64_t *ids = which == SR_RECOMMEND_TRAIN   ? d->train_user_ids
                       : which == SR_RECOMMEND_VALID ? d->valid.user_ids
                                                     : d->test.user_ids;
  sr_csr_slice_rows(m, 0, m->n_rows, rows);
  *user_ids = sr_malloc((size_t)(m->n_rows > 0 ? m->n_rows : 1) * sizeof **user_ids);
  memcpy(*user_ids, ids, (size_t)m->n_rows * sizeof **user_ids);
}

void sr_recommend(sr_model *m, const sr_csr *rows, const int64_t *user_ids, int k, int64_t batch, int32_t *items,
                  float *scores) {
  SR_ASSERT(!m->items && k >= 1 && k <= m->n_items && batch >= 1);
  const int64_t I = m->n_items, widest = rows->n_rows < batch ? rows->n_rows : batch;
  if (widest == 0) return;
  float *all = sr_aligned_calloc((size_t)(widest * I) * sizeof(float));
  if (m->ops->begin_eval) m->ops->begin_eval(m);
  for (int64_t b = 0; b < rows->n_rows; b += batch) {
    const int64_t e = b + batch < rows->n_rows ? b + batch : rows->n_rows;
    sr_csr part;
    sr_csr_slice_rows(rows, b, e, &part);
    m->ops->score(m, &part, user_ids + b, all);
    sr_metrics_exclude_foldin(all, I, &part);
    for (int64_t r = 0; r < e - b; r++) {
      int32_t *top = items + (b + r) * k;
      float *top_scores = scores + (b + r) * k;
      sr_topk(top, all + r * I, I, k);
      for (int i = 0; i < k; i++) {
        top_scores[i] = all[r * I + top[i]];
        if (!(top_scores[i] > -INFINITY)) top[i] = -1, top_scores[i] = -INFINITY; /* excluded (or NaN) */
      }
    }
    sr_csr_free(&part);
  }
  free(all);
}

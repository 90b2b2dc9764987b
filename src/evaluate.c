/* evaluate.c — model and popularity-baseline evaluation over a split (evaluate.h). */
#include "shardrec/evaluate.h"

#include <stdlib.h>
#include <string.h>

#include "shardrec/mem.h"

/* Calls fill(ctx, foldin, scores) for each batch, then accumulates metrics. */
typedef void (*score_fn)(void *ctx, const sr_csr *foldin, float *scores);

static void evaluate_batches(score_fn fill, void *ctx, int64_t n_items, const sr_eval_split *split,
                             int64_t row_begin, int64_t row_end, int64_t batch_size, sr_metrics *metrics) {
  int64_t widest = row_end - row_begin < batch_size ? row_end - row_begin : batch_size;
  if (widest <= 0) return;
  float *scores = sr_aligned_calloc((size_t)(widest * n_items) * sizeof(float));
  for (int64_t b = row_begin; b < row_end; b += batch_size) {
    int64_t e = b + batch_size < row_end ? b + batch_size : row_end;
    sr_csr foldin, heldout;
    sr_csr_slice_rows(&split->foldin, b, e, &foldin);
    sr_csr_slice_rows(&split->heldout, b, e, &heldout);
    fill(ctx, &foldin, scores);
    sr_metrics_accumulate(metrics, scores, e - b, n_items, &foldin, &heldout);
    sr_csr_free(&foldin);
    sr_csr_free(&heldout);
  }
  free(scores);
}

static void score_with_model(void *ctx, const sr_csr *foldin, float *scores) {
  sr_model *m = ctx;
  m->ops->score(m, foldin, scores);
}

void sr_evaluate_rows(sr_model *m, const sr_eval_split *split, int64_t row_begin, int64_t row_end,
                      int64_t batch_size, sr_metrics *metrics) {
  evaluate_batches(score_with_model, m, m->n_items, split, row_begin, row_end, batch_size, metrics);
}

typedef struct {
  const float *popularity;
  int64_t n_items;
} popularity_ctx;

static void score_by_popularity(void *ctx, const sr_csr *foldin, float *scores) {
  const popularity_ctx *p = ctx;
  for (int64_t r = 0; r < foldin->n_rows; r++)
    memcpy(scores + r * p->n_items, p->popularity, (size_t)p->n_items * sizeof(float));
}

void sr_evaluate_popularity(const sr_csr *train, const sr_eval_split *split, int64_t batch_size,
                            sr_metrics *metrics) {
  popularity_ctx ctx = {sr_malloc((size_t)train->n_cols * sizeof(float)), train->n_cols};
  sr_popularity_scores((float *)ctx.popularity, train);
  evaluate_batches(score_by_popularity, &ctx, train->n_cols, split, 0, split->n_users, batch_size, metrics);
  free((float *)ctx.popularity);
}

/*
 * evaluate.h — running a model over an evaluation split (fold-in rows in,
 * held-out rows ranked) and accumulating ranking metrics (metrics.h).
 */
#ifndef SHARDREC_EVALUATE_H
#define SHARDREC_EVALUATE_H

#include <stdint.h>

#include "shardrec/dataset.h"
#include "shardrec/dist.h"
#include "shardrec/metrics.h"
#include "shardrec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Scores rows [row_begin, row_end) of the split in batches of batch_size and
 * adds their metrics to `metrics` (sums; call sr_metrics_reset first).
 * Collective over m->dist when the model has sharded parameters (every rank
 * calls it, whatever rows it holds). With item parallelism (m->items) the
 * group's ranks hold the same rows, and only its shard 0 adds them (model.h). */
void sr_evaluate_rows(sr_model *m, const sr_eval_split *split, int64_t row_begin, int64_t row_end, int64_t batch_size,
                      sr_metrics *metrics);
/* The most-popular-items baseline: every user gets popularity (n_items) as
 * scores (fold-in items excluded as for a model). */
void sr_evaluate_popularity(const float *popularity, int64_t n_items, const sr_eval_split *split, int64_t batch_size,
                            sr_metrics *metrics);
/* Item popularity over the whole training split: counts of this rank's rows
 * summed over ranks. popularity: n_items. */
int sr_global_popularity(const sr_dist *dist, const sr_csr *train_shard, float *popularity);
/* item_slice (n_items) = the popularity slice of every item (metrics.h,
 * sr_popularity_slices) by its interactions in the whole training split:
 * counts of this rank's rows summed over the ranks of `dist` (pass the
 * replicas with item parallelism, whose groups hold the same rows). */
int sr_popularity_slice_map(const sr_dist *dist, const sr_csr *train_shard, const double shares[2],
                            uint8_t *item_slice);
/* Logs (sr_info) each slice of m that has items, each line prefixed by `label`. */
void sr_metrics_log_slices(const char *label, const sr_metrics *m);
/* Adds the metric sums and user counts of all ranks (in place), slices included. */
int sr_metrics_reduce(const sr_dist *dist, sr_metrics *m);

#ifdef __cplusplus
}
#endif
#endif

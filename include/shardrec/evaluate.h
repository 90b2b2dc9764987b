/*
 * evaluate.h — running a model over an evaluation split (fold-in rows in,
 * held-out rows ranked) and accumulating ranking metrics (metrics.h).
 */
#ifndef SHARDREC_EVALUATE_H
#define SHARDREC_EVALUATE_H

#include <stdint.h>

#include "shardrec/dataset.h"
#include "shardrec/metrics.h"
#include "shardrec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Scores rows [row_begin, row_end) of the split in batches of batch_size and
 * adds their metrics to `metrics` (sums; call sr_metrics_reset first). */
void sr_evaluate_rows(sr_model *m, const sr_eval_split *split, int64_t row_begin, int64_t row_end,
                      int64_t batch_size, sr_metrics *metrics);
/* The most-popular-items baseline: every user gets the item popularity of
 * `train` as scores (fold-in items excluded as for a model). */
void sr_evaluate_popularity(const sr_csr *train, const sr_eval_split *split, int64_t batch_size,
                            sr_metrics *metrics);

#ifdef __cplusplus
}
#endif
#endif

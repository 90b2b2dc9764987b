/*
 * train.h — the training loop: epochs of shuffled global batches, optimizer
 * steps, progress and validation lines, JSONL metrics, best-validation model
 * selection, final test evaluation.
 */
#ifndef SHARDREC_TRAIN_H
#define SHARDREC_TRAIN_H

#include <stdint.h>

#include "shardrec/config.h"
#include "shardrec/dataset.h"
#include "shardrec/dist.h"
#include "shardrec/metrics.h"
#include "shardrec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int64_t steps; /* optimizer updates */
  int epochs_completed;
  double train_seconds;          /* time in training steps (excludes evaluation) */
  double train_cpu_seconds;      /* CPU time of this process in this run's training steps (sr_cpu_seconds) */
  sr_sample_unit sample_unit;    /* what a training sample is for this model */
  double samples_per_s;          /* users (autoencoders) or (user, item) pairs (two-tower) per second */
  double allreduce_seconds;      /* dense gradient communication, summed (grad_reduce.h total_seconds) */
  double allreduce_wait_seconds; /* of which blocked after backward (not overlapped) */
  /* Dense gradient elements reduced, summed over steps, and as many as
   * whole buckets would have been (they differ by the untouched rows, grad_reduce.h). */
  int64_t reduced_elements, dense_elements;
  double last_loss;              /* loss of the last batch */
  double grad_norm;              /* global gradient norm of the last step, before clipping (train.clip_grad_norm) */
  const char *stop_reason;       /* epochs, max_steps, time_limit, signal, early_stopping or fitted (closed form)
                                    (metrics.jsonl "stop") */
  int best_epoch;                /* epoch (1-based) whose validation selected the model */
  int64_t best_step;             /* optimizer step of that validation (-1: unknown, resumed from an old checkpoint) */
  sr_metrics best_valid;         /* validation metrics of the selected model */
  sr_metrics test;               /* test metrics of the selected model */
  sr_metrics test_popularity;
} sr_train_result;

/* Trains cfg's model data-parallel over `dist`: `data` holds this rank's
 * shard (sr_dataset_read_shard), with dist.item_parallel part `replica` of
 * `replicas` (sr_item_grid_data_part: the ranks of a group hold the same
 * shard); every rank runs the same steps on a global batch order that does
 * not depend on the number of ranks. Refuses (SR_ENOMEM) a run whose ranks
 * would need more memory than their node has (memory_plan.h). When run_dir is
 * non-NULL, rank 0 appends records to run_dir/metrics.jsonl (run_log.h,
 * docs/metrics.md); a failed write fails the run (SR_EIO). On success
 * *model_out (if non-NULL) receives the selected model (best validation),
 * identical on every rank, which the caller destroys. */
int sr_train(const sr_config *cfg, const sr_dist *dist, const sr_dataset *data, const char *run_dir,
             sr_model **model_out, sr_train_result *result);

#ifdef __cplusplus
}
#endif
#endif

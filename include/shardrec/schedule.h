/*
 * schedule.h — the learning-rate schedule (train.lr_schedule, docs/config.md).
 *
 * The rate of an update is a function of the optimizer's step count (the
 * updates applied before it, which checkpoints keep: the schedule's position)
 * and of the run's planned length, train.epochs x steps per epoch. Neither
 * depends on the number of ranks (the batch is global), nor on the limits
 * that may cut a run short (train.max_steps, train.time_limit_s, early
 * stopping, signals), so a run stopped and resumed follows the schedule of
 * the uninterrupted one.
 *
 * With W = train.warmup_steps and T the planned steps, update s (from 0) uses
 *   s < W:        lr * (s + 1) / W                         (linear warm-up)
 *   constant:     lr
 *   linear:       lr * (1 - p),                p = (s - W) / (T - W), in [0, 1]
 *   cosine:       lr * (1 + cos(pi p)) / 2
 *   step:         lr * factor^(milestones <= s)
 * The step schedule ignores the warm-up's end: its milestones count from 0.
 */
#ifndef SHARDREC_SCHEDULE_H
#define SHARDREC_SCHEDULE_H

#include <stdint.h>

#include "shardrec/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The learning rate of update `step` (0-based) of a run of `planned_steps`
 * updates under cfg->train's schedule. */
double sr_lr_at(const sr_config *cfg, int64_t step, int64_t planned_steps);

#ifdef __cplusplus
}
#endif
#endif

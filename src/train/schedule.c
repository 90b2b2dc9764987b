/* schedule.c — the learning-rate schedule (schedule.h). */
#include "shardrec/schedule.h"

#include <math.h>

double sr_lr_at(const sr_config *cfg, int64_t step, int64_t planned_steps) {
  const double lr = cfg->train.lr;
  const int64_t W = cfg->train.warmup_steps;
  if (step < W) return lr * (double)(step + 1) / (double)W;
  double p = planned_steps > W ? (double)(step - W) / (double)(planned_steps - W) : 1.0;
  if (p > 1.0) p = 1.0;
  switch ((sr_lr_schedule_kind)cfg->train.lr_schedule) {
    case SR_LR_CONSTANT:
      return lr;
    case SR_LR_LINEAR:
      return lr * (1.0 - p);
    case SR_LR_COSINE:
      return lr * 0.5 * (1.0 + cos(M_PI * p));
    case SR_LR_STEP: {
      double rate = lr;
      for (int i = 0; i < cfg->train.n_lr_milestones && cfg->train.lr_milestones[i] <= step; i++)
        rate *= cfg->train.lr_factor;
      return rate;
    }
  }
  return lr;
}

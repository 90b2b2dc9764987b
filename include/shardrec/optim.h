/*
 * optim.h — Adam (Kingma & Ba) and AdamW (Loshchilov & Hutter) over the
 * parameter registry.
 *
 * Adam's weight_decay is the classic coupled L2 term (g += wd * theta, as in
 * torch.optim.Adam); AdamW decays decoupled (theta -= lr * wd * theta).
 * Either decays only SR_PARAM_WEIGHT and SR_PARAM_EMBEDDING tensors.
 */
#ifndef SHARDREC_OPTIM_H
#define SHARDREC_OPTIM_H

#include <stdint.h>

#include "shardrec/params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SR_OPTIM_ADAM = 0, SR_OPTIM_ADAMW = 1 } sr_optim_kind;

typedef struct {
  sr_optim_kind kind;
  float lr, beta1, beta2, eps, weight_decay;
  int64_t step; /* number of updates applied so far (Adam's t after the update) */
} sr_optim;

/* Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0. */
void sr_optim_init(sr_optim *o, sr_optim_kind kind);
/* One update of every parameter from its gradient; increments o->step. The
 * gradients are consumed: they are zero afterwards, ready for the next
 * backward pass (saving a separate pass over the arena). Returns the number
 * of non-finite gradient elements met (the parameters are then unusable: the
 * caller stops training). */
int64_t sr_optim_step(sr_optim *o, sr_params *ps);

/* An element range [begin, end) of the registry's arenas. */
typedef struct {
  int64_t begin, end;
} sr_arena_range;

/* The same step, updating only the elements inside `ranges` (a sharded
 * optimizer: each rank updates the slices it owns, grad_reduce.h). */
int64_t sr_optim_step_ranges(sr_optim *o, sr_params *ps, const sr_arena_range *ranges, int n_ranges);

#ifdef __cplusplus
}
#endif
#endif

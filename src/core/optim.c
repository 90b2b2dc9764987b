/* optim.c — Adam and AdamW over the parameter registry (optim.h). */
#include "shardrec/optim.h"

#include <math.h>

void sr_optim_init(sr_optim *o, sr_optim_kind kind) {
  o->kind = kind;
  o->lr = 1e-3f;
  o->beta1 = 0.9f;
  o->beta2 = 0.999f;
  o->eps = 1e-8f;
  o->weight_decay = 0.0f;
  o->step = 0;
}

int64_t sr_optim_step(sr_optim *o, sr_params *ps) {
  const sr_arena_range all = {0, ps->dense_total};
  return sr_optim_step_ranges(o, ps, &all, 1);
}

int64_t sr_optim_step_ranges(sr_optim *o, sr_params *ps, const sr_arena_range *ranges, int n_ranges) {
  o->step++;
  /* Bias corrections in double: beta^t underflows gracefully and stays exact
   * for the small t where it matters. */
  const float bc1 = (float)(1.0 - pow((double)o->beta1, (double)o->step));
  const float bc2 = (float)(1.0 - pow((double)o->beta2, (double)o->step));
  const float b1 = o->beta1, b2 = o->beta2, lr = o->lr, eps = o->eps;
  int64_t non_finite = 0;
  for (int r = 0; r < n_ranges; r++) {
    for (int i = 0; i < ps->n_dense; i++) { /* the sparse tail has its own updates (embedding.h) */
      sr_param *p = &ps->items[i];
      /* The part of this tensor inside the range (elements lo..hi of it). */
      int64_t lo = ranges[r].begin - p->offset, hi = ranges[r].end - p->offset;
      if (lo < 0) lo = 0;
      if (hi > p->numel) hi = p->numel;
      if (lo >= hi) continue;
      const float wd = p->kind == SR_PARAM_BIAS ? 0.0f : o->weight_decay;
      const float coupled_wd = o->kind == SR_OPTIM_ADAM ? wd : 0.0f;
      const float decoupled_decay = o->kind == SR_OPTIM_ADAMW ? 1.0f - lr * wd : 1.0f;
      float *restrict w = p->value, *restrict m = p->adam_m, *restrict v = p->adam_v, *restrict g = p->grad;
      /* Memory-bound (7 streams): both cores help. Elements are independent,
       * so the result depends neither on the thread count nor on how the
       * arena is cut into ranges. */
#pragma omp parallel for simd schedule(static) reduction(+ : non_finite)
      for (int64_t j = lo; j < hi; j++) {
        non_finite += !isfinite(g[j]); /* checked here, in the pass that reads g anyway */
        float gj = g[j] + coupled_wd * w[j];
        g[j] = 0.0f; /* consumed: saves the separate zeroing pass over the arena */
        m[j] = b1 * m[j] + (1.0f - b1) * gj;
        v[j] = b2 * v[j] + (1.0f - b2) * gj * gj;
        float mhat = m[j] / bc1, vhat = v[j] / bc2;
        w[j] = w[j] * decoupled_decay - lr * mhat / (sqrtf(vhat) + eps);
      }
    }
  }
  return non_finite;
}

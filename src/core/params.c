/* params.c — the parameter registry and initialisers (params.h). */
#include "shardrec/params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/mem.h"
#include "shardrec/rng.h"

void sr_params_init(sr_params *ps) { memset(ps, 0, sizeof *ps); }

int sr_params_add(sr_params *ps, const char *name, sr_param_kind kind, int ndim, const int64_t *shape) {
  SR_ASSERT(!ps->finalized);
  SR_ASSERT(ndim >= 1 && ndim <= SR_PARAM_MAX_DIM);
  SR_ASSERT(strlen(name) < SR_PARAM_NAME_MAX);
  if (sr_params_find(ps, name)) SR_DIE("parameter '%s' registered twice", name);
  sr_grow(&ps->items, &ps->cap, (size_t)ps->count + 1);
  sr_param *p = &ps->items[ps->count];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  p->kind = kind;
  p->ndim = ndim;
  p->numel = 1;
  for (int d = 0; d < ndim; d++) {
    SR_ASSERT(shape[d] >= 1);
    p->shape[d] = shape[d];
    p->numel *= shape[d];
  }
  /* Each tensor starts on a 16-float (64-byte) boundary so kernels see aligned rows. */
  p->offset = (ps->total + 15) / 16 * 16;
  ps->total = p->offset + p->numel;
  return ps->count++;
}

void sr_params_finalize_sparse_tail(sr_params *ps, int n_dense) {
  SR_ASSERT(!ps->finalized && n_dense >= 0 && n_dense <= ps->count);
  ps->n_dense = n_dense;
  ps->dense_total = n_dense == ps->count ? ps->total : ps->items[n_dense].offset;
  size_t bytes = (size_t)(ps->total > 0 ? ps->total : 1) * sizeof(float);
  ps->values = sr_aligned_calloc(bytes);
  ps->grads = sr_aligned_calloc((size_t)(ps->dense_total > 0 ? ps->dense_total : 1) * sizeof(float));
  ps->adam_m = sr_aligned_calloc(bytes);
  ps->adam_v = sr_aligned_calloc(bytes);
  for (int i = 0; i < ps->count; i++) {
    sr_param *p = &ps->items[i];
    p->value = ps->values + p->offset;
    p->grad = i < n_dense ? ps->grads + p->offset : NULL;
    p->adam_m = ps->adam_m + p->offset;
    p->adam_v = ps->adam_v + p->offset;
  }
  ps->finalized = 1;
}

void sr_params_finalize(sr_params *ps) { sr_params_finalize_sparse_tail(ps, ps->count); }

void sr_params_free(sr_params *ps) {
  free(ps->items);
  free(ps->values);
  free(ps->grads);
  free(ps->adam_m);
  free(ps->adam_v);
  memset(ps, 0, sizeof *ps);
}

sr_param *sr_params_find(sr_params *ps, const char *name) {
  for (int i = 0; i < ps->count; i++)
    if (strcmp(ps->items[i].name, name) == 0) return &ps->items[i];
  return NULL;
}

void sr_params_zero_grad(sr_params *ps) { memset(ps->grads, 0, (size_t)ps->dense_total * sizeof(float)); }

void sr_params_copy_values(sr_params *dst, const sr_params *src) {
  SR_ASSERT(dst->total == src->total && dst->count == src->count);
  memcpy(dst->values, src->values, (size_t)src->total * sizeof(float));
}

double sr_params_grad_sq_norm(const sr_params *ps) {
  double s = 0.0;
  for (int i = 0; i < ps->n_dense; i++) {
    const sr_param *p = &ps->items[i];
    for (int64_t j = 0; j < p->numel; j++) s += (double)p->grad[j] * p->grad[j];
  }
  return s;
}

void sr_param_format_shape(const sr_param *p, char *buf, int bufsize) {
  SR_ASSERT(bufsize >= 1);
  buf[0] = '\0';
  int used = 0;
  for (int d = 0; d < p->ndim && used < bufsize; d++)
    used += snprintf(buf + used, (size_t)(bufsize - used), "%s%lld", d ? " x " : "", (long long)p->shape[d]);
}

void sr_param_init_xavier_uniform(sr_params *ps, int index, uint64_t seed, int64_t fan_in, int64_t fan_out) {
  sr_param *p = &ps->items[index];
  float limit = sqrtf(6.0f / (float)(fan_in + fan_out));
  sr_rng r;
  sr_rng_init(&r, seed, SR_RNG_INIT, 0, (uint64_t)index);
  for (int64_t j = 0; j < p->numel; j++) p->value[j] = (2.0f * sr_rng_uniform(&r) - 1.0f) * limit;
}

void sr_param_init_truncated_normal(sr_params *ps, int index, uint64_t seed, float std) {
  sr_param *p = &ps->items[index];
  sr_rng r;
  sr_rng_init(&r, seed, SR_RNG_INIT, 0, (uint64_t)index);
  for (int64_t j = 0; j < p->numel; j++) {
    float x;
    do x = sr_rng_normal(&r);
    while (fabsf(x) > 2.0f);
    p->value[j] = x * std;
  }
}

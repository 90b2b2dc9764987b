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
  p->shard.dim = -1;
  ps->total = p->offset + p->numel;
  return ps->count++;
}

/* The arenas are untouched until written (mem.h): a model is sized by the
 * memory check before its gradients and moments take any memory. */
static size_t arena_bytes(int64_t floats) { return (size_t)(floats > 0 ? floats : 1) * sizeof(float); }

void sr_params_finalize_sparse_tail(sr_params *ps, int n_dense) {
  SR_ASSERT(!ps->finalized && n_dense >= 0 && n_dense <= ps->count);
  ps->n_dense = n_dense;
  ps->dense_total = n_dense == ps->count ? ps->total : ps->items[n_dense].offset;
  ps->values = sr_lazy_calloc(arena_bytes(ps->total));
  ps->grads = sr_lazy_calloc(arena_bytes(ps->dense_total));
  ps->adam_m = sr_lazy_calloc(arena_bytes(ps->total));
  ps->adam_v = sr_lazy_calloc(arena_bytes(ps->total));
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
  for (int i = 0; i < ps->count; i++) free(ps->items[i].touched_rows);
  free(ps->items);
  sr_lazy_free(ps->values, arena_bytes(ps->total));
  sr_lazy_free(ps->grads, arena_bytes(ps->dense_total));
  sr_lazy_free(ps->adam_m, arena_bytes(ps->total));
  sr_lazy_free(ps->adam_v, arena_bytes(ps->total));
  memset(ps, 0, sizeof *ps);
}

void sr_params_set_row_sparse(sr_params *ps, int index) {
  SR_ASSERT(index >= 0 && index < ps->count && !ps->items[index].touched_rows);
  ps->items[index].touched_rows = sr_calloc((size_t)ps->items[index].shape[0], 1);
}

void sr_params_set_shard(sr_params *ps, int index, int dim, int64_t begin, int64_t full) {
  SR_ASSERT(!ps->finalized && index >= 0 && index < ps->count);
  sr_param *p = &ps->items[index];
  SR_ASSERT(dim >= 0 && dim < p->ndim && begin >= 0 && begin + p->shape[dim] <= full);
  p->shard = (sr_param_shard){dim, begin, full};
}

void sr_param_full_shape(const sr_param *p, int64_t shape[SR_PARAM_MAX_DIM]) {
  for (int d = 0; d < p->ndim; d++) shape[d] = d == p->shard.dim ? p->shard.full : p->shape[d];
}

int sr_params_sharded(const sr_params *ps) {
  int n = 0;
  for (int i = 0; i < ps->count; i++) n += ps->items[i].shard.dim >= 0;
  return n;
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

/* Fills p with its part of the stream that initialises the whole tensor in
 * row-major order: the whole tensor is (outer, full, inner) around the split
 * dimension and this rank's part is, in each of the `outer` blocks, the
 * elements [begin * inner, (begin + local) * inner). Draws before each part
 * are skipped: in O(1) when every value takes one 32-bit draw, else by
 * drawing them (rejection sampling consumes a variable number). */
static void fill_slice(sr_param *p, sr_rng *r, float (*draw)(sr_rng *r, float scale), float scale,
                       int one_draw_each) {
  int64_t outer = 1, inner = 1, full = p->numel, local = p->numel, begin = 0;
  if (p->shard.dim >= 0) {
    for (int d = 0; d < p->shard.dim; d++) outer *= p->shape[d];
    for (int d = p->shard.dim + 1; d < p->ndim; d++) inner *= p->shape[d];
    full = p->shard.full;
    local = p->shape[p->shard.dim];
    begin = p->shard.begin;
  }
  float *out = p->value;
  int64_t drawn = 0; /* values of the whole tensor's stream consumed so far */
  for (int64_t o = 0; o < outer; o++) {
    const int64_t part = (o * full + begin) * inner;
    if (one_draw_each)
      sr_rng_skip(r, (uint64_t)(part - drawn));
    else
      for (int64_t k = drawn; k < part; k++) draw(r, scale);
    for (int64_t k = 0; k < local * inner; k++) *out++ = draw(r, scale);
    drawn = part + local * inner;
  }
}

static float draw_symmetric_uniform(sr_rng *r, float limit) { return (2.0f * sr_rng_uniform(r) - 1.0f) * limit; }

/* N(0, std^2) truncated to +-2 std by re-drawing. */
static float draw_truncated_normal(sr_rng *r, float std) {
  float x;
  do x = sr_rng_normal(r);
  while (fabsf(x) > 2.0f);
  return x * std;
}

void sr_param_init_xavier_uniform(sr_params *ps, int index, uint64_t seed, int64_t fan_in, int64_t fan_out) {
  sr_rng r;
  sr_rng_init(&r, seed, SR_RNG_INIT, 0, (uint64_t)index);
  fill_slice(&ps->items[index], &r, draw_symmetric_uniform, sqrtf(6.0f / (float)(fan_in + fan_out)), 1);
}

void sr_param_init_truncated_normal(sr_params *ps, int index, uint64_t seed, float std) {
  sr_rng r;
  sr_rng_init(&r, seed, SR_RNG_INIT, 0, (uint64_t)index);
  fill_slice(&ps->items[index], &r, draw_truncated_normal, std, 0);
}

/*
 * params.h — the parameter registry.
 *
 * A model registers its tensors by name and shape; sr_params_finalize() then
 * lays out values, gradients and the two Adam moments in four flat arenas, in
 * registration order. Everything that works on "all parameters" walks this
 * registry: the optimizer, gradient all-reduce (which fuses contiguous slices
 * of the gradient arena into buckets, no copies), checkpoints and merging
 * (which match tensors by name and shape).
 */
#ifndef SHARDREC_PARAMS_H
#define SHARDREC_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SR_PARAM_NAME_MAX 64
#define SR_PARAM_MAX_DIM 4

typedef enum {
  SR_PARAM_WEIGHT = 0,    /* dense matrix; weight decay applies */
  SR_PARAM_BIAS = 1,      /* vector; no weight decay */
  SR_PARAM_EMBEDDING = 2, /* embedding table; weight decay applies */
} sr_param_kind;

/* A tensor split across ranks along one dimension (model parallelism): this
 * rank holds [begin, begin + shape[dim]) of a dimension whose extent in the
 * whole tensor is `full`; the registered shape is the local one. Ranks that
 * hold the same slice are replicas. Checkpoints store whole tensors
 * (checkpoint.h), so how a tensor was split never reaches a file. */
typedef struct {
  int dim; /* the split dimension; -1: the whole tensor on every rank */
  int64_t begin, full;
} sr_param_shard;

typedef struct {
  char name[SR_PARAM_NAME_MAX]; /* e.g. "encoder.0.weight" */
  sr_param_kind kind;
  int ndim;
  int64_t shape[SR_PARAM_MAX_DIM];
  int64_t numel;
  int64_t offset; /* element offset into the arenas */
  sr_param_shard shard;
  /* A row-sparse gradient (sr_params_set_row_sparse), or NULL: before it
   * reports the parameter's gradient ready, the model sets touched_rows[r]
   * (r < shape[0]) to 1 for every row its batch may have given a nonzero
   * gradient and to 0 for the others, whose gradient it left at zero. The
   * gradient reducer then exchanges the touched rows only (grad_reduce.h). */
  uint8_t *touched_rows;
  /* Views into the arenas, valid after sr_params_finalize(). grad is NULL
   * for a parameter of the sparse tail (no dense gradient). */
  float *value, *grad, *adam_m, *adam_v;
} sr_param;

typedef struct {
  sr_param *items;
  int count;
  size_t cap;    /* items allocated */
  int64_t total; /* elements over all parameters */
  /* Parameters [0, n_dense) have dense gradients, in the grads arena's first
   * dense_total elements; the rest (embedding tables updated from sparse
   * gradients, embedding.h) have none, which saves a table-sized buffer. */
  int n_dense;
  int64_t dense_total;
  float *values, *grads, *adam_m, *adam_v;
  int finalized;
} sr_params;

void sr_params_init(sr_params *ps);
/* Registers a tensor; returns its index. Names must be unique (aborts otherwise:
 * a duplicate is a programming error). Shape dims must be >= 1. */
int sr_params_add(sr_params *ps, const char *name, sr_param_kind kind, int ndim, const int64_t *shape);
/* Allocates the zeroed arenas and sets every parameter's views; every
 * parameter has a dense gradient. */
void sr_params_finalize(sr_params *ps);
/* The same, but only parameters [0, n_dense) get a dense gradient: those
 * registered after them form the sparse tail (grad NULL). */
void sr_params_finalize_sparse_tail(sr_params *ps, int n_dense);
void sr_params_free(sr_params *ps);

/* Declares the registered (not yet finalized) parameter `index` a slice along
 * `dim`: this rank holds [begin, begin + shape[dim]) of an extent `full`. */
void sr_params_set_shard(sr_params *ps, int index, int dim, int64_t begin, int64_t full);
/* Gives parameter `index` a touched_rows array (see sr_param): a layer over
 * items, whose gradient a batch leaves zero outside the items it holds. */
void sr_params_set_row_sparse(sr_params *ps, int index);
/* The whole tensor's shape (the registered shape unless sharded). */
void sr_param_full_shape(const sr_param *p, int64_t shape[SR_PARAM_MAX_DIM]);
/* How many parameters are sharded. */
int sr_params_sharded(const sr_params *ps);

sr_param *sr_params_find(sr_params *ps, const char *name); /* NULL if absent */
void sr_params_zero_grad(sr_params *ps);
/* Copies values only (same registry layout required). */
void sr_params_copy_values(sr_params *dst, const sr_params *src);
/* Sum of squares of all dense gradients (for logging and NaN checks). */
double sr_params_grad_sq_norm(const sr_params *ps);
/* Writes the shape as "400 x 600" (the form error messages use) into buf. */
void sr_param_format_shape(const sr_param *p, char *buf, int bufsize);

/* Initialisers. Draws are keyed by (seed, SR_RNG_INIT, param index), so the
 * same registry initialises identically on every rank. A sharded parameter
 * receives exactly its slice of what the whole tensor would: a model split
 * over ranks starts as the slices of the unsplit one. fan_in / fan_out are
 * those of the whole tensor. */
void sr_param_init_xavier_uniform(sr_params *ps, int index, uint64_t seed, int64_t fan_in, int64_t fan_out);
/* N(0, std^2) truncated to +-2 std (re-drawn), as TensorFlow's truncated_normal. */
void sr_param_init_truncated_normal(sr_params *ps, int index, uint64_t seed, float std);

#ifdef __cplusplus
}
#endif
#endif

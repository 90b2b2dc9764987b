/*
 * memory_plan.h — what training holds in memory on each rank, reported
 * before the first step and checked against what each rank may use, so that
 * a run too large for its ranks stops at once with what to change instead of
 * being killed by the kernel hours later.
 *
 * Generic over the parameter registry (params.h: the values, dense
 * gradients and Adam moments arenas) plus the model's activation buffers
 * (sr_model_ops.activation_bytes) and the evaluation score matrix.
 */
#ifndef SHARDREC_MEMORY_PLAN_H
#define SHARDREC_MEMORY_PLAN_H

#include <stdint.h>

#include "shardrec/dist.h"
#include "shardrec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes one rank holds, by kind. */
typedef struct {
  int64_t parameters;  /* the values arena and the trainer's best-validation copy of it */
  int64_t gradients;   /* the dense gradients arena */
  int64_t optimizer;   /* Adam's two moments */
  int64_t activations; /* the model's buffers and the evaluation scores; -1: the model does not say */
} sr_memory_use;

/* What each rank of a node may use: measured before the model allocates. */
typedef struct {
  int64_t per_rank;   /* node bytes / node ranks; -1: unknown (nothing is checked) */
  int64_t node_bytes; /* available on this node (sysmem.h) */
  int node_ranks;     /* ranks sharing it */
  const char *source; /* where node_bytes comes from */
} sr_memory_budget;

/* Collective over world (ranks of one node share its memory). */
int sr_memory_budget_measure(const sr_dist *world, sr_memory_budget *b);
/* This rank's use when training batches of train_rows rows and evaluating
 * batches of eval_rows rows of m. */
void sr_memory_use_of(const sr_model *m, int64_t train_rows, int64_t eval_rows, sr_memory_use *use);
/* Collective: rank 0 prints the worst rank's use; fails on every rank when
 * some rank needs more than its budget, saying what to raise. */
int sr_memory_check(const sr_dist *world, const sr_memory_use *use, const sr_memory_budget *b);

#ifdef __cplusplus
}
#endif
#endif

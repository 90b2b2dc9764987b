/*
 * model.h — the interface every model implements (Mult-VAE/DAE now, the
 * two-tower retrieval model later), so the trainer, the evaluator, gradient
 * reduction, checkpoints and merging never look inside a model.
 *
 * Data-parallel contract: forward_backward() sees this rank's rows of a global
 * batch of `global_batch` rows, returns its share of the loss (a sum over its
 * rows divided by global_batch) and ACCUMULATES gradients of that share. Summing
 * the gradients over ranks therefore gives exactly the gradient of the
 * global-batch loss. Terms that depend on the parameters only (an L2 penalty)
 * must be counted once, so they live in add_param_penalty(), which the trainer
 * calls after the gradient reduction.
 */
#ifndef SHARDREC_MODEL_H
#define SHARDREC_MODEL_H

#include <stdint.h>

#include "shardrec/config.h"
#include "shardrec/csr.h"
#include "shardrec/params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  const sr_csr *rows;        /* (B, n_items) this rank's rows of the global batch */
  const int64_t *sample_ids; /* [B] global sample ids: key every random draw */
  int64_t global_batch;      /* N = rows in the global batch (loss normaliser) */
  uint64_t step;             /* optimizer updates done before this batch */
  /* Called (when non-NULL) as soon as a parameter's gradient is final, so its
   * all-reduce can start while backward continues (grad_reduce.h). */
  void (*grad_ready)(void *ctx, int param_index);
  void *grad_ready_ctx;
} sr_batch;

#define SR_MAX_LOSS_TERMS 4

typedef struct {
  double loss; /* this rank's share of the total loss */
  int n_terms;
  const char *term_names[SR_MAX_LOSS_TERMS];
  double terms[SR_MAX_LOSS_TERMS]; /* shares of the components (e.g. neg_ll, kl) */
  double beta;                     /* KL weight used for this batch (VAE) */
} sr_step_stats;

typedef struct sr_model sr_model;

typedef struct {
  const char *name;
  int (*forward_backward)(sr_model *m, const sr_batch *b, sr_step_stats *stats);
  /* Adds the parameter-only penalty's gradient to the grads; returns its value. */
  double (*add_param_penalty)(sr_model *m);
  /* Evaluation-mode scores (R, n_items) for R users given their input rows. */
  void (*score)(sr_model *m, const sr_csr *input, float *scores);
  void (*destroy)(sr_model *m);
} sr_model_ops;

struct sr_model {
  const sr_model_ops *ops;
  sr_params params;
  int64_t n_items;
};

/* Builds the model named by cfg->model.type for n_items items, parameters
 * registered and initialised from cfg->run.seed. */
int sr_model_create(const sr_config *cfg, int64_t n_items, sr_model **out);
void sr_model_destroy(sr_model *m);

#ifdef __cplusplus
}
#endif
#endif

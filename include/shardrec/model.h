/*
 * model.h — the interface every model implements (Mult-VAE/DAE, the two-tower
 * retrieval model), so the trainer, the evaluator, gradient reduction,
 * checkpoints and merging never look inside a model.
 *
 * Data-parallel contract: forward_backward() sees this rank's rows of a global
 * batch of `global_batch` rows, returns its share of the loss (a sum over its
 * rows divided by global_batch) and ACCUMULATES gradients of that share. Summing
 * the gradients over ranks therefore gives exactly the gradient of the
 * global-batch loss. Terms that depend on the parameters only (an L2 penalty)
 * must be counted once, so they live in add_param_penalty(), which the trainer
 * calls after the gradient reduction.
 *
 * Item-parallel contract (sr_model.items): the K ranks of a group see the same
 * rows; each accumulates the gradient of its slices and of the replicated
 * parameters (the same on all K), so gradients are summed over the replicas
 * only (sr_item_grid.replicas).
 */
#ifndef SHARDREC_MODEL_H
#define SHARDREC_MODEL_H

#include <stdint.h>

#include "shardrec/config.h"
#include "shardrec/csr.h"
#include "shardrec/dataset.h"
#include "shardrec/dist.h"
#include "shardrec/item_parallel.h"
#include "shardrec/optim.h"
#include "shardrec/params.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What one training sample is: a user's whole row (autoencoders) or one
 * (user, positive item) pair (retrieval models). The trainer shuffles and
 * shards samples of that kind. */
typedef enum { SR_SAMPLES_USERS = 0, SR_SAMPLES_PAIRS = 1 } sr_sample_unit;

typedef struct {
  const sr_csr *rows;        /* (B, n_items) the training row of each sample's user */
  const int32_t *targets;    /* [B] pair samples: each sample's positive item (NULL for user samples) */
  const int64_t *user_ids;   /* [B] each sample's user, original numbering */
  const int64_t *sample_ids; /* [B] global sample ids: key every random draw */
  const int64_t *positions;  /* [B] each sample's index in the global batch, in [0, global_batch) */
  int64_t global_batch;      /* N = samples in the global batch (loss normaliser) */
  uint64_t step;             /* optimizer updates done before this batch */
  const sr_dist *dist;       /* the ranks sharing the global batch (for models that exchange activations) */
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

struct sr_h5file;

typedef struct {
  const char *name;
  sr_sample_unit samples;
  /* Collective when the model exchanges activations (every rank calls it at
   * every step, with B = 0 if it holds none of the batch). */
  int (*forward_backward)(sr_model *m, const sr_batch *b, sr_step_stats *stats);
  /* Adds the parameter-only penalty's gradient to the grads; returns its value. */
  double (*add_param_penalty)(sr_model *m);
  /* The registry's sparse tail (params.h: parameters without a dense
   * gradient) is not reduced densely: after the dense optimizer step
   * (o->step already counts this update) this collective exchanges their
   * sparse gradients and updates them; adds the non-finite gradient values
   * it met to *n_bad. NULL: every parameter is dense. */
  int (*update_sparse)(sr_model *m, const sr_dist *dist, const sr_optim *o, int64_t *n_bad);
  /* Called once before a pass of score() calls with unchanged parameters
   * (e.g. to embed the item corpus once); NULL when not needed. */
  void (*begin_eval)(sr_model *m);
  /* Evaluation-mode scores (R, n_items) for R users given their input rows
   * (fold-in items) and their ids (original numbering); with item
   * parallelism (R, this rank's items), collective over its group. */
  void (*score)(sr_model *m, const sr_csr *input, const int64_t *user_ids, float *scores);
  /* Training state that is not a parameter (e.g. the logQ frequency
   * estimate), kept in training checkpoints; NULL when there is none. */
  int (*write_state)(const sr_model *m, const struct sr_h5file *f);
  int (*read_state)(sr_model *m, const struct sr_h5file *f);
  /* Peak bytes of the model's own buffers when training on batches of
   * train_rows rows and evaluating batches of eval_rows rows (memory_plan.h);
   * NULL: not estimated. */
  int64_t (*activation_bytes)(const sr_model *m, int64_t train_rows, int64_t eval_rows);
  void (*destroy)(sr_model *m);
} sr_model_ops;

struct sr_model {
  const sr_model_ops *ops;
  sr_params params;
  int64_t n_items;
  /* The ranks the model was built over (NULL: a single process). Its
   * sharded parameters (params.h) are spread over them, and checkpoint
   * writes are collective over them (checkpoint.h). */
  const sr_dist *dist;
  /* Item parallelism (item_parallel.h; NULL: this rank holds every item).
   * Then score() fills (R, item_end - item_begin) for this rank's items, and
   * the group's shard 0 alone reports each sample in the loss shares, so that
   * sums over all ranks count every sample once. */
  sr_item_grid *items;
  /* Whether score() ranks items that no training row has (cold-start items)
   * by something learned — item features — rather than by untrained
   * parameters; evaluation reports their slice only then (metrics.h). */
  int ranks_unseen_items;
};

/* Builds the model named by cfg->model.type over `data` (the item corpus;
 * feature-based models copy the features they use, so data need not outlive
 * the model; interactions are not needed), parameters registered and
 * initialised from cfg->run.seed. */
int sr_model_create(const sr_config *cfg, const sr_dataset *data, sr_model **out);
/* The same over the ranks of `dist` (collective), which a model may split
 * its parameters over (model parallelism); dist == NULL is sr_model_create. */
int sr_model_create_on(const sr_config *cfg, const sr_dataset *data, const sr_dist *dist, sr_model **out);
/* "users" or "pairs", for progress lines. */
const char *sr_sample_unit_name(sr_sample_unit unit);
void sr_model_destroy(sr_model *m);

#ifdef __cplusplus
}
#endif
#endif

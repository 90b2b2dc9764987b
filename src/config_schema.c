/* config_schema.c — every configuration key of shardrec, and the cross-field
 * checks of sr_config_validate() (config.h, config_schema.h). */
#include "config_schema.h"

#include <stddef.h>
#include <stdio.h>

#include "shardrec/error.h"
#include "shardrec/metrics.h"

#define MEMBER_SIZE(m) sizeof(((sr_config *)0)->m)
/* A single value stored in sr_config member `m`. */
#define SCALAR(m) .offset = offsetof(sr_config, m), .size = MEMBER_SIZE(m), .elem_size = MEMBER_SIZE(m)
/* An array member `m` whose element count lives in member `count`. */
#define LIST(m, count)                                                                                    \
  .offset = offsetof(sr_config, m), .size = MEMBER_SIZE(m), .elem_size = MEMBER_SIZE(m[0]), .is_list = 1, \
  .count_offset = offsetof(sr_config, count)

#define AT_LEAST(v) .lo = {SR_BOUND_INCLUSIVE, (v)}
#define ABOVE(v) .lo = {SR_BOUND_EXCLUSIVE, (v)}
#define BELOW(v) .hi = {SR_BOUND_EXCLUSIVE, (v)}

/* Enum names are listed in the order of the C enums they are stored as. */
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL}; /* sr_log_level */
static const char *const model_types[] = {"multvae", "multdae", NULL};            /* sr_model_type */
static const char *const optimizers[] = {"adam", "adamw", NULL};                  /* sr_optim_kind */

const sr_config_key sr_config_schema[] = {
    {.path = "run.name",
     .type = SR_CFG_STRING,
     SCALAR(run.name),
     .default_yaml = "run",
     .doc = "Run name; outputs go to out_dir/name."},
    {.path = "run.out_dir",
     .type = SR_CFG_STRING,
     SCALAR(run.out_dir),
     .default_yaml = "runs",
     .doc = "Directory that holds run directories."},
    {.path = "run.seed",
     .type = SR_CFG_INT64,
     SCALAR(run.seed),
     AT_LEAST(0),
     .default_yaml = "98765",
     .doc = "Seed of every random stream (initialisation, shuffles, dropout, noise)."},
    {.path = "run.log_every_s",
     .type = SR_CFG_FLOAT,
     SCALAR(run.log_every_s),
     ABOVE(0),
     .default_yaml = "5.0",
     .doc = "Seconds between progress lines."},
    {.path = "run.log_level",
     .type = SR_CFG_ENUM,
     SCALAR(run.log_level),
     .enum_names = log_levels,
     .default_yaml = "info",
     .doc = "Least severe message level that is printed."},
    {.path = "run.log_all_ranks",
     .type = SR_CFG_BOOL,
     SCALAR(run.log_all_ranks),
     .default_yaml = "false",
     .doc = "Print from every MPI rank (prefixed with the rank), not only rank 0."},
    {.path = "run.threads",
     .type = SR_CFG_INT,
     SCALAR(run.threads),
     AT_LEAST(0),
     .default_yaml = "0",
     .doc = "BLAS threads per rank; 0 picks automatically."},

    {.path = "data.path",
     .type = SR_CFG_STRING,
     SCALAR(data.path),
     .required = 1,
     .default_yaml = "\"\"",
     .doc = "HDF5 dataset file (format in datasets/README.md)."},

    {.path = "model.type",
     .type = SR_CFG_ENUM,
     SCALAR(model.type),
     .enum_names = model_types,
     .default_yaml = "multvae",
     .doc = "Mult-VAE or Mult-DAE (methods.md section 1)."},
    {.path = "model.hidden",
     .type = SR_CFG_INT,
     LIST(model.hidden, model.n_hidden),
     .min_count = 0,
     AT_LEAST(1),
     .default_yaml = "[600]",
     .doc = "Encoder hidden layer sizes, input side first; the decoder mirrors them ([] for the DAE's [I -> 200 -> "
            "I])."},
    {.path = "model.latent_dim",
     .type = SR_CFG_INT,
     SCALAR(model.latent_dim),
     AT_LEAST(1),
     .default_yaml = "200",
     .doc = "Size of the latent code z."},
    {.path = "model.dropout",
     .type = SR_CFG_FLOAT,
     SCALAR(model.dropout),
     AT_LEAST(0),
     BELOW(1),
     .default_yaml = "0.5",
     .doc = "Input dropout probability (training only)."},
    {.path = "model.anneal_cap",
     .type = SR_CFG_FLOAT,
     SCALAR(model.anneal_cap),
     AT_LEAST(0),
     .default_yaml = "0.2",
     .doc = "VAE: largest KL weight beta."},
    {.path = "model.total_anneal_steps",
     .type = SR_CFG_INT64,
     SCALAR(model.total_anneal_steps),
     AT_LEAST(1),
     .default_yaml = "200000",
     .doc = "VAE: beta = min(anneal_cap, updates / total_anneal_steps)."},
    {.path = "model.l2_reg",
     .type = SR_CFG_FLOAT,
     SCALAR(model.l2_reg),
     AT_LEAST(0),
     .default_yaml = "0.01",
     .doc = "DAE: weight penalty, lambda = l2_reg / batch_size on the sum of squared weights."},

    {.path = "train.epochs",
     .type = SR_CFG_INT,
     SCALAR(train.epochs),
     AT_LEAST(1),
     .default_yaml = "200",
     .doc = "Passes over the training users."},
    {.path = "train.batch_size",
     .type = SR_CFG_INT,
     SCALAR(train.batch_size),
     AT_LEAST(1),
     .default_yaml = "500",
     .doc = "Global batch: users per optimizer step, summed over ranks."},
    {.path = "train.optimizer",
     .type = SR_CFG_ENUM,
     SCALAR(train.optimizer),
     .enum_names = optimizers,
     .default_yaml = "adam",
     .doc = "Adam (coupled L2 weight decay) or AdamW (decoupled)."},
    {.path = "train.lr",
     .type = SR_CFG_FLOAT,
     SCALAR(train.lr),
     ABOVE(0),
     .default_yaml = "1e-3",
     .doc = "Learning rate."},
    {.path = "train.beta1",
     .type = SR_CFG_FLOAT,
     SCALAR(train.beta1),
     AT_LEAST(0),
     BELOW(1),
     .default_yaml = "0.9",
     .doc = "Adam first-moment decay."},
    {.path = "train.beta2",
     .type = SR_CFG_FLOAT,
     SCALAR(train.beta2),
     AT_LEAST(0),
     BELOW(1),
     .default_yaml = "0.999",
     .doc = "Adam second-moment decay."},
    {.path = "train.eps",
     .type = SR_CFG_FLOAT,
     SCALAR(train.eps),
     ABOVE(0),
     .default_yaml = "1e-8",
     .doc = "Adam denominator epsilon."},
    {.path = "train.weight_decay",
     .type = SR_CFG_FLOAT,
     SCALAR(train.weight_decay),
     AT_LEAST(0),
     .default_yaml = "0.0",
     .doc = "Weight decay of weights and embeddings (not biases)."},
    {.path = "train.eval_batch_size",
     .type = SR_CFG_INT,
     SCALAR(train.eval_batch_size),
     AT_LEAST(1),
     .default_yaml = "2000",
     .doc = "Users per evaluation batch."},
    {.path = "train.eval_every",
     .type = SR_CFG_INT,
     SCALAR(train.eval_every),
     AT_LEAST(1),
     .default_yaml = "1",
     .doc = "Validate every this many epochs."},
    {.path = "train.max_steps",
     .type = SR_CFG_INT64,
     SCALAR(train.max_steps),
     AT_LEAST(0),
     .default_yaml = "0",
     .doc = "Stop after this many optimizer steps; 0 = no limit."},
    {.path = "train.time_limit_s",
     .type = SR_CFG_FLOAT,
     SCALAR(train.time_limit_s),
     AT_LEAST(0),
     .default_yaml = "0.0",
     .doc = "Stop after this many seconds of training; 0 = no limit."},
    {.path = "train.select_metric",
     .type = SR_CFG_STRING,
     SCALAR(train.select_metric),
     .default_yaml = "ndcg@100",
     .doc = "Validation metric that selects the best checkpoint; must be listed in eval.metrics."},

    {.path = "train.init_from",
     .type = SR_CFG_STRING,
     SCALAR(train.init_from),
     .default_yaml = "\"\"",
     .doc = "Start from this checkpoint's parameters (fine-tuning from a base); empty: fresh initialisation."},
    {.path = "train.init_optimizer",
     .type = SR_CFG_BOOL,
     SCALAR(train.init_optimizer),
     .default_yaml = "false",
     .doc = "With train.init_from: also take the checkpoint's optimizer state (Adam moments and step)."},

    {.path = "eval.metrics",
     .type = SR_CFG_STRING,
     LIST(eval.metrics, eval.n_metrics),
     .min_count = 1,
     .default_yaml = "[recall@20, recall@50, ndcg@100]",
     .doc = "Ranking metrics to report: recall@K, recall_plain@K, ndcg@K, mrr@K."},

    {.path = "checkpoint.dir",
     .type = SR_CFG_STRING,
     SCALAR(checkpoint.dir),
     .default_yaml = "\"\"",
     .doc = "Directory of the run's checkpoints; empty: <run directory>/checkpoints."},
    {.path = "checkpoint.every_epochs",
     .type = SR_CFG_INT,
     SCALAR(checkpoint.every_epochs),
     AT_LEAST(0),
     .default_yaml = "1",
     .doc = "Write a checkpoint after every N-th epoch's validation (0: never at epoch ends)."},
    {.path = "checkpoint.every_steps",
     .type = SR_CFG_INT64,
     SCALAR(checkpoint.every_steps),
     AT_LEAST(0),
     .default_yaml = "0",
     .doc = "Also write one every N optimizer steps (0: never mid-epoch)."},
    {.path = "checkpoint.keep_last",
     .type = SR_CFG_INT,
     SCALAR(checkpoint.keep_last),
     AT_LEAST(1),
     .default_yaml = "3",
     .doc = "Checkpoints kept (newest first), plus the best-validation one."},
    {.path = "checkpoint.resume",
     .type = SR_CFG_STRING,
     SCALAR(checkpoint.resume),
     .default_yaml = "\"\"",
     .doc = "Resume: empty = start fresh, auto = newest valid checkpoint in checkpoint.dir, or a checkpoint path."},

    {.path = "dist.bucket_mb",
     .type = SR_CFG_FLOAT,
     SCALAR(dist.bucket_mb),
     ABOVE(0),
     .default_yaml = "25",
     .doc = "Gradient all-reduce bucket size in MiB (results do not depend on it)."},
    {.path = "dist.overlap",
     .type = SR_CFG_BOOL,
     SCALAR(dist.overlap),
     .default_yaml = "true",
     .doc = "Start each bucket's all-reduce during backward (non-blocking) instead of after it."},
    {.path = "dist.shard_optimizer",
     .type = SR_CFG_BOOL,
     SCALAR(dist.shard_optimizer),
     .default_yaml = "true",
     .doc = "Shard Adam across ranks: reduce-scatter gradients, update 1/P each, all-gather parameters."},
};
const int sr_config_schema_count = (int)(sizeof sr_config_schema / sizeof sr_config_schema[0]);

static int same_metric(const sr_metric_spec *a, const sr_metric_spec *b) {
  return a->kind == b->kind && a->k == b->k;
}

/* Re-raises the metric parser's failure as a config error naming the key. */
static int metric_name_error(const char *key_label) {
  char why[SR_ERROR_MAX];
  snprintf(why, sizeof why, "%s", sr_error_message());
  return SR_FAIL(SR_ECONFIG, "%s: %s", key_label, why);
}

/* Every metric name parses, and the selection metric is one of them (compared
 * parsed, so "NDCG@100" selects "ndcg@100"). */
static int check_metrics(const sr_config *c) {
  sr_metric_spec selected, listed;
  char label[SR_CONFIG_PATH_MAX];
  for (int i = 0; i < c->eval.n_metrics; i++) {
    snprintf(label, sizeof label, "eval.metrics[%d]", i);
    if (sr_metric_parse(c->eval.metrics[i], &listed) != SR_OK) return metric_name_error(label);
  }
  if (sr_metric_parse(c->train.select_metric, &selected) != SR_OK) return metric_name_error("train.select_metric");
  for (int i = 0; i < c->eval.n_metrics; i++) {
    sr_metric_parse(c->eval.metrics[i], &listed);
    if (same_metric(&selected, &listed)) return SR_OK;
  }
  return SR_FAIL(SR_ECONFIG, "train.select_metric: '%s' is not one of eval.metrics (add it there to select on it)",
                 c->train.select_metric);
}

int sr_config_validate(const sr_config *c) {
  SR_TRY(sr_config_check_required(c));
  return check_metrics(c);
}

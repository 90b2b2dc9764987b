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
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};      /* sr_log_level */
static const char *const loss_types[] = {"softmax", "focal", "multisim", "auc", NULL}; /* sr_loss_type */
static const char *const logq_kinds[] = {"none", "streaming", "static", NULL};         /* sr_logq_kind */
static const char *const mask_kinds[] = {"cfm", "rfm", NULL};                          /* sr_mask_kind */
static const char *const sparse_optimizers[] = {"lazy_adam", "adagrad", NULL};         /* sr_sparse_optim_kind */
static const char *const optimizers[] = {"adam", "adamw", NULL};                       /* sr_optim_kind */
static const char *const table_shardings[] = {"replicated", "row", NULL};              /* sr_table_sharding */
static const char *const devices[] = {"cpu", "cuda", "auto", NULL};                    /* sr_device_kind */
static const char *const precisions[] = {"fp32", "tf32", "bf16", NULL};                /* sr_precision */
static const char *const backends[] = {"auto", "mpi", "nccl", NULL};                   /* sr_comm_backend */
static const char *const eval_slicings[] = {"popularity", NULL};                       /* sr_eval_slicing */
/* sr_model_type */
const char *const sr_model_type_names[] = {"multvae", "multdae", "twotower", "ease", NULL};
/* sr_lr_schedule_kind */
static const char *const lr_schedules[] = {"constant", "linear", "cosine", "step", NULL};
static const char *const compressions[] = {"zstd", "gzip", "none", NULL}; /* sr_h5_codec (h5io.h) */

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
    {.path = "run.device",
     .type = SR_CFG_ENUM,
     SCALAR(run.device),
     .enum_names = devices,
     .default_yaml = "cpu",
     .doc = "Where training runs: cpu, cuda (Mult-VAE/DAE; fails without a usable GPU) or auto (cuda when "
            "available). docs/gpu.md."},
    {.path = "run.precision",
     .type = SR_CFG_ENUM,
     SCALAR(run.precision),
     .enum_names = precisions,
     .default_yaml = "fp32",
     .doc = "Dense products on the GPU: fp32 (TF32 off), tf32 or bf16 tensor cores; weights and Adam stay fp32."},

    {.path = "data.path",
     .type = SR_CFG_STRING,
     SCALAR(data.path),
     .required = 1,
     .default_yaml = "\"\"",
     .doc = "HDF5 dataset file (format in datasets/README.md)."},

    {.path = "model.type",
     .type = SR_CFG_ENUM,
     SCALAR(model.type),
     .enum_names = sr_model_type_names,
     .default_yaml = "multvae",
     .doc = "Mult-VAE or Mult-DAE (methods.md section 1), the two-tower retrieval model (section 2), or EASE "
            "(Steck 2019, closed form; docs/methods.md)."},
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
    {.path = "model.query_features",
     .type = SR_CFG_STRING,
     LIST(model.query_features, model.n_query_features),
     .min_count = 1,
     .default_yaml = "[history]",
     .doc = "Two-tower query features: history (the user's items), user_id, or a /features/user name."},
    {.path = "model.item_features",
     .type = SR_CFG_STRING,
     LIST(model.item_features, model.n_item_features),
     .min_count = 1,
     .default_yaml = "[item_id, all]",
     .doc = "Two-tower item features: item_id, a /features/item name, or all (every item feature of the file)."},
    {.path = "model.feature_dim",
     .type = SR_CFG_INT,
     SCALAR(model.feature_dim),
     AT_LEAST(1),
     .default_yaml = "32",
     .doc = "Two-tower: width of each feature's embedding table."},
    {.path = "model.tower_hidden",
     .type = SR_CFG_INT,
     LIST(model.tower_hidden, model.n_tower_hidden),
     .min_count = 0,
     AT_LEAST(1),
     .default_yaml = "[256]",
     .doc = "Two-tower: hidden ReLU layer sizes of each tower's MLP."},
    {.path = "model.embedding_dim",
     .type = SR_CFG_INT,
     SCALAR(model.embedding_dim),
     AT_LEAST(1),
     .default_yaml = "64",
     .doc = "Two-tower: d, the size of the L2-normalised query and item embeddings."},
    {.path = "model.table_sharding",
     .type = SR_CFG_ENUM,
     SCALAR(model.table_sharding),
     .enum_names = table_shardings,
     .default_yaml = "replicated",
     .doc = "Two-tower embedding tables: a copy on every rank, or split by rows over the ranks (each rank stores, "
            "updates and checkpoints its contiguous range of rows; lookups and gradients go to the owners)."},
    {.path = "model.history_dropout",
     .type = SR_CFG_FLOAT,
     SCALAR(model.history_dropout),
     AT_LEAST(0),
     BELOW(1),
     .default_yaml = "0.75",
     .doc = "Two-tower training: drop each item of a pair's history feature with this probability (the query then "
            "resembles an evaluation fold-in)."},
    {.path = "model.tower_dropout",
     .type = SR_CFG_FLOAT,
     SCALAR(model.tower_dropout),
     AT_LEAST(0),
     BELOW(1),
     .default_yaml = "0.0",
     .doc = "Two-tower training: inverted dropout probability after every hidden ReLU layer of both towers."},
    {.path = "model.ease_lambda",
     .type = SR_CFG_FLOAT,
     SCALAR(model.ease_lambda),
     ABOVE(0),
     .default_yaml = "500.0",
     .doc = "EASE: L2 weight lambda of B = I - P diag(1/diag(P)), P = (X^T X + lambda I)^-1 (Steck 2019: 500 ML-20M, "
            "1000 Netflix, 200 MSD)."},

    {.path = "loss.type",
     .type = SR_CFG_ENUM,
     SCALAR(loss.type),
     .enum_names = loss_types,
     .default_yaml = "softmax",
     .doc =
         "Two-tower main loss: batch softmax, focal-reweighted softmax, Multi-Similarity or AUC (methods.md 2, 5)."},
    {.path = "loss.temperature",
     .type = SR_CFG_FLOAT,
     SCALAR(loss.temperature),
     AT_LEAST(0.001), /* below, s / tau leaves what a float softmax resolves */
     .default_yaml = "0.1",
     .doc = "tau of the batch softmax (and focal) loss, and of the SSL loss unless ssl.temperature is set."},
    {.path = "loss.logq",
     .type = SR_CFG_ENUM,
     SCALAR(loss.logq),
     .enum_names = logq_kinds,
     .default_yaml = "streaming",
     .doc = "Sampling-bias correction: none, streaming frequency estimate, or static training frequencies."},
    {.path = "loss.logq_alpha",
     .type = SR_CFG_FLOAT,
     SCALAR(loss.logq_alpha),
     ABOVE(0),
     .hi = {SR_BOUND_INCLUSIVE, 1},
     .default_yaml = "0.05",
     .doc = "Streaming estimator: EMA rate of the gap between an item's sightings."},
    {.path = "loss.logq_scaled",
     .type = SR_CFG_BOOL,
     SCALAR(loss.logq_scaled),
     .default_yaml = "false",
     .doc =
         "false: logQ outside the temperature, s/tau - log p (methods.md, sampled softmax); true: (s - log p)/tau."},
    {.path = "loss.focal_gamma",
     .type = SR_CFG_FLOAT,
     SCALAR(loss.focal_gamma),
     AT_LEAST(0),
     .default_yaml = "2.0",
     .doc = "Focal loss: weight (1 - p)^gamma of each query's softmax term."},
    {.path = "loss.ms_alpha",
     .type = SR_CFG_FLOAT,
     SCALAR(loss.ms_alpha),
     ABOVE(0),
     .default_yaml = "2.0",
     .doc = "Multi-Similarity: positive scale alpha."},
    {.path = "loss.ms_beta",
     .type = SR_CFG_FLOAT,
     SCALAR(loss.ms_beta),
     ABOVE(0),
     .default_yaml = "40.0",
     .doc = "Multi-Similarity: negative scale beta."},
    {.path = "loss.ms_lambda",
     .type = SR_CFG_FLOAT,
     SCALAR(loss.ms_lambda),
     .default_yaml = "0.5",
     .doc = "Multi-Similarity: similarity margin lambda."},
    {.path = "loss.ms_epsilon",
     .type = SR_CFG_FLOAT,
     SCALAR(loss.ms_epsilon),
     AT_LEAST(0),
     .default_yaml = "0.1",
     .doc = "Multi-Similarity: pair-mining margin epsilon."},
    {.path = "loss.auc_temperature",
     .type = SR_CFG_FLOAT,
     SCALAR(loss.auc_temperature),
     AT_LEAST(0.001),
     .default_yaml = "0.1",
     .doc = "AUC loss: pairs scored as sigmoid((s_pos - s_neg) / this)."},
    {.path = "loss.embedding_l2",
     .type = SR_CFG_FLOAT,
     SCALAR(loss.embedding_l2),
     AT_LEAST(0),
     .default_yaml = "0.0",
     .doc = "Two-tower: lambda of the L2 penalty on the table rows each training pair looks up (lambda/2 times the "
            "mean of their squared norms per feature, summed over the batch's pairs, divided by the batch)."},
    {.path = "loss.remove_accidental_hits",
     .type = SR_CFG_BOOL,
     SCALAR(loss.remove_accidental_hits),
     .default_yaml = "false",
     .doc = "Softmax losses: leave other copies of a query's positive item (in the batch or the uniform "
            "negatives) out of its softmax, as TensorFlow Recommenders does."},
    {.path = "loss.uniform_negatives",
     .type = SR_CFG_INT,
     SCALAR(loss.uniform_negatives),
     AT_LEAST(0),
     .default_yaml = "0",
     .doc = "Mixed negative sampling: M items drawn uniformly from the corpus per step (global), shared by every "
            "query and scored next to the in-batch items, each with its own logQ correction."},

    {.path = "ssl.enabled",
     .type = SR_CFG_BOOL,
     SCALAR(ssl.enabled),
     .default_yaml = "true",
     .doc = "Add the SSL contrastive loss on feature-masked item views (two-tower)."},
    {.path = "ssl.weight",
     .type = SR_CFG_FLOAT,
     SCALAR(ssl.weight),
     AT_LEAST(0),
     .default_yaml = "0.2",
     .doc = "alpha in L = L_main + alpha L_self."},
    {.path = "ssl.batch_size",
     .type = SR_CFG_INT,
     SCALAR(ssl.batch_size),
     AT_LEAST(0),
     .default_yaml = "0",
     .doc = "SSL items per step (global), sampled uniformly from the corpus; 0 = train.batch_size."},
    {.path = "ssl.masking",
     .type = SR_CFG_ENUM,
     SCALAR(ssl.masking),
     .enum_names = mask_kinds,
     .default_yaml = "cfm",
     .doc = "Complementary feature masking: correlated (CFM, from mutual information) or random (RFM)."},
    {.path = "ssl.value_dropout",
     .type = SR_CFG_FLOAT,
     SCALAR(ssl.value_dropout),
     AT_LEAST(0),
     BELOW(1),
     .default_yaml = "0.1",
     .doc = "Probability of dropping each value of a multi-valued feature in the SSL views."},
    {.path = "ssl.temperature",
     .type = SR_CFG_FLOAT,
     SCALAR(ssl.temperature),
     AT_LEAST(0),
     .default_yaml = "0.0",
     .doc = "tau of the SSL contrastive loss; 0 = loss.temperature (methods.md uses one tau for both)."},

    {.path = "train.epochs",
     .type = SR_CFG_INT,
     SCALAR(train.epochs),
     AT_LEAST(1),
     .default_yaml = "200",
     .doc = "Passes over the training samples (users, or (user, item) pairs for the two-tower)."},
    {.path = "train.batch_size",
     .type = SR_CFG_INT,
     SCALAR(train.batch_size),
     AT_LEAST(1),
     .default_yaml = "500",
     .doc = "Global batch: samples (users, or pairs for the two-tower) per optimizer step, summed over ranks."},
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
     AT_LEAST(1e-30), /* a normal float: smaller values round to 0 and divide 0 by 0 */
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
    {.path = "train.embedding_optimizer",
     .type = SR_CFG_ENUM,
     SCALAR(train.embedding_optimizer),
     .enum_names = sparse_optimizers,
     .default_yaml = "lazy_adam",
     .doc = "Two-tower embedding tables: lazy Adam (touched rows only) or Adagrad (exact), with train.lr."},
    {.path = "train.lr_schedule",
     .type = SR_CFG_ENUM,
     SCALAR(train.lr_schedule),
     .enum_names = lr_schedules,
     .default_yaml = "constant",
     .doc = "Learning rate after the warm-up: constant, linear or cosine decay to 0 at the end of train.epochs, or "
            "step (times train.lr_factor at each of train.lr_milestones)."},
    {.path = "train.warmup_steps",
     .type = SR_CFG_INT64,
     SCALAR(train.warmup_steps),
     AT_LEAST(0),
     .default_yaml = "0",
     .doc = "Optimizer steps of linear warm-up: step s (from 0) uses train.lr * (s + 1) / warmup_steps."},
    {.path = "train.lr_milestones",
     .type = SR_CFG_INT64,
     LIST(train.lr_milestones, train.n_lr_milestones),
     .min_count = 0,
     AT_LEAST(1),
     .default_yaml = "[]",
     .doc = "Step schedule: increasing optimizer step counts from which the learning rate is multiplied by "
            "train.lr_factor once more."},
    {.path = "train.lr_factor",
     .type = SR_CFG_FLOAT,
     SCALAR(train.lr_factor),
     ABOVE(0),
     .default_yaml = "0.1",
     .doc = "Step schedule: factor applied at each milestone."},
    {.path = "train.patience",
     .type = SR_CFG_INT,
     SCALAR(train.patience),
     AT_LEAST(0),
     .default_yaml = "0",
     .doc = "Early stopping: stop after this many validations in a row without improvement of train.select_metric; "
            "0 = never."},
    {.path = "train.min_delta",
     .type = SR_CFG_FLOAT,
     SCALAR(train.min_delta),
     AT_LEAST(0),
     .default_yaml = "0.0",
     .doc = "Early stopping: a validation improves when train.select_metric exceeds the best so far by more than "
            "this."},
    {.path = "train.clip_grad_norm",
     .type = SR_CFG_FLOAT,
     SCALAR(train.clip_grad_norm),
     AT_LEAST(0),
     .default_yaml = "0.0",
     .doc = "Scale the gradient of all parameters so that its global L2 norm is at most this (logged as "
            "grad_norm); 0 = no clipping."},

    {.path = "eval.metrics",
     .type = SR_CFG_STRING,
     LIST(eval.metrics, eval.n_metrics),
     .min_count = 1,
     .default_yaml = "[recall@20, recall@50, ndcg@100]",
     .doc = "Ranking metrics to report: recall@K, recall_plain@K, ndcg@K, mrr@K."},
    {.path = "eval.slices",
     .type = SR_CFG_ENUM,
     LIST(eval.slices, eval.n_slices),
     .enum_names = eval_slicings,
     .default_yaml = "[]",
     .doc = "Also report every metric per item slice: popularity = head, torso, tail of training popularity "
            "and cold (no training interaction); docs/two_tower.md, Evaluation slices."},
    {.path = "eval.popularity_shares",
     .type = SR_CFG_FLOAT,
     LIST(eval.popularity_shares, eval.n_popularity_shares),
     .min_count = 2,
     ABOVE(0),
     BELOW(1),
     .default_yaml = "[0.333333, 0.666667]",
     .doc = "Shares of the training interactions where the head and the torso end (increasing): an item is head "
            "while the more popular items hold less than the first."},

    {.path = "checkpoint.dir",
     .type = SR_CFG_STRING,
     SCALAR(checkpoint.dir),
     .default_yaml = "\"\"",
     .doc = "Directory of the run's checkpoints; empty: <run directory>/checkpoints."},
    {.path = "checkpoint.every_s",
     .type = SR_CFG_FLOAT,
     SCALAR(checkpoint.every_s),
     AT_LEAST(0),
     .default_yaml = "1800.0",
     .doc = "Write a checkpoint once this many seconds have passed since the last one (at the next step; 0: never "
            "by time). One is always written at the end of training and on SIGTERM/SIGINT/SIGUSR1."},
    {.path = "checkpoint.every_epochs",
     .type = SR_CFG_INT,
     SCALAR(checkpoint.every_epochs),
     AT_LEAST(0),
     .default_yaml = "0",
     .doc = "Also write one after every N-th epoch's validation (0: never at epoch ends)."},
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
     .doc = "Checkpoints of this run kept (newest first), plus the best-validation one; other runs' files are never "
            "deleted."},
    {.path = "checkpoint.resume",
     .type = SR_CFG_STRING,
     SCALAR(checkpoint.resume),
     .default_yaml = "\"\"",
     .doc = "Resume: empty = start fresh, auto = newest valid checkpoint in checkpoint.dir (a fresh start where none "
            "was written yet), or a checkpoint path."},
    {.path = "checkpoint.allow_changes",
     .type = SR_CFG_BOOL,
     SCALAR(checkpoint.allow_changes),
     .default_yaml = "false",
     .doc = "Resume even when run.seed, the model keys or the training data (its content hash) differ from the "
            "checkpoint's (refused otherwise, naming them)."},
    {.path = "checkpoint.compression",
     .type = SR_CFG_ENUM,
     SCALAR(checkpoint.compression),
     .enum_names = compressions,
     .default_yaml = "zstd",
     .doc = "Compression of checkpoints and model.h5: zstd (smaller, faster; other readers need the zstd filter: "
            "HDF5_PLUGIN_PATH or the Python package), gzip (any HDF5 reader) or none (docs/compression.md)."},

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
    {.path = "dist.exchange_touched_rows",
     .type = SR_CFG_BOOL,
     SCALAR(dist.exchange_touched_rows),
     .default_yaml = "true",
     .doc = "Mult-VAE/DAE: exchange only the rows of the first layer's gradient (one per item) that some rank's "
            "batch touched; the others are zero on every rank (results do not depend on it)."},
    {.path = "dist.cross_device_negatives",
     .type = SR_CFG_BOOL,
     SCALAR(dist.cross_device_negatives),
     .default_yaml = "true",
     .doc = "Two-tower: score each query against the items of every rank (all-gather), not only its own rank's."},
    {.path = "dist.item_parallel",
     .type = SR_CFG_INT,
     SCALAR(dist.item_parallel),
     AT_LEAST(1),
     .default_yaml = "1",
     .doc = "Mult-VAE/DAE: groups of K ranks share each batch and split the item dimension (must divide the ranks)."},
    {.path = "dist.backend",
     .type = SR_CFG_ENUM,
     SCALAR(dist.backend),
     .enum_names = backends,
     .default_yaml = "auto",
     .doc = "Gradient collectives of GPU ranks: nccl, mpi (staged through pinned host memory; ranks may share a "
            "GPU) or auto (nccl when built with it). CPU ranks always use MPI."},
    {.path = "dist.stall_timeout_s",
     .type = SR_CFG_FLOAT,
     SCALAR(dist.stall_timeout_s),
     AT_LEAST(0),
     .default_yaml = "300",
     .doc = "A rank without progress for this long (stuck I/O, a deadlocked collective, a dead peer) ends the job "
            "with exit status 124, reporting which ranks have not reached which step (0: never)."},
};
const int sr_config_schema_count = (int)(sizeof sr_config_schema / sizeof sr_config_schema[0]);

/* Re-raises the metric parser's failure as a config error naming the key. */
static int metric_name_error(const char *key_label) {
  char why[SR_ERROR_MAX];
  snprintf(why, sizeof why, "%s", sr_error_message());
  return SR_FAIL(SR_ECONFIG, "%s: %s", key_label, why);
}

/* Every metric name parses (errors name the entry), no metric is listed twice
 * (the accumulator, sr_metrics_init, refuses that), and the selection metric
 * is one of them (found parsed, so "NDCG@100" selects "ndcg@100"). */
static int check_metrics(const sr_config *c) {
  const char *names[SR_MAX_METRICS];
  sr_metric_spec spec;
  char label[SR_CONFIG_PATH_MAX];
  for (int i = 0; i < c->eval.n_metrics; i++) {
    snprintf(label, sizeof label, "eval.metrics[%d]", i);
    if (sr_metric_parse(c->eval.metrics[i], &spec) != SR_OK) return metric_name_error(label);
    names[i] = c->eval.metrics[i];
  }
  sr_metrics listed;
  if (sr_metrics_init(&listed, names, c->eval.n_metrics) != SR_OK) return metric_name_error("eval.metrics");
  if (sr_metric_parse(c->train.select_metric, &spec) != SR_OK) return metric_name_error("train.select_metric");
  if (sr_metrics_find(&listed, c->train.select_metric) >= 0) return SR_OK;
  return SR_FAIL(SR_ECONFIG, "train.select_metric: '%s' is not one of eval.metrics (add it there to select on it)",
                 c->train.select_metric);
}

/* Only the autoencoders have item layers to split; whether K divides the
 * number of ranks is checked when the ranks are known (item_parallel.h). */
static int check_item_parallel(const sr_config *c) {
  if (c->dist.item_parallel == 1 || c->model.type == SR_MODEL_MULTVAE || c->model.type == SR_MODEL_MULTDAE)
    return SR_OK;
  return SR_FAIL(SR_ECONFIG, "dist.item_parallel: %d, but it splits the item layers of multvae and multdae only",
                 c->dist.item_parallel);
}

/* Milestones belong to the step schedule and must increase. */
static int check_lr_schedule(const sr_config *c) {
  const int step = c->train.lr_schedule == SR_LR_STEP, n = c->train.n_lr_milestones;
  if (step && n == 0) return SR_FAIL(SR_ECONFIG, "train.lr_schedule: step needs train.lr_milestones");
  if (!step && n > 0) return SR_FAIL(SR_ECONFIG, "train.lr_milestones: given, but train.lr_schedule is not step");
  for (int i = 1; i < n; i++)
    if (c->train.lr_milestones[i] <= c->train.lr_milestones[i - 1])
      return SR_FAIL(SR_ECONFIG, "train.lr_milestones[%d]: %lld does not exceed the one before (%lld)", i,
                     (long long)c->train.lr_milestones[i], (long long)c->train.lr_milestones[i - 1]);
  return SR_OK;
}

/* The head ends before the torso (each share is in (0, 1) by its bounds). */
static int check_popularity_shares(const sr_config *c) {
  const double *s = c->eval.popularity_shares;
  if (s[0] < s[1]) return SR_OK;
  return SR_FAIL(SR_ECONFIG, "eval.popularity_shares: [%g, %g] must increase (where the head ends, then the torso)",
                 s[0], s[1]);
}

int sr_config_validate(const sr_config *c) {
  SR_TRY(sr_config_check_required(c));
  SR_TRY(check_item_parallel(c));
  SR_TRY(check_lr_schedule(c));
  SR_TRY(check_popularity_shares(c));
  return check_metrics(c);
}

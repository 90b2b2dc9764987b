/*
 * config.h — typed run configuration, read from YAML (libyaml) with
 * command-line overrides.
 *
 * The schema (config_schema.c) lists every key with its type, default, range
 * and documentation. Loading rejects unknown keys (suggesting the nearest valid
 * one), wrong types and out-of-range values with "FILE:LINE:COL: key.path: ..."
 * messages. `--set section.key=value` overrides parse `value` as a YAML scalar
 * or flow sequence ("[600, 200]"). sr_config_to_yaml() prints the fully
 * resolved configuration, which training saves next to its outputs.
 */
#ifndef SHARDREC_CONFIG_H
#define SHARDREC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "shardrec/fsutil.h"
#include "shardrec/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SR_MAX_LAYERS 8
#define SR_METRIC_NAME_MAX 32

#define SR_MAX_TOWER_FEATURES 16
#define SR_FEATURE_NAME_MAX 64

typedef enum { SR_MODEL_MULTVAE = 0, SR_MODEL_MULTDAE = 1, SR_MODEL_TWOTOWER = 2, SR_MODEL_EASE = 3 } sr_model_type;
/* "multvae", "multdae", "twotower", "ease" (model.type's values), indexed by sr_model_type. */
extern const char *const sr_model_type_names[];
/* Item slices evaluation reports metrics for (metrics.h). */
typedef enum { SR_SLICES_POPULARITY = 0 } sr_eval_slicing;

/* Two-tower retrieval losses (methods.md sections 2 and 5). */
typedef enum { SR_LOSS_SOFTMAX = 0, SR_LOSS_FOCAL = 1, SR_LOSS_MULTISIM = 2, SR_LOSS_AUC = 3 } sr_loss_type;
typedef enum { SR_LOGQ_NONE = 0, SR_LOGQ_STREAMING = 1, SR_LOGQ_STATIC = 2 } sr_logq_kind;
typedef enum { SR_MASK_CFM = 0, SR_MASK_RFM = 1 } sr_mask_kind;
typedef enum { SR_SPARSE_LAZY_ADAM = 0, SR_SPARSE_ADAGRAD = 1 } sr_sparse_optim_kind;
/* Where a two-tower embedding table's rows live: on every rank, or split
 * into contiguous row ranges over the ranks (model parallelism). */
typedef enum { SR_TABLES_REPLICATED = 0, SR_TABLES_ROW = 1 } sr_table_sharding;
/* train.lr_schedule (schedule.h). */
typedef enum { SR_LR_CONSTANT = 0, SR_LR_LINEAR = 1, SR_LR_COSINE = 2, SR_LR_STEP = 3 } sr_lr_schedule_kind;
#define SR_MAX_LR_MILESTONES 16

typedef struct {
  struct {
    char name[128]; /* run name; the run directory is out_dir/name */
    char out_dir[SR_PATH_MAX];
    int64_t seed;       /* keys every random stream (rng.h) */
    double log_every_s; /* progress line period */
    int log_level;      /* sr_log_level: debug|info|warn|error */
    int log_all_ranks;  /* bool */
    int threads;        /* BLAS threads per rank; 0 = auto */
    int device;         /* sr_device_kind (device.h): cpu|cuda|auto */
    int precision;      /* sr_precision (device.h): fp32|tf32|bf16 dense products on the device */
  } run;
  struct {
    char path[SR_PATH_MAX]; /* HDF5 dataset (datasets/README.md) */
  } data;
  struct {
    int type;                  /* sr_model_type */
    int hidden[SR_MAX_LAYERS]; /* encoder hidden sizes, input side first; decoder mirrors */
    int n_hidden;
    int latent_dim;
    double dropout;    /* input dropout probability */
    double anneal_cap; /* VAE: beta = min(anneal_cap, updates / total_anneal_steps) */
    int64_t total_anneal_steps;
    double l2_reg; /* DAE: lambda = l2_reg / batch_size on sum ||W||^2 */
    /* Two-tower (two_tower.h): feature names per tower, embedding widths, MLP. */
    char query_features[SR_MAX_TOWER_FEATURES][SR_FEATURE_NAME_MAX];
    int n_query_features;
    char item_features[SR_MAX_TOWER_FEATURES][SR_FEATURE_NAME_MAX];
    int n_item_features;
    int feature_dim;                 /* width of every feature embedding table */
    int tower_hidden[SR_MAX_LAYERS]; /* MLP hidden sizes of both towers */
    int n_tower_hidden;
    int embedding_dim;      /* d: the L2-normalised tower output */
    int table_sharding;     /* sr_table_sharding: the two-tower embedding tables */
    double history_dropout; /* two-tower training: drop each history item of a query with this probability */
    double tower_dropout;   /* two-tower training: inverted dropout after every hidden ReLU of both towers */
    double ease_lambda;     /* EASE (ease.h): the L2 weight lambda of G = X^T X + lambda I */
  } model;
  struct {
    int type;           /* sr_loss_type */
    double temperature; /* tau of the batch softmax and of the SSL loss */
    int logq;           /* sr_logq_kind */
    double logq_alpha;  /* EMA rate of the streaming frequency estimator */
    int logq_scaled;    /* bool: (s - log p)/tau as methods.md writes it; else s/tau - log p */
    double focal_gamma;
    double ms_alpha, ms_beta, ms_lambda, ms_epsilon;
    double auc_temperature;
    double embedding_l2;        /* two-tower: L2 on the table rows each pair looks up */
    int remove_accidental_hits; /* bool: other copies of a query's positive item are not its negatives */
    int uniform_negatives;      /* M: items drawn uniformly from the corpus per step, shared by all queries */
  } loss;
  struct {
    int enabled;          /* bool */
    double weight;        /* alpha: L = L_main + alpha L_self */
    int batch_size;       /* SSL items per step (global); 0 = train.batch_size */
    int masking;          /* sr_mask_kind */
    double value_dropout; /* p_drop of multi-valued feature values */
    double temperature;   /* tau of the SSL loss; 0 = loss.temperature */
  } ssl;
  struct {
    int epochs;
    int batch_size; /* global batch: samples (users, or pairs for the two-tower) per optimizer step */
    int optimizer;  /* sr_optim_kind: adam|adamw */
    double lr, beta1, beta2, eps, weight_decay;
    int eval_batch_size;
    int eval_every;                         /* validate every N epochs */
    int64_t max_steps;                      /* stop after this many updates (0 = no limit) */
    double time_limit_s;                    /* stop after this much training time (0 = no limit) */
    char select_metric[SR_METRIC_NAME_MAX]; /* model selection on validation */
    char init_from[SR_PATH_MAX];            /* start from this checkpoint's parameters ("" = fresh init) */
    int init_optimizer;                     /* bool: also take its optimizer state */
    int embedding_optimizer;                /* sr_sparse_optim_kind: embedding tables (two-tower) */

    /* Schedule (schedule.h), early stopping and clipping. */
    int lr_schedule;                             /* sr_lr_schedule_kind */
    int64_t warmup_steps;                        /* linear warm-up from lr / warmup_steps to lr */
    int64_t lr_milestones[SR_MAX_LR_MILESTONES]; /* step schedule: from these steps on, lr times lr_factor */
    int n_lr_milestones;
    double lr_factor;
    int patience;          /* early stopping: validations without improvement (0 = never stop early) */
    double min_delta;      /* an improvement must exceed the best select_metric by more than this */
    double clip_grad_norm; /* clip the global gradient norm to this (0 = no clipping) */
  } train;
  struct {
    char metrics[SR_MAX_METRICS][SR_METRIC_NAME_MAX];
    int n_metrics;
    int slices[1]; /* sr_eval_slicing: how metrics are also reported per item slice */
    int n_slices;
    double popularity_shares[2]; /* cumulative training-interaction shares ending the head and the torso */
    int n_popularity_shares;
  } eval;
  struct {
    char dir[SR_PATH_MAX]; /* "" = <run dir>/checkpoints */
    double every_s;        /* write at the first step boundary after this many seconds since the last (0 = never) */
    int every_epochs;      /* and at the end of every N-th epoch (0 = never) */
    int64_t every_steps;   /* and every N optimizer steps (0 = never) */
    int keep_last;         /* checkpoints kept besides the best-validation one */
    char resume[SR_PATH_MAX]; /* "" = start fresh, "auto" = newest valid in dir, or a checkpoint path */
    int allow_changes;        /* bool: resume although the run's identity keys differ */
    int compression;          /* of checkpoints and model.h5: an sr_h5_codec (h5io.h), at its default level */
  } checkpoint;
  struct {
    double bucket_mb;           /* gradient all-reduce bucket size in MiB */
    int overlap;                /* bool: start bucket all-reduces during backward */
    int shard_optimizer;        /* bool: reduce-scatter + Adam on 1/P + all-gather (ZeRO-1) */
    int exchange_touched_rows;  /* bool: Mult-VAE/DAE's first layer exchanges the rows batches touched */
    int cross_device_negatives; /* bool: two-tower queries see every rank's items */
    int item_parallel;          /* K: ranks that share each batch and split the item layers (Mult-VAE/DAE) */
    int backend;                /* sr_comm_backend (device.h): auto|mpi|nccl collectives of GPU ranks */
    double stall_timeout_s;     /* no progress on some rank for this long ends the job (watchdog.h); 0: off */
  } dist;
} sr_config;

/* Fills every field with its schema default. */
/* Optimal-string-alignment distance between a[0..n) and b[0..m)
 * (Levenshtein plus adjacent transpositions); INT_MAX past 63 characters. */
int sr_edit_distance(const char *a, size_t n, const char *b, size_t m);
/* The candidate nearest to `name` when it is close enough to be a typo of
 * it (about one edit per three characters), else NULL: the "did you mean"
 * of config keys and command-line words. */
const char *sr_nearest_name(const char *name, const char *const *candidates, int n);

void sr_config_defaults(sr_config *c);
/* Applies a YAML file / string on top of c. `name` labels messages. */
int sr_config_load_file(sr_config *c, const char *path);
int sr_config_load_string(sr_config *c, const char *yaml, const char *name);
/* Applies one "section.key=value" override. */
int sr_config_set(sr_config *c, const char *assignment);
/* Cross-field checks (e.g. metric names parse, select_metric is listed). */
int sr_config_validate(const sr_config *c);
/* Writes into buf (", "-separated) the keys whose values differ between a
 * and b among those whose path starts with one of `prefixes` (n of them; a
 * prefix ending in '.' names a section, otherwise one key); returns how many. */
int sr_config_diff(const sr_config *a, const sr_config *b, const char *const *prefixes, int n, char *buf,
                   size_t bufsize);
/* The value of key `path` in c as YAML writes it ("0.001", "[200, 600]", a
 * quoted string); SR_ECONFIG for an unknown key. */
int sr_config_format_value(const sr_config *c, const char *path, char *buf, size_t bufsize);
/* "key: value" (YAML values) of every key whose value in c differs from
 * base's, in schema order, joined by separator (malloc'd, caller frees);
 * *n_changed (if non-NULL) receives how many. */
char *sr_config_changes(const sr_config *c, const sr_config *base, const char *separator, int *n_changed);
/* Resolved config as YAML (malloc'd, caller frees), with a header comment. */
char *sr_config_to_yaml(const sr_config *c);

#ifdef __cplusplus
}
#endif
#endif

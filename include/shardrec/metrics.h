/*
 * metrics.h — top-K ranking metrics (methods.md §1), accumulated as sums so that
 * partial results from ranks can be added (MPI_SUM) before dividing.
 *
 * Metric names (case-insensitive, K >= 1):
 *   recall@K       hits@K / min(K, |held-out|)   (the Mult-VAE paper's recall)
 *   recall_plain@K hits@K / |held-out|           (what some libraries call recall)
 *   ndcg@K         DCG@K / IDCG@K, binary gains, IDCG over min(K, |held-out|)
 *   mrr@K          1 / rank of the first held-out item in the top K (0 if none)
 * Users with no held-out items are skipped (they count in no metric).
 * Fold-in items are excluded from the ranking (their score is set to -inf).
 * Ties are broken towards the lower item index, so results are deterministic.
 */
#ifndef SHARDREC_METRICS_H
#define SHARDREC_METRICS_H

#include <stdint.h>

#include "shardrec/csr.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SR_MAX_METRICS 16

typedef enum {
  SR_METRIC_RECALL = 0,
  SR_METRIC_RECALL_PLAIN = 1,
  SR_METRIC_NDCG = 2,
  SR_METRIC_MRR = 3
} sr_metric_kind;

typedef struct {
  sr_metric_kind kind;
  int k;
} sr_metric_spec;

typedef struct {
  int n;
  sr_metric_spec spec[SR_MAX_METRICS];
  double sum[SR_MAX_METRICS]; /* sum over evaluated users */
  int64_t n_users;            /* evaluated users (non-empty held-out) */
} sr_metrics;

/* Parses "ndcg@100" etc. into spec; SR_EINVAL with a message on a bad name. */
int sr_metric_parse(const char *name, sr_metric_spec *spec);
/* Writes e.g. "ndcg@100" into buf. */
void sr_metric_name(const sr_metric_spec *spec, char *buf, int bufsize);
/* Initialises from names; sums zeroed. */
int sr_metrics_init(sr_metrics *m, const char *const *names, int n);
void sr_metrics_reset(sr_metrics *m);
int sr_metrics_find(const sr_metrics *m, const char *name); /* index or -1 */
int sr_metrics_max_k(const sr_metrics *m);

/* Ranks R users: scores (R, C) are modified (fold-in entries set to -inf).
 * foldin and heldout have R rows and C columns; foldin may be NULL. */
void sr_metrics_accumulate(sr_metrics *m, float *scores, int64_t R, int64_t C, const sr_csr *foldin,
                           const sr_csr *heldout);
/* The pieces of sr_metrics_accumulate, for scores that no single rank holds
 * whole (item parallelism, item_parallel.h):
 * scores (foldin->n_rows, C): the fold-in entries set to -inf; */
void sr_metrics_exclude_foldin(float *scores, int64_t C, const sr_csr *foldin);
/* how many top items a ranking of C items needs: min(largest K, C); */
int sr_metrics_depth(const sr_metrics *m, int64_t C);
/* adds one user (n_heldout > 0): top (k) item ids best first and their
 * scores; -inf (excluded) or NaN scores end the ranked list. */
void sr_metrics_add_user(sr_metrics *m, const int32_t *top, const float *top_scores, int k, const int32_t *heldout,
                         int64_t n_heldout);
/* Per-user metric values for one row (exposed for tests): top (k) = item ids
 * ranked best first. */
double sr_metric_value(const sr_metric_spec *spec, const int32_t *top, int n_top, const int32_t *heldout,
                       int64_t n_heldout);
/* Indices of the k largest scores (k <= C), best first, ties to lower index. */
void sr_topk(int32_t *top, const float *scores, int64_t C, int k);

double sr_metrics_mean(const sr_metrics *m, int i);
/* "recall@20 0.3951  recall@50 0.5370  ndcg@100 0.4260" into buf. */
void sr_metrics_format(const sr_metrics *m, char *buf, int bufsize);

/* counts (n_cols) = number of training rows containing each item (written).
 * Rows hold unique columns, so this counts entries; values are ignored. */
void sr_item_counts(int64_t *counts, const sr_csr *train);
/* Popularity baseline: scores[i] = sr_item_counts as floats. */
void sr_popularity_scores(float *scores, const sr_csr *train);

#ifdef __cplusplus
}
#endif
#endif

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
 *
 * Slices (sr_metrics_set_slices): each item belongs to one slice (head,
 * torso, tail of training popularity, or cold: no training interaction; see
 * sr_popularity_slices). A slice's metrics rank the same full list of items
 * as the overall ones, but only the user's held-out items of that slice count
 * as relevant (hits and min(K, |held-out|) both restricted to it); users with
 * no held-out item in the slice count in none of its metrics.
 */
#ifndef SHARDREC_METRICS_H
#define SHARDREC_METRICS_H

#include <stdint.h>

#include "shardrec/csr.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SR_MAX_METRICS 16

/* Popularity slices, in report order. */
typedef enum {
  SR_SLICE_HEAD = 0,
  SR_SLICE_TORSO = 1,
  SR_SLICE_TAIL = 2,
  SR_SLICE_COLD = 3,
  SR_N_SLICES = 4
} sr_slice;

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
  /* Slices (n_slices 0: none): item_slice (borrowed; n_items entries, one
   * sr_slice each) must stay valid while users are added. */
  int n_slices;
  const uint8_t *item_slice;
  int64_t slice_items[SR_N_SLICES];              /* items in each slice (not summed over ranks) */
  double slice_sum[SR_N_SLICES][SR_MAX_METRICS]; /* as sum, per slice */
  int64_t slice_users[SR_N_SLICES];              /* users with a held-out item in the slice */
  int unseen_items_ranked;                       /* the scorer ranks cold items by what it learned */
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

/* ---- popularity slices -------------------------------------------------------------- */

/* Assigns each of n items (training interaction counts[i]) to a slice by its
 * share of the training interactions: with N = sum of counts and above(i) =
 * the interactions of the items strictly more popular than i,
 *   cold  if counts[i] == 0,
 *   head  if above(i) <  shares[0] * N,
 *   torso if above(i) <  shares[1] * N,
 *   tail  otherwise.
 * So the head is the most popular items up to and including the one whose
 * interactions cross the first threshold; items of equal count always share
 * a slice (above() is the same for all of them); an item whose more popular
 * items hold exactly shares[0] * N starts the torso. 0 < shares[0] <
 * shares[1] < 1. slice_of_item: n entries. */
void sr_popularity_slices(const int64_t *counts, int64_t n, const double shares[2], uint8_t *slice_of_item);
/* "head", "torso", "tail", "cold". */
const char *sr_slice_name(int slice);
/* Turns slices on: item_slice (m's items, borrowed) as sr_popularity_slices
 * wrote it; counts the items per slice; sums reset. */
void sr_metrics_set_slices(sr_metrics *m, const uint8_t *item_slice, int64_t n_items);
/* One slice's mean of metric i (0 with no user). */
double sr_metrics_slice_mean(const sr_metrics *m, int slice, int i);
/* "tail  1203 items  310 users  recall@20 0.0123 ..." for the log, or why the
 * slice has no figure (no held-out item in it; cold items the scorer cannot rank). */
void sr_metrics_format_slice(const sr_metrics *m, int slice, char *buf, int bufsize);
/* The slices as a JSON object, {"head":{"items":..,"users":..,"recall@20":..},..},
 * where a slice without figures has "note" (why) instead; a new reference, NULL
 * without slices. */
struct json_t *sr_metrics_slices_json(const sr_metrics *m);

/* counts (n_cols) = number of training rows containing each item (written).
 * Rows hold unique columns, so this counts entries; values are ignored. */
void sr_item_counts(int64_t *counts, const sr_csr *train);
/* Popularity baseline: scores[i] = sr_item_counts as floats. */
void sr_popularity_scores(float *scores, const sr_csr *train);

#ifdef __cplusplus
}
#endif
#endif

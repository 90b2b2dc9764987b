/* metrics.c — top-K ranking metrics and the popularity baseline (metrics.h, methods.md §1). */
#include "shardrec/metrics.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "shardrec/error.h"
#include "shardrec/mem.h"

/* Lower-case names indexed by sr_metric_kind; parsing and printing share them. */
static const char *const metric_kind_names[] = {"recall", "recall_plain", "ndcg", "mrr"};
#define N_METRIC_KINDS ((int)(sizeof metric_kind_names / sizeof metric_kind_names[0]))

/* ---- names ----------------------------------------------------------------------- */

/* Parses "<kind>@<K>" without recording an error, so that sr_metrics_find can
 * probe arbitrary names. Returns 1 on success. K is plain decimal digits (no
 * sign, no spaces) and must fit an int. */
static int try_parse_metric(const char *name, sr_metric_spec *spec) {
  const char *at = strchr(name, '@');
  if (!at) return 0;
  size_t kind_len = (size_t)(at - name);
  int kind = -1;
  for (int i = 0; i < N_METRIC_KINDS; i++)
    if (strlen(metric_kind_names[i]) == kind_len && strncasecmp(name, metric_kind_names[i], kind_len) == 0) kind = i;
  if (kind < 0) return 0;
  const char *digits = at + 1;
  if (*digits == '\0') return 0;
  long long k = 0;
  for (const char *p = digits; *p; p++) {
    if (*p < '0' || *p > '9') return 0;
    k = 10 * k + (*p - '0');
    if (k > INT_MAX) return 0;
  }
  if (k < 1) return 0;
  spec->kind = (sr_metric_kind)kind;
  spec->k = (int)k;
  return 1;
}

int sr_metric_parse(const char *name, sr_metric_spec *spec) {
  if (!try_parse_metric(name, spec))
    return SR_FAIL(SR_EINVAL,
                   "unknown metric '%s': expected recall@K, recall_plain@K, ndcg@K or mrr@K "
                   "with K a positive integer",
                   name);
  return SR_OK;
}

void sr_metric_name(const sr_metric_spec *spec, char *buf, int bufsize) {
  SR_ASSERT(spec->kind >= 0 && (int)spec->kind < N_METRIC_KINDS);
  snprintf(buf, (size_t)bufsize, "%s@%d", metric_kind_names[spec->kind], spec->k);
}

/* ---- the accumulator ------------------------------------------------------------- */

static int same_spec(const sr_metric_spec *a, const sr_metric_spec *b) { return a->kind == b->kind && a->k == b->k; }

int sr_metrics_init(sr_metrics *m, const char *const *names, int n) {
  memset(m, 0, sizeof *m);
  if (n < 1 || n > SR_MAX_METRICS)
    return SR_FAIL(SR_EINVAL, "%d metrics requested, expected 1 to %d", n, SR_MAX_METRICS);
  for (int i = 0; i < n; i++) {
    SR_TRY(sr_metric_parse(names[i], &m->spec[i]));
    /* A repeated metric would be reported twice and make find() ambiguous. */
    for (int j = 0; j < i; j++)
      if (same_spec(&m->spec[i], &m->spec[j]))
        return SR_FAIL(SR_EINVAL, "metric '%s' is listed twice (also as '%s')", names[i], names[j]);
  }
  m->n = n;
  return SR_OK;
}

void sr_metrics_reset(sr_metrics *m) {
  memset(m->sum, 0, sizeof m->sum);
  m->n_users = 0;
  memset(m->slice_sum, 0, sizeof m->slice_sum);
  memset(m->slice_users, 0, sizeof m->slice_users);
}

int sr_metrics_find(const sr_metrics *m, const char *name) {
  sr_metric_spec spec;
  if (!try_parse_metric(name, &spec)) return -1;
  for (int i = 0; i < m->n; i++)
    if (same_spec(&m->spec[i], &spec)) return i;
  return -1;
}

int sr_metrics_max_k(const sr_metrics *m) {
  int k = 0;
  for (int i = 0; i < m->n; i++)
    if (m->spec[i].k > k) k = m->spec[i].k;
  return k;
}

/* With no evaluated user there is nothing to average; 0 keeps reports and
 * "best so far" comparisons well defined. */
double sr_metrics_mean(const sr_metrics *m, int i) {
  SR_ASSERT(i >= 0 && i < m->n);
  return m->n_users > 0 ? m->sum[i] / (double)m->n_users : 0.0;
}

void sr_metrics_format(const sr_metrics *m, char *buf, int bufsize) {
  SR_ASSERT(bufsize >= 1);
  buf[0] = '\0';
  int used = 0;
  for (int i = 0; i < m->n && used < bufsize; i++) {
    char name[64];
    sr_metric_name(&m->spec[i], name, (int)sizeof name);
    int w = snprintf(buf + used, (size_t)(bufsize - used), "%s%s %.4f", i ? "  " : "", name, sr_metrics_mean(m, i));
    used += w;
  }
}

/* ---- top-K selection ------------------------------------------------------------- */

/* The ranking order: higher score first, ties to the lower index. NaN ranks
 * after every number (including -inf) so a diverged model cannot make the
 * order depend on where the NaNs happen to sit. */
static inline int ranks_before(float sa, int32_t ia, float sb, int32_t ib) {
  if (sa > sb) return 1;
  if (sa < sb) return 0;
  if (sa == sb) return ia < ib;
  if (isnan(sa) != isnan(sb)) return isnan(sb);
  return ia < ib;
}

/* heap[0..n) holds item ids with the WORST-ranked one at the root, so the root
 * is the entry a better candidate evicts. Restores the heap below `pos`. */
static void sift_down_worst_first(int32_t *heap, int n, int pos, const float *scores) {
  for (;;) {
    int worst = pos, left = 2 * pos + 1, right = left + 1;
    if (left < n && ranks_before(scores[heap[worst]], heap[worst], scores[heap[left]], heap[left])) worst = left;
    if (right < n && ranks_before(scores[heap[worst]], heap[worst], scores[heap[right]], heap[right])) worst = right;
    if (worst == pos) return;
    int32_t t = heap[pos];
    heap[pos] = heap[worst];
    heap[worst] = t;
    pos = worst;
  }
}

/* One pass over C scores with a k-entry heap kept in `top` itself (O(C log k),
 * no allocation), then an in-place heapsort of the k winners: popping the
 * worst into the last free slot leaves them best first. */
void sr_topk(int32_t *top, const float *scores, int64_t C, int k) {
  SR_ASSERT(k >= 0 && k <= C && C <= INT32_MAX);
  if (k == 0) return;
  for (int i = 0; i < k; i++) top[i] = i;
  for (int i = k / 2 - 1; i >= 0; i--) sift_down_worst_first(top, k, i, scores);
  for (int32_t i = k; i < C; i++) {
    if (!ranks_before(scores[i], i, scores[top[0]], top[0])) continue;
    top[0] = i;
    sift_down_worst_first(top, k, 0, scores);
  }
  for (int end = k - 1; end > 0; end--) {
    int32_t t = top[0];
    top[0] = top[end];
    top[end] = t;
    sift_down_worst_first(top, end, 0, scores);
  }
}

/* ---- per-user values ------------------------------------------------------------- */

static int contains_sorted(const int32_t *ids, int64_t n, int32_t id) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (ids[mid] < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && ids[lo] == id;
}

/* Σ_{r=1..n} 1/log2(r+1): the DCG of n hits at the top. */
static double ideal_dcg(int64_t n) {
  double s = 0.0;
  for (int64_t r = 1; r <= n; r++) s += 1.0 / log2((double)r + 1.0);
  return s;
}

double sr_metric_value(const sr_metric_spec *spec, const int32_t *top, int n_top, const int32_t *heldout,
                       int64_t n_heldout) {
  SR_ASSERT(n_heldout > 0);
  int depth = n_top < spec->k ? n_top : spec->k;
  int64_t hits = 0;
  double dcg = 0.0;
  for (int r = 0; r < depth; r++) {
    if (!contains_sorted(heldout, n_heldout, top[r])) continue;
    if (spec->kind == SR_METRIC_MRR) return 1.0 / (r + 1);
    hits++;
    dcg += 1.0 / log2((double)r + 2.0); /* rank r+1 (1-based) has discount log2(rank+1) */
  }
  int64_t ideal_hits = n_heldout < spec->k ? n_heldout : spec->k;
  switch (spec->kind) {
    case SR_METRIC_RECALL:
      return (double)hits / (double)ideal_hits;
    case SR_METRIC_RECALL_PLAIN:
      return (double)hits / (double)n_heldout;
    case SR_METRIC_NDCG:
      return dcg / ideal_dcg(ideal_hits);
    case SR_METRIC_MRR:
      return 0.0; /* no held-out item in the top K */
  }
  SR_DIE("unknown metric kind %d", (int)spec->kind);
}

/* ---- batches ------------------------------------------------------------------- */

void sr_metrics_exclude_foldin(float *scores, int64_t C, const sr_csr *foldin) {
  for (int64_t r = 0; r < foldin->n_rows; r++)
    for (int64_t p = foldin->indptr[r]; p < foldin->indptr[r + 1]; p++)
      scores[r * C + foldin->indices[p]] = -INFINITY;
}

void sr_metrics_add_user(sr_metrics *m, const int32_t *top, const float *top_scores, int k, const int32_t *heldout,
                         int64_t n_heldout) {
  /* Entries past the finite scores were excluded (or NaN): they fill the list
   * only when fewer than k items remain, and must never count as hits, even
   * if a malformed split put an item in both fold-in and held-out. */
  int n_top = 0;
  while (n_top < k && top_scores[n_top] > -INFINITY) n_top++;
  for (int i = 0; i < m->n; i++) m->sum[i] += sr_metric_value(&m->spec[i], top, n_top, heldout, n_heldout);
  m->n_users++;
  if (m->n_slices == 0) return;
  /* Each slice: the same ranking, the held-out items of that slice (still sorted). */
  int32_t *in_slice = sr_malloc((size_t)n_heldout * sizeof *in_slice);
  for (int s = 0; s < m->n_slices; s++) {
    int64_t n = 0;
    for (int64_t j = 0; j < n_heldout; j++)
      if (m->item_slice[heldout[j]] == s) in_slice[n++] = heldout[j];
    if (n == 0) continue;
    for (int i = 0; i < m->n; i++) m->slice_sum[s][i] += sr_metric_value(&m->spec[i], top, n_top, in_slice, n);
    m->slice_users[s]++;
  }
  free(in_slice);
}

int sr_metrics_depth(const sr_metrics *m, int64_t C) {
  const int max_k = sr_metrics_max_k(m);
  return (int64_t)max_k < C ? max_k : (int)C;
}

void sr_metrics_accumulate(sr_metrics *m, float *scores, int64_t R, int64_t C, const sr_csr *foldin,
                           const sr_csr *heldout) {
  SR_ASSERT(heldout->n_rows == R && heldout->n_cols == C);
  SR_ASSERT(!foldin || (foldin->n_rows == R && foldin->n_cols == C));
  if (foldin) sr_metrics_exclude_foldin(scores, C, foldin);
  const int k = sr_metrics_depth(m, C);
  int32_t *top = sr_malloc((size_t)k * sizeof *top);
  float *top_scores = sr_malloc((size_t)k * sizeof *top_scores);
  for (int64_t r = 0; r < R; r++) {
    const float *row = scores + r * C;
    int64_t n_heldout = sr_csr_row_len(heldout, r);
    if (n_heldout == 0) continue;
    sr_topk(top, row, C, k);
    for (int i = 0; i < k; i++) top_scores[i] = row[top[i]];
    sr_metrics_add_user(m, top, top_scores, k, heldout->indices + heldout->indptr[r], n_heldout);
  }
  free(top);
  free(top_scores);
}

/* ---- popularity slices ----------------------------------------------------------- */

static const char *const slice_names[SR_N_SLICES] = {"head", "torso", "tail", "cold"};

const char *sr_slice_name(int slice) {
  SR_ASSERT(slice >= 0 && slice < SR_N_SLICES);
  return slice_names[slice];
}

typedef struct {
  int64_t count, item;
} counted_item;

static int more_popular(const void *a, const void *b) {
  const counted_item *x = a, *y = b;
  if (x->count != y->count) return (x->count < y->count) - (x->count > y->count);
  return (x->item > y->item) - (x->item < y->item);
}

void sr_popularity_slices(const int64_t *counts, int64_t n, const double shares[2], uint8_t *slice_of_item) {
  SR_ASSERT(shares[0] > 0.0 && shares[0] < shares[1] && shares[1] < 1.0);
  counted_item *order = sr_malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
  int64_t total = 0;
  for (int64_t i = 0; i < n; i++) {
    order[i] = (counted_item){counts[i], i};
    total += counts[i];
  }
  qsort(order, (size_t)n, sizeof *order, more_popular);
  /* above = interactions of the items before the current run of equal counts;
   * exact in double below 2^53 interactions. */
  int64_t above = 0;
  for (int64_t first = 0; first < n;) {
    int64_t end = first;
    while (end < n && order[end].count == order[first].count) end++;
    const double before = (double)above;
    uint8_t slice = order[first].count == 0              ? SR_SLICE_COLD
                    : before < shares[0] * (double)total ? SR_SLICE_HEAD
                    : before < shares[1] * (double)total ? SR_SLICE_TORSO
                                                         : SR_SLICE_TAIL;
    for (int64_t r = first; r < end; r++) slice_of_item[order[r].item] = slice;
    above += order[first].count * (end - first);
    first = end;
  }
  free(order);
}

void sr_metrics_set_slices(sr_metrics *m, const uint8_t *item_slice, int64_t n_items) {
  m->n_slices = SR_N_SLICES;
  m->item_slice = item_slice;
  memset(m->slice_items, 0, sizeof m->slice_items);
  for (int64_t i = 0; i < n_items; i++) {
    SR_ASSERT(item_slice[i] < SR_N_SLICES);
    m->slice_items[item_slice[i]]++;
  }
  sr_metrics_reset(m);
}

double sr_metrics_slice_mean(const sr_metrics *m, int slice, int i) {
  SR_ASSERT(slice >= 0 && slice < m->n_slices && i >= 0 && i < m->n);
  return m->slice_users[slice] > 0 ? m->slice_sum[slice][i] / (double)m->slice_users[slice] : 0.0;
}

/* Why a slice has no figures, or NULL when it has. */
static const char *slice_without_figures(const sr_metrics *m, int slice) {
  if (m->slice_users[slice] == 0) return "no held-out item in this slice";
  if (slice == SR_SLICE_COLD && !m->unseen_items_ranked)
    return "not scored: this model has no item features to rank items unseen in training by";
  return NULL;
}

void sr_metrics_format_slice(const sr_metrics *m, int slice, char *buf, int bufsize) {
  SR_ASSERT(bufsize >= 1 && slice >= 0 && slice < m->n_slices);
  int used = snprintf(buf, (size_t)bufsize, "%-5s %lld items  %lld users", slice_names[slice],
                      (long long)m->slice_items[slice], (long long)m->slice_users[slice]);
  const char *why = slice_without_figures(m, slice);
  if (why && used < bufsize) used += snprintf(buf + used, (size_t)(bufsize - used), "  (%s)", why);
  for (int i = 0; !why && i < m->n && used < bufsize; i++) {
    char name[64];
    sr_metric_name(&m->spec[i], name, (int)sizeof name);
    used += snprintf(buf + used, (size_t)(bufsize - used), "  %s %.4f", name, sr_metrics_slice_mean(m, slice, i));
  }
}

json_t *sr_metrics_slices_json(const sr_metrics *m) {
  if (m->n_slices == 0) return NULL;
  json_t *slices = json_object();
  for (int s = 0; s < m->n_slices; s++) {
    if (s == SR_SLICE_COLD && m->slice_items[s] == 0) continue; /* no cold-start items in this data */
    json_t *slice = json_object();
    json_object_set_new(slice, "items", json_integer(m->slice_items[s]));
    json_object_set_new(slice, "users", json_integer(m->slice_users[s]));
    const char *why = slice_without_figures(m, s);
    if (why) json_object_set_new(slice, "note", json_string(why));
    for (int i = 0; !why && i < m->n; i++) {
      char name[64];
      sr_metric_name(&m->spec[i], name, (int)sizeof name);
      json_object_set_new(slice, name, json_real(sr_metrics_slice_mean(m, s, i)));
    }
    json_object_set_new(slices, slice_names[s], slice);
  }
  return slices;
}

/* ---- baseline -------------------------------------------------------------------- */

/* An interaction counts once whatever its weight. Counting in integers keeps
 * the result exact past 2^24 rows, where float increments would stall. */
void sr_item_counts(int64_t *counts, const sr_csr *train) {
  memset(counts, 0, (size_t)train->n_cols * sizeof *counts);
  for (int64_t p = 0; p < train->nnz; p++) counts[train->indices[p]]++;
}

void sr_popularity_scores(float *scores, const sr_csr *train) {
  int64_t *counts = sr_malloc((size_t)(train->n_cols > 0 ? train->n_cols : 1) * sizeof *counts);
  sr_item_counts(counts, train);
  for (int64_t i = 0; i < train->n_cols; i++) scores[i] = (float)counts[i];
  free(counts);
}

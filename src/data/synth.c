/*
 * synth.c — synthetic interactions with planted structure (synth.h).
 *
 * Model. User factors p_u ~ N(0, I_k); item factors q_i ~ N(0, I_k / k), so
 * <p_u, q_i> has unit variance whatever k is. Items get a random popularity
 * rank with log-weight pop_i = -skew * log(1 + rank_i) (Zipf). User u clicks n_u
 * = 5 + Geometric(mean - 5) distinct items, drawn with weights
 * w_ui = exp(<p_u, q_i> / T + pop_i).
 *
 * Sampling. Drawing items one at a time with probability proportional to the
 * remaining weights has exactly the law of Gumbel top-k (both are the
 * Plackett-Luce model), but needs n_u uniforms per user instead of one Gumbel
 * variate (two logarithms) per user and item. What remains O(users x items) is
 * computing the weights: one GEMM per block of users and one expf per entry.
 * Each user's draws come from a stream keyed by the user id, so row u does not
 * depend on the other rows.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/mem.h"
#include "shardrec/nn.h"
#include "shardrec/rng.h"
#include "shardrec/synth.h"

/* Step numbers of the SR_RNG_SYNTH streams; the sample index is the user or item id. */
enum {
  SYNTH_STEP_USER_FACTORS = 0,
  SYNTH_STEP_ITEM_FACTORS = 1,
  SYNTH_STEP_POPULARITY = 2,
  SYNTH_STEP_ROW_LENGTHS = 3,
  SYNTH_STEP_CLICKS = 4,
  SYNTH_STEP_TAGS = 5,
  SYNTH_STEP_FEATURE_VALUES = 6, /* causal features: sample = item * n_features + feature */
  SYNTH_STEP_VALUE_VECTORS = 7   /* causal features: sample = feature * feature_values + value */
};

#define SYNTH_MIN_ITEMS 5 /* every user has at least this many clicks (the paper's user filter) */
#define USER_BLOCK 64     /* users per GEMM: a 64 x n_items logit block stays cache-friendly */
#define ITEM_BLOCK 128    /* items per partial sum of the sampler (about sqrt(n_items)); a multiple of 4 */
#define POP_BUCKETS 10    /* "pop_bucket" = popularity decile */
#define TAG_NOISE 0.1     /* probability that an item gets one extra random tag */
#define MAX_VALUES 3      /* causal features: values per item and feature, 1 to this */

void sr_synth_opts_default(sr_synth_opts *o) {
  o->n_users = 5000;
  o->n_items = 2000;
  o->n_factors = 16;
  o->mean_items_per_user = 25.0;
  o->popularity_skew = 1.0;
  /* Clear structure, far from a perfect ranking: on the quickstart's data
   * (launch/quickstart.sh) Mult-VAE reaches test recall@20 0.44 against 0.12
   * for popularity. Lower values make users follow their factors more strictly. */
  o->temperature = 0.3;
  o->with_item_features = 1;
  o->seed = 98765;
  o->causal_features = 0;
  o->n_informative_features = 3;
  o->n_noise_features = 2;
  o->feature_values = 24;
  o->factor_noise = 0.2;
}

static int check_opts(const sr_synth_opts *o) {
  if (o->n_users < 1 || o->n_items < 1 || o->n_items > INT32_MAX)
    return SR_FAIL(SR_EINVAL, "synth: need 1 <= users and 1 <= items <= %d (got %lld users, %lld items)", INT32_MAX,
                   (long long)o->n_users, (long long)o->n_items);
  if (o->n_factors < 1 || o->n_factors > 1024)
    return SR_FAIL(SR_EINVAL, "synth: factors %d outside [1, 1024]", o->n_factors);
  if (!(o->mean_items_per_user >= SYNTH_MIN_ITEMS && o->mean_items_per_user < 1e6))
    return SR_FAIL(SR_EINVAL, "synth: mean items per user %g outside [%d, 1e6)", o->mean_items_per_user,
                   SYNTH_MIN_ITEMS);
  if (!(o->popularity_skew >= 0.0 && o->popularity_skew <= 10.0))
    return SR_FAIL(SR_EINVAL, "synth: popularity skew %g outside [0, 10]", o->popularity_skew);
  if (!(o->temperature > 0.0 && o->temperature <= 1e3))
    return SR_FAIL(SR_EINVAL, "synth: temperature %g outside (0, 1000]", o->temperature);
  if (!o->causal_features) return SR_OK;
  if (o->n_informative_features < 1 || o->n_informative_features > 16 || o->n_noise_features < 0 ||
      o->n_noise_features > 16)
    return SR_FAIL(SR_EINVAL, "synth: %d informative and %d noise features: need 1 to 16 and 0 to 16",
                   o->n_informative_features, o->n_noise_features);
  if (o->feature_values < MAX_VALUES || o->feature_values > 1000000)
    return SR_FAIL(SR_EINVAL, "synth: feature values %d outside [%d, 1e6]", o->feature_values, MAX_VALUES);
  if (!(o->factor_noise >= 0.0 && o->factor_noise <= 1.0))
    return SR_FAIL(SR_EINVAL, "synth: factor noise %g outside [0, 1]", o->factor_noise);
  return SR_OK;
}

/* ---- factors ----------------------------------------------------------------- */

/* Fills `dim` normals times `scale` from the stream of one user or item. */
static void normal_vector(const sr_synth_opts *o, int step, int64_t id, float scale, float *out, int dim) {
  sr_rng rng;
  sr_rng_init(&rng, o->seed, SR_RNG_SYNTH, (uint64_t)step, (uint64_t)id);
  for (int j = 0; j < dim; j++) out[j] = scale * sr_rng_normal(&rng);
}

/* rank[i] = popularity rank of item i (0 = most popular), a random permutation. */
static int64_t *popularity_ranks(const sr_synth_opts *o) {
  int64_t *by_rank = sr_malloc((size_t)o->n_items * sizeof *by_rank);
  int64_t *rank = sr_malloc((size_t)o->n_items * sizeof *rank);
  sr_rng rng;
  sr_rng_init(&rng, o->seed, SR_RNG_SYNTH, SYNTH_STEP_POPULARITY, 0);
  sr_rng_permutation(&rng, by_rank, o->n_items);
  for (int64_t r = 0; r < o->n_items; r++) rank[by_rank[r]] = r;
  free(by_rank);
  return rank;
}

/* Causal features: q_i from its informative features' value vectors (synth.h). */
static void factors_from_features(const sr_synth_opts *o, const sr_feature *features, float *q) {
  const int k = o->n_factors, F = o->n_informative_features;
  const float scale = 1.0f / sqrtf((float)k);
  float *e = sr_malloc((size_t)F * (size_t)o->feature_values * (size_t)k * sizeof *e);
  for (int64_t v = 0; v < (int64_t)F * o->feature_values; v++)
    normal_vector(o, SYNTH_STEP_VALUE_VECTORS, v, scale, e + v * k, k);
  const float explained = sqrtf((float)(1.0 - o->factor_noise) / (float)F), rest = sqrtf((float)o->factor_noise);
  float *z = sr_malloc((size_t)k * sizeof *z);
  for (int64_t i = 0; i < o->n_items; i++) {
    float *qi = q + i * k;
    normal_vector(o, SYNTH_STEP_ITEM_FACTORS, i, scale, z, k);
    for (int j = 0; j < k; j++) qi[j] = rest * z[j];
    for (int f = 0; f < F; f++) {
      const sr_csr *m = &features[f].values;
      const float w = explained / sqrtf((float)sr_csr_row_len(m, i));
      for (int64_t p = m->indptr[i]; p < m->indptr[i + 1]; p++)
        for (int j = 0; j < k; j++) qi[j] += w * e[((int64_t)f * o->feature_values + m->indices[p]) * k + j];
    }
  }
  free(z);
  free(e);
}

void sr_synth_item_factors(const sr_synth_opts *o, const sr_feature *item_features, float *q) {
  const int k = o->n_factors;
  if (o->causal_features) {
    factors_from_features(o, item_features, q);
    return;
  }
  for (int64_t i = 0; i < o->n_items; i++)
    normal_vector(o, SYNTH_STEP_ITEM_FACTORS, i, 1.0f / sqrtf((float)k), q + i * k, k);
}

/* Item rows [q_i, pop_i] (n_items x (k+1)): with user rows [p_u / T, 1] one GEMM
 * yields the logits <p_u, q_i> / T + pop_i. */
static float *item_rows(const sr_synth_opts *o, const int64_t *rank, const sr_feature *causal) {
  int k = o->n_factors, stride = k + 1;
  float *factors = sr_malloc((size_t)o->n_items * (size_t)k * sizeof *factors);
  sr_synth_item_factors(o, causal, factors);
  float *q = sr_malloc((size_t)o->n_items * (size_t)stride * sizeof *q);
  for (int64_t i = 0; i < o->n_items; i++) {
    memcpy(q + i * stride, factors + i * k, (size_t)k * sizeof *q);
    q[i * stride + k] = (float)(-o->popularity_skew * log1p((double)rank[i]));
  }
  free(factors);
  return q;
}

static void user_rows(const sr_synth_opts *o, int64_t first, int64_t n, float *p) {
  int k = o->n_factors, stride = k + 1;
  for (int64_t r = 0; r < n; r++) {
    normal_vector(o, SYNTH_STEP_USER_FACTORS, first + r, (float)(1.0 / o->temperature), p + r * stride, k);
    p[r * stride + k] = 1.0f;
  }
}

/* n_u = 5 + Geometric with mean (mean - 5), at most n_items. A geometric count
 * (a Poisson whose rate is itself exponential) gives the long tail of heavy users
 * that real logs have. */
static int64_t row_length(const sr_synth_opts *o, int64_t user) {
  sr_rng rng;
  sr_rng_init(&rng, o->seed, SR_RNG_SYNTH, SYNTH_STEP_ROW_LENGTHS, (uint64_t)user);
  double extra_mean = o->mean_items_per_user - SYNTH_MIN_ITEMS;
  double u = 1.0 - sr_rng_uniform_double(&rng); /* (0, 1] */
  double extra = extra_mean > 0 ? floor(log(u) / log(extra_mean / (1.0 + extra_mean))) : 0.0;
  double n = SYNTH_MIN_ITEMS + extra;
  return n < (double)o->n_items ? (int64_t)n : o->n_items;
}

/* ---- sampling without replacement ---------------------------------------------- */

/* Weights of one user's items with per-block partial sums, so a draw costs
 * O(n_items / ITEM_BLOCK + ITEM_BLOCK) and removing an item O(ITEM_BLOCK). */
typedef struct {
  int64_t n_items, n_blocks;
  float *w;         /* [n_items] */
  float *block_sum; /* [n_blocks]; <= ITEM_BLOCK terms in [0, 1], so float is exact enough */
} sampler;

static int64_t block_end(const sampler *s, int64_t b) {
  return (b + 1) * ITEM_BLOCK < s->n_items ? (b + 1) * ITEM_BLOCK : s->n_items;
}

static float block_total(const sampler *s, int64_t b) {
  float sum = 0.0f;
  for (int64_t i = b * ITEM_BLOCK; i < block_end(s, b); i++) sum += s->w[i];
  return sum;
}

/* w = exp(logits - max) (the shift keeps the largest weight at 1: no
 * overflow) and the block sums. */
static void sampler_load(sampler *s, const float *logits) {
  const float max = sr_max(logits, s->n_items);
  for (int64_t b = 0; b < s->n_blocks; b++) {
    int64_t i = b * ITEM_BLOCK, end = block_end(s, b);
    s->block_sum[b] = (float)sr_exp_shifted(s->w + i, logits + i, end - i, max);
  }
}

/* Index j where the running sum of weights[0..n) passes *x (x -= the weights
 * before it); the last positive weight if rounding leaves x past the total; -1
 * when all weights are zero. */
static int64_t walk(const float *weights, int64_t n, double *x) {
  int64_t picked = -1;
  for (int64_t j = 0; j < n; j++) {
    if (weights[j] <= 0.0f) continue;
    picked = j;
    if (*x < weights[j]) break;
    *x -= weights[j];
  }
  return picked;
}

/* Draws an item with probability proportional to its weight and removes it;
 * -1 when no item with positive weight is left. */
static int64_t sampler_draw(sampler *s, sr_rng *rng) {
  double total = 0.0;
  for (int64_t b = 0; b < s->n_blocks; b++) total += s->block_sum[b];
  double x = sr_rng_uniform_double(rng) * total;
  int64_t b = walk(s->block_sum, s->n_blocks, &x);
  if (b < 0) return -1;
  int64_t first = b * ITEM_BLOCK, i = first + walk(s->w + first, block_end(s, b) - first, &x);
  s->w[i] = 0.0f;
  s->block_sum[b] = block_total(s, b); /* recomputed, not decremented: no drift */
  return i;
}

static int compare_int32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* Row of `user` from its logits: up to `want` distinct items, sorted. Returns the count. */
static int64_t sample_row(const sr_synth_opts *o, int64_t user, const float *logits, int64_t want, sampler *s,
                          int32_t *out) {
  sr_rng rng;
  sr_rng_init(&rng, o->seed, SR_RNG_SYNTH, SYNTH_STEP_CLICKS, (uint64_t)user);
  sampler_load(s, logits);
  int64_t n = 0;
  for (int64_t i; n < want && (i = sampler_draw(s, &rng)) >= 0;) out[n++] = (int32_t)i;
  qsort(out, (size_t)n, sizeof *out, compare_int32);
  return n;
}

static void generate_clicks(const sr_synth_opts *o, const float *items, sr_csr *full) {
  int stride = o->n_factors + 1;
  int64_t *lengths = sr_malloc((size_t)o->n_users * sizeof *lengths), capacity = 0;
  for (int64_t u = 0; u < o->n_users; u++) capacity += lengths[u] = row_length(o, u);
  sr_csr_alloc(full, o->n_users, o->n_items, capacity, 0);
  sampler s = {o->n_items, (o->n_items + ITEM_BLOCK - 1) / ITEM_BLOCK, NULL, NULL};
  s.w = sr_malloc((size_t)s.n_items * sizeof *s.w);
  s.block_sum = sr_malloc((size_t)s.n_blocks * sizeof *s.block_sum);
  float *users = sr_malloc((size_t)USER_BLOCK * (size_t)stride * sizeof *users);
  float *logits = sr_malloc((size_t)USER_BLOCK * (size_t)o->n_items * sizeof *logits);
  int64_t nnz = 0;
  for (int64_t first = 0; first < o->n_users; first += USER_BLOCK) {
    int64_t n = o->n_users - first < USER_BLOCK ? o->n_users - first : USER_BLOCK;
    user_rows(o, first, n, users);
    /* logits (n x n_items) = users (n x (k+1)) . items^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)o->n_items, stride, 1.0f, users, stride, items,
                stride, 0.0f, logits, (int)o->n_items);
    for (int64_t r = 0; r < n; r++) {
      int64_t u = first + r;
      nnz += sample_row(o, u, logits + r * o->n_items, lengths[u], &s, full->indices + nnz);
      full->indptr[u + 1] = nnz;
    }
  }
  full->nnz = nnz;
  free(lengths);
  free(s.w);
  free(s.block_sum);
  free(users);
  free(logits);
}

/* ---- features ------------------------------------------------------------------ */

static void feature_init(sr_feature *f, const char *name, int multi_valued, int64_t vocab, int64_t n_rows,
                         int64_t max_nnz) {
  memset(f, 0, sizeof *f);
  snprintf(f->name, sizeof f->name, "%s", name);
  f->multi_valued = multi_valued;
  f->vocab_size = vocab;
  sr_csr_alloc(&f->values, n_rows, vocab, max_nnz, 0);
  f->values.nnz = 0;
}

static void feature_append_row(sr_feature *f, int64_t row, const int32_t *ids, int n) {
  sr_csr *m = &f->values;
  memcpy(m->indices + m->nnz, ids, (size_t)n * sizeof *ids);
  m->nnz += n;
  m->indptr[row + 1] = m->nnz;
}

/* The `n` largest of q[0..k) (n <= k), largest first. */
static void top_factors(const float *q, int k, int n, int32_t *out) {
  for (int t = 0; t < n; t++) {
    int best = -1;
    for (int j = 0; j < k; j++) {
      int taken = 0;
      for (int s = 0; s < t; s++) taken |= out[s] == j;
      if (!taken && (best < 0 || q[j] > q[best])) best = j;
    }
    out[t] = best;
  }
}

/* Tags of item i: its top 2 or 3 factors, plus sometimes one random factor
 * (noise, so tags are informative but not a copy of the cluster). Sorted, unique. */
static int item_tags(const sr_synth_opts *o, int64_t i, const float *q, int32_t tags[4]) {
  sr_rng rng;
  sr_rng_init(&rng, o->seed, SR_RNG_SYNTH, SYNTH_STEP_TAGS, (uint64_t)i);
  int n = 2 + (sr_rng_uniform(&rng) < 0.5f);
  n = n < o->n_factors ? n : o->n_factors;
  top_factors(q, o->n_factors, n, tags);
  if (sr_rng_uniform(&rng) < TAG_NOISE) tags[n++] = (int32_t)sr_rng_below(&rng, (uint64_t)o->n_factors);
  qsort(tags, (size_t)n, sizeof *tags, compare_int32);
  int unique = 0;
  for (int t = 0; t < n; t++)
    if (unique == 0 || tags[t] != tags[unique - 1]) tags[unique++] = tags[t];
  return unique;
}

static sr_feature *make_features(const sr_synth_opts *o, const float *items, const int64_t *rank) {
  int k = o->n_factors, stride = k + 1;
  sr_feature *f = sr_calloc(3, sizeof *f);
  feature_init(&f[0], "cluster", 0, k, o->n_items, o->n_items);
  feature_init(&f[1], "tags", 1, k, o->n_items, 4 * o->n_items);
  feature_init(&f[2], "pop_bucket", 0, POP_BUCKETS, o->n_items, o->n_items);
  for (int64_t i = 0; i < o->n_items; i++) {
    const float *q = items + i * stride;
    int32_t cluster, tags[4], bucket = (int32_t)(rank[i] * POP_BUCKETS / o->n_items);
    top_factors(q, k, 1, &cluster);
    feature_append_row(&f[0], i, &cluster, 1);
    feature_append_row(&f[1], i, tags, item_tags(o, i, q, tags));
    feature_append_row(&f[2], i, &bucket, 1);
  }
  return f;
}

/* Causal features (synth.h): informative ones first, then noise; each item
 * has 1 to MAX_VALUES distinct values of each, from a stream of its own. */
static sr_feature *make_causal_features(const sr_synth_opts *o, int *n) {
  const int F = o->n_informative_features + o->n_noise_features;
  sr_feature *f = sr_calloc((size_t)F, sizeof *f);
  for (int j = 0; j < F; j++) {
    char name[SR_NAME_MAX];
    const int informative = j < o->n_informative_features;
    snprintf(name, sizeof name, "%s_%d", informative ? "informative" : "noise",
             informative ? j + 1 : j - o->n_informative_features + 1);
    feature_init(&f[j], name, 1, o->feature_values, o->n_items, MAX_VALUES * o->n_items);
    for (int64_t i = 0; i < o->n_items; i++) {
      sr_rng rng;
      sr_rng_init(&rng, o->seed, SR_RNG_SYNTH, SYNTH_STEP_FEATURE_VALUES, (uint64_t)(i * F + j));
      int32_t values[MAX_VALUES];
      const int want = 1 + (int)sr_rng_below(&rng, MAX_VALUES);
      int have = 0;
      while (have < want) {
        const int32_t v = (int32_t)sr_rng_below(&rng, (uint64_t)o->feature_values);
        int seen = 0;
        for (int t = 0; t < have; t++) seen |= values[t] == v;
        if (!seen) values[have++] = v;
      }
      qsort(values, (size_t)have, sizeof *values, compare_int32);
      feature_append_row(&f[j], i, values, have);
    }
  }
  *n = F;
  return f;
}

int sr_synth_generate(const sr_synth_opts *o, sr_csr *full, sr_feature **item_features, int *n_item_features) {
  memset(full, 0, sizeof *full);
  if (item_features) *item_features = NULL;
  if (n_item_features) *n_item_features = 0;
  SR_TRY(check_opts(o));
  int64_t *rank = popularity_ranks(o);
  int n_causal = 0;
  sr_feature *causal = o->causal_features ? make_causal_features(o, &n_causal) : NULL;
  float *items = item_rows(o, rank, causal);
  generate_clicks(o, items, full);
  const int wanted = o->with_item_features && item_features && n_item_features;
  if (wanted && causal) {
    *item_features = causal;
    *n_item_features = n_causal;
    causal = NULL;
  } else if (wanted) {
    *item_features = make_features(o, items, rank);
    *n_item_features = 3;
  }
  for (int f = 0; causal && f < n_causal; f++) sr_csr_free(&causal[f].values);
  free(causal);
  free(rank);
  free(items);
  return SR_OK;
}

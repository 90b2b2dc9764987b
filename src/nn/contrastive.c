/* contrastive.c — retrieval losses on query/item scores and the streaming
 * frequency estimator (contrastive.h). */
#include "shardrec/contrastive.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/mem.h"
#include "shardrec/nn.h"

/* ---- shared driver: scores -> per-row loss -> gradients ------------------------------
 * Every loss is a sum of per-query terms, each a function of its row of scores
 * only. A row function receives the row (N) in `d`, returns the term (not yet
 * divided by norm) and overwrites `d` with grad_scale * d(term)/d(scores). */
typedef struct score_loss score_loss;
struct score_loss {
  double (*row)(float *d, int64_t i, int64_t N, float grad_scale, const score_loss *l);
  const int64_t *pos;      /* NULL: query i's positive is item i */
  const float *log_p;      /* softmax losses; NULL: no correction */
  const int64_t *ids;      /* softmax losses: the candidates' item ids, to remove accidental hits; NULL: keep all */
  const uint8_t *selected; /* MS mining; NULL: mine each row */
  float tau, gamma;
  sr_ms_params ms;
};

static int64_t positive_of(const score_loss *l, int64_t i) { return l->pos ? l->pos[i] : i; }

void sr_scores_forward(float *scores, const float *q, const float *x, int64_t Bq, int64_t N, int64_t D) {
  SR_ASSERT(Bq <= INT_MAX && N <= INT_MAX && D <= INT_MAX); /* LP64 CBLAS dimensions */
  if (Bq == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Bq, (int)N, (int)D, 1.0f, q, (int)D, x, (int)D, 0.0f,
              scores, (int)N);
}

/* Score rows processed per block: the block's (rows, N) scores stay about
 * 4 MiB, in cache for the row losses and both gradient products, instead of
 * a (Bq, N) matrix streamed through memory four times (at N = 4096 the full
 * matrix is 64 MiB per loss and step). */
#define SCORE_BLOCK_FLOATS (1 << 20)

/* Rows [b, b + n) of the loss: scores of those queries against every item,
 * per-row terms into row_loss[b..), then dq rows = dS . x (written) and
 * dx += dS^T . q_rows (accumulated: the caller zeroes dx). */
static void loss_block(float *ds, double *row_loss, float *dq, float *dx, const float *q, const float *x, int64_t b,
                       int64_t n, int64_t N, int64_t D, float grad_scale, const score_loss *l) {
  sr_scores_forward(ds, q + b * D, x, n, N, D);
  /* Rows are independent; their terms are added afterwards in row order so
   * the total does not depend on the number of threads. */
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) row_loss[b + i] = l->row(ds + i * N, b + i, N, grad_scale, l);
  if (dq)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)D, (int)N, 1.0f, ds, (int)N, x, (int)D, 0.0f,
                dq + b * D, (int)D);
  if (dx)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)D, (int)n, 1.0f, ds, (int)N, q + b * D, (int)D,
                1.0f, dx, (int)D);
}

static double embedding_loss(float *dq, float *dx, const float *q, const float *x, int64_t Bq, int64_t N, int64_t D,
                             float norm, const score_loss *l) {
  SR_ASSERT(Bq <= INT_MAX && N <= INT_MAX && D <= INT_MAX); /* LP64 CBLAS dimensions */
  const int64_t block = N > 0 && SCORE_BLOCK_FLOATS / N > 1 ? SCORE_BLOCK_FLOATS / N : 1;
  const int64_t rows = Bq < block ? Bq : block;
  float *ds = sr_malloc((size_t)(rows * N > 0 ? rows * N : 1) * sizeof *ds);
  double *row_loss = sr_malloc((size_t)(Bq > 0 ? Bq : 1) * sizeof *row_loss);
  if (dx) memset(dx, 0, (size_t)(N * D) * sizeof *dx); /* no query: nothing reaches the items */
  const float grad_scale = 1.0f / norm;
  for (int64_t b = 0; b < Bq; b += block)
    loss_block(ds, row_loss, dq, dx, q, x, b, Bq - b < block ? Bq - b : block, N, D, grad_scale, l);
  double total = 0.0;
  for (int64_t i = 0; i < Bq; i++) total += row_loss[i];
  free(row_loss);
  free(ds);
  return total / norm;
}

/* ---- softmax losses (batch softmax, InfoNCE, focal) ------------------------------------- */

/* Logits l_j = (s_j - log p_j) / tau; term = w (-log p) with w = (1-p)^gamma,
 * p = softmax(l)[pos]; dl_j = (P_j - [j == pos]) * (w + gamma p (1-p)^(gamma-1) (-log p)). */
static double softmax_row(float *d, int64_t i, int64_t N, float grad_scale, const score_loss *l) {
  const int64_t pos = positive_of(l, i);
  SR_ASSERT(pos >= 0 && pos < N);
  const float inv_tau = 1.0f / l->tau;
  for (int64_t j = 0; j < N; j++) d[j] = (d[j] - (l->log_p ? l->log_p[j] : 0.0f)) * inv_tau;
  /* Accidental hits leave the softmax: exp(-inf) = 0, so they get no gradient either. */
  if (l->ids)
    for (int64_t j = 0; j < N; j++)
      if (j != pos && l->ids[j] == l->ids[pos]) d[j] = -INFINITY;
  const float positive_logit = d[pos];
  const float max = sr_max(d, N);
  const double sum_exp = sr_exp_shifted(d, d, N, max);
  const double log_prob = (double)positive_logit - (max + log(sum_exp));
  const double ce = -log_prob;
  /* 1 - p through expm1: exact where p is close to 1 and the weight small. */
  const double one_minus_p = -expm1(log_prob);
  const double weight = pow(one_minus_p, l->gamma);
  /* The weight's derivative term tends to 0 as p -> 1 for every gamma > 0. */
  const double weight_slope =
      l->gamma > 0.0f && one_minus_p > 0.0 ? l->gamma * exp(log_prob) * pow(one_minus_p, l->gamma - 1.0) * ce : 0.0;
  const float row_scale = (float)(weight + weight_slope) * grad_scale * inv_tau;
  const float prob_scale = (float)(1.0 / sum_exp) * row_scale;
  for (int64_t j = 0; j < N; j++) d[j] *= prob_scale;
  d[pos] -= row_scale;
  return weight * ce;
}

double sr_focal_softmax_loss(float *dq, float *dx, const float *q, const float *x, const int64_t *pos,
                             const float *log_p, const int64_t *candidate_ids, int64_t Bq, int64_t N, int64_t D,
                             float tau, float gamma, float norm) {
  SR_ASSERT(pos && tau > 0.0f && gamma >= 0.0f);
  const score_loss l = {
      .row = softmax_row, .pos = pos, .log_p = log_p, .ids = candidate_ids, .tau = tau, .gamma = gamma};
  return embedding_loss(dq, dx, q, x, Bq, N, D, norm, &l);
}

double sr_batch_softmax_loss(float *dq, float *dx, const float *q, const float *x, const int64_t *pos,
                             const float *log_p, int64_t Bq, int64_t N, int64_t D, float tau, float norm) {
  return sr_focal_softmax_loss(dq, dx, q, x, pos, log_p, NULL, Bq, N, D, tau, 0.0f, norm);
}

double sr_infonce_loss(float *dz, float *dz2, const float *z, const float *z2, int64_t M, int64_t D, float tau,
                       float norm) {
  SR_ASSERT(tau > 0.0f);
  const score_loss l = {.row = softmax_row, .tau = tau}; /* pos NULL: the diagonal */
  return embedding_loss(dz, dz2, z, z2, M, M, D, norm, &l);
}

/* ---- Mann-Whitney / AUC ---------------------------------------------------------------------- */

/* -log sigmoid(a) = log(1 + e^-a), without overflow for either sign. */
static double softplus_neg(double a) { return a > 0.0 ? log1p(exp(-a)) : -a + log1p(exp(a)); }

static double sigmoid(double a) { return a >= 0.0 ? 1.0 / (1.0 + exp(-a)) : exp(a) / (1.0 + exp(a)); }

/* term = (1/(N-1)) sum_{n != pos} -log sigmoid(a_n), a_n = (s_pos - s_n)/tau;
 * d(term)/ds_n = sigmoid(-a_n) / (tau (N-1)), ds_pos = -sum of those. */
static double auc_row(float *d, int64_t i, int64_t N, float grad_scale, const score_loss *l) {
  const int64_t pos = positive_of(l, i);
  SR_ASSERT(pos >= 0 && pos < N);
  const double s_pos = d[pos];
  if (N == 1) { /* no negative, no pair */
    d[0] = 0.0f;
    return 0.0;
  }
  const double pair_scale = (double)grad_scale / ((double)l->tau * (double)(N - 1));
  double term = 0.0, d_pos = 0.0;
  for (int64_t n = 0; n < N; n++) {
    if (n == pos) continue;
    const double a = (s_pos - d[n]) / l->tau;
    term += softplus_neg(a);
    const double dn = sigmoid(-a) * pair_scale;
    d[n] = (float)dn;
    d_pos -= dn;
  }
  d[pos] = (float)d_pos;
  return term / (double)(N - 1);
}

double sr_auc_loss(float *dq, float *dx, const float *q, const float *x, const int64_t *pos, int64_t Bq, int64_t N,
                   int64_t D, float tau, float norm) {
  SR_ASSERT(pos && tau > 0.0f);
  const score_loss l = {.row = auc_row, .pos = pos, .tau = tau};
  return embedding_loss(dq, dx, q, x, Bq, N, D, norm, &l);
}

/* ---- Multi-Similarity -------------------------------------------------------------------------- */

void sr_ms_params_default(sr_ms_params *p) {
  *p = (sr_ms_params){.alpha = 2.0f, .beta = 40.0f, .lambda = 0.5f, .epsilon = 0.1f};
}

/* The mining thresholds of one row: with a single positive, min_pos S = S_pos. */
typedef struct {
  float min_positive, max_negative;
} ms_bounds;

static ms_bounds ms_row_bounds(const float *s, int64_t pos, int64_t N) {
  ms_bounds b = {s[pos], -INFINITY};
  for (int64_t k = 0; k < N; k++)
    if (k != pos && s[k] > b.max_negative) b.max_negative = s[k];
  return b;
}

static int ms_keeps(const float *s, int64_t k, int64_t pos, ms_bounds b, float epsilon) {
  return k == pos ? s[k] < b.max_negative + epsilon : s[k] > b.min_positive - epsilon;
}

void sr_ms_mine(uint8_t *selected, const float *scores, const int64_t *pos, int64_t Bq, int64_t N, float epsilon) {
  for (int64_t i = 0; i < Bq; i++) {
    const float *s = scores + i * N;
    const ms_bounds b = ms_row_bounds(s, pos[i], N);
    for (int64_t k = 0; k < N; k++) selected[i * N + k] = (uint8_t)ms_keeps(s, k, pos[i], b, epsilon);
  }
}

/* A pair is kept if the given mining result (or this row's own mining) says so. */
static int ms_pair_kept(const score_loss *l, const float *s, int64_t i, int64_t N, int64_t k, int64_t pos,
                        ms_bounds b) {
  return l->selected ? l->selected[i * N + k] != 0 : ms_keeps(s, k, pos, b, l->ms.epsilon);
}

/* Positive term (1/alpha) softplus(-alpha (S_pos - lambda)): dS_pos = -sigmoid(-alpha (S_pos - lambda)).
 * Negative term (1/beta) log(1 + sum e^{b_k}), b_k = beta (S_k - lambda), shifted by
 * m = max(0, max b_k): dS_k = e^{b_k - m} / (e^{-m} + sum e^{b_k - m}).
 * The row is overwritten in place: entry k is read (for its term and its
 * selection) before it is written, and the bounds are taken beforehand. */
static double ms_row(float *d, int64_t i, int64_t N, float grad_scale, const score_loss *l) {
  const int64_t pos = positive_of(l, i);
  SR_ASSERT(pos >= 0 && pos < N);
  const sr_ms_params *p = &l->ms;
  const ms_bounds bounds = ms_row_bounds(d, pos, N);
  double shift = 0.0;
  for (int64_t k = 0; k < N; k++)
    if (k != pos && ms_pair_kept(l, d, i, N, k, pos, bounds))
      shift = fmax(shift, p->beta * ((double)d[k] - p->lambda));
  double denom = exp(-shift);
  for (int64_t k = 0; k < N; k++)
    if (k != pos && ms_pair_kept(l, d, i, N, k, pos, bounds))
      denom += exp(p->beta * ((double)d[k] - p->lambda) - shift);
  double term = (shift + log(denom)) / p->beta;
  for (int64_t k = 0; k < N; k++) {
    const int kept = ms_pair_kept(l, d, i, N, k, pos, bounds);
    const double margin = (double)d[k] - p->lambda;
    if (!kept) {
      d[k] = 0.0f;
    } else if (k == pos) {
      const double a = -p->alpha * margin;
      term += softplus_neg(-a) / p->alpha;
      d[k] = (float)(-sigmoid(a) * grad_scale);
    } else {
      d[k] = (float)(exp(p->beta * margin - shift) / denom * grad_scale);
    }
  }
  return term;
}

double sr_ms_loss(float *dq, float *dx, const float *q, const float *x, const int64_t *pos, const uint8_t *selected,
                  int64_t Bq, int64_t N, int64_t D, const sr_ms_params *p, float norm) {
  SR_ASSERT(pos && p->alpha > 0.0f && p->beta > 0.0f);
  const score_loss l = {.row = ms_row, .pos = pos, .selected = selected, .ms = *p};
  return embedding_loss(dq, dx, q, x, Bq, N, D, norm, &l);
}

/* ---- streaming frequency estimator ----------------------------------------------------------------- */

void sr_freq_init(sr_freq_estimator *fe, int64_t n_items, float alpha, float initial_gap) {
  SR_ASSERT(n_items >= 1 && alpha > 0.0f && alpha <= 1.0f && initial_gap > 0.0f);
  fe->n_items = n_items;
  fe->alpha = alpha;
  fe->initial_gap = initial_gap;
  fe->last_step = sr_malloc((size_t)n_items * sizeof *fe->last_step);
  fe->gap = sr_malloc((size_t)n_items * sizeof *fe->gap);
  for (int64_t j = 0; j < n_items; j++) {
    fe->last_step[j] = -1;
    fe->gap[j] = initial_gap;
  }
}

void sr_freq_free(sr_freq_estimator *fe) {
  free(fe->last_step);
  free(fe->gap);
  memset(fe, 0, sizeof *fe);
}

void sr_freq_update(sr_freq_estimator *fe, const int64_t *ids, int64_t n, int64_t step) {
  for (int64_t k = 0; k < n; k++) {
    const int64_t j = ids[k];
    SR_ASSERT(j >= 0 && j < fe->n_items);
    SR_ASSERT(step >= 0 && step >= fe->last_step[j]); /* -1 marks "never seen" */
    if (fe->last_step[j] >= 0)
      fe->gap[j] = (1.0f - fe->alpha) * fe->gap[j] + fe->alpha * (float)(step - fe->last_step[j]);
    fe->last_step[j] = step;
  }
}

void sr_freq_log_prob(float *log_p, const sr_freq_estimator *fe, const int64_t *ids, int64_t n) {
  for (int64_t k = 0; k < n; k++) {
    SR_ASSERT(ids[k] >= 0 && ids[k] < fe->n_items);
    log_p[k] = -logf(fe->gap[ids[k]]);
  }
}

/* ease.c — EASE, the closed-form item-item model (ease.h). */
#include "shardrec/ease.h"

#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/lapack.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"
#include "shardrec/nn.h"

typedef struct {
  sr_model base;
  double lambda;
} ease_model;

int64_t sr_ease_gram_bytes(int64_t n_items) { return n_items * n_items * (int64_t)sizeof(double) / 2 + n_items * 8; }

/* G (I, I) row-major, lower triangle: += the pairs of every row of x
 * (binary: stored values are ignored, as EASE's X is). */
static void add_gram_lower(double *G, const sr_csr *x, int64_t I) {
  for (int64_t r = 0; r < x->n_rows; r++) {
    const int32_t *items = x->indices + x->indptr[r];
    const int64_t n = sr_csr_row_len(x, r);
    for (int64_t a = 0; a < n; a++) {
      double *row = G + (int64_t)items[a] * I;
      for (int64_t b = 0; b < n; b++)
        if (items[b] <= items[a]) row[items[b]] += 1.0;
    }
  }
}

/* Sums each row's lower part (j <= i) of G over the ranks into rank 0: the
 * upper triangle is never touched, so its pages are never allocated. */
static int reduce_gram_to_root(double *G, int64_t I, const sr_dist *dist) {
  for (int64_t i = 0; i < I && dist && dist->size > 1; i++) SR_TRY(sr_dist_sum_to_root_f64(dist, G + i * I, i + 1));
  return SR_OK;
}

/* B from P = G^-1 (lower triangle): B_ij = -P_ij / P_jj, B_ii = 0. */
static void weights_from_inverse(float *B, const double *P, int64_t I) {
  for (int64_t i = 0; i < I; i++)
    for (int64_t j = 0; j < I; j++) {
      const double p_ij = j <= i ? P[i * I + j] : P[j * I + i];
      B[i * I + j] = i == j ? 0.0f : (float)(-p_ij / P[j * I + j]);
    }
}

static int ease_fit(sr_model *m, const sr_dataset *data, const sr_dist *dist) {
  ease_model *e = (ease_model *)m;
  const int64_t I = m->n_items;
  const size_t gram_bytes = (size_t)(I * I) * sizeof(double);
  double *G = sr_lazy_calloc(gram_bytes);
  add_gram_lower(G, &data->train, I);
  int rc = reduce_gram_to_root(G, I, dist);
  const int root = !dist || dist->rank == 0;
  if (rc == SR_OK && root) {
    for (int64_t i = 0; i < I; i++) G[i * I + i] += e->lambda;
    int64_t minor = 0;
    rc = sr_spd_inverse_lower(G, I, &minor);
    if (rc == SR_ENUMERIC && minor > 0)
      rc = SR_FAIL(SR_ENUMERIC,
                   "EASE: X^T X + lambda I is not positive definite (leading minor %lld); raise "
                   "model.ease_lambda (now %g)",
                   (long long)minor, e->lambda);
    if (rc == SR_OK) weights_from_inverse(m->params.items[0].value, G, I);
  }
  sr_lazy_free(G, gram_bytes);
  if (dist) rc = sr_dist_agree(dist, rc);
  SR_TRY(rc);
  return dist ? sr_dist_broadcast_f32(dist, m->params.items[0].value, I * I) : SR_OK;
}

/* scores (R, I) = input (R, I) . B: each fold-in item adds its row of B. */
static void ease_score(sr_model *m, const sr_csr *input, const int64_t *user_ids, float *scores) {
  (void)user_ids;
  sr_csr binary = *input;
  binary.values = NULL; /* X is binary, as in the fit */
  sr_spmm_forward(scores, &binary, NULL, m->params.items[0].value, m->n_items);
}

static int64_t ease_activation_bytes(const sr_model *m, int64_t train_rows, int64_t eval_rows) {
  (void)train_rows;
  (void)eval_rows; /* the score matrix is counted by the memory plan */
  return sr_ease_gram_bytes(m->n_items);
}

static double ease_no_penalty(sr_model *m) {
  (void)m;
  return 0.0;
}

static void ease_destroy(sr_model *m) {
  if (!m) return;
  sr_params_free(&m->params);
  free(m);
}

static const sr_model_ops ease_ops = {.name = "ease",
                                      .samples = SR_SAMPLES_USERS,
                                      .add_param_penalty = ease_no_penalty,
                                      .fit = ease_fit,
                                      .score = ease_score,
                                      .activation_bytes = ease_activation_bytes,
                                      .destroy = ease_destroy};

int sr_ease_create(const sr_config *cfg, int64_t n_items, sr_model **out) {
  if (n_items < 1) return SR_FAIL(SR_EINVAL, "the dataset has no items");
  ease_model *e = sr_calloc(1, sizeof *e);
  e->base.ops = &ease_ops;
  e->base.n_items = n_items;
  e->lambda = cfg->model.ease_lambda;
  sr_params_init(&e->base.params);
  const int64_t shape[2] = {n_items, n_items};
  sr_params_add(&e->base.params, "ease.B", SR_PARAM_WEIGHT, 2, shape);
  sr_params_finalize_sparse_tail(&e->base.params, 0); /* no gradient: B is fitted, not trained */
  *out = &e->base;
  return SR_OK;
}

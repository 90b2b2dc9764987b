/* nn.c — forward/backward math kernels (nn.h). Dense products go through CBLAS. */
#include "shardrec/nn.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>

#include "shardrec/error.h"
#include "shardrec/rng.h"

/* LP64 CBLAS takes int dimensions: check instead of silently truncating. */
static int blas_dim(int64_t n) {
  SR_ASSERT(n >= 0 && n <= INT_MAX);
  return (int)n;
}

/* ---- small vector helpers ------------------------------------------------------ */

double sr_sum_squares(const float *x, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return s;
}

void sr_axpy(float *y, float a, const float *x, int64_t n) {
  /* A parameter arena may exceed INT_MAX elements: feed CBLAS in chunks. */
  while (n > 0) {
    const int64_t chunk = n < INT_MAX ? n : INT_MAX;
    cblas_saxpy(blas_dim(chunk), a, x, 1, y, 1);
    x += chunk;
    y += chunk;
    n -= chunk;
  }
}

int sr_all_finite(const float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* ---- sparse x dense ------------------------------------------------------------- */

void sr_spmm_forward(float *out, const sr_csr *x, const float *values, const float *w, int64_t h) {
  const float *v = values ? values : x->values;
  for (int64_t r = 0; r < x->n_rows; r++) {
    float *restrict row = out + r * h;
    for (int64_t j = 0; j < h; j++) row[j] = 0.0f;
    /* One row of W (C, H) per stored entry: cost O(nnz * H), never O(C * H). */
    for (int64_t k = x->indptr[r]; k < x->indptr[r + 1]; k++)
      sr_axpy(row, v ? v[k] : 1.0f, w + (int64_t)x->indices[k] * h, h);
  }
}

void sr_spmm_backward_weight(float *dw, const sr_csr *x, const float *values, const float *dout, int64_t h) {
  const float *v = values ? values : x->values;
  /* Rows in order, so the float sums into a shared dW row are reproducible. */
  for (int64_t r = 0; r < x->n_rows; r++)
    for (int64_t k = x->indptr[r]; k < x->indptr[r + 1]; k++)
      sr_axpy(dw + (int64_t)x->indices[k] * h, v ? v[k] : 1.0f, dout + r * h, h);
}

/* ---- linear ------------------------------------------------------------------------ */

void sr_linear_forward(float *out, const float *in, const float *w, const float *b, int64_t B, int64_t in_dim,
                       int64_t out_dim) {
  if (B == 0) return;
  /* Seed every row with the bias, then let GEMM accumulate (beta = 1). */
  if (b)
    for (int64_t r = 0; r < B; r++)
      for (int64_t j = 0; j < out_dim; j++) out[r * out_dim + j] = b[j];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blas_dim(B), blas_dim(out_dim), blas_dim(in_dim), 1.0f, in,
              blas_dim(in_dim), w, blas_dim(out_dim), b ? 1.0f : 0.0f, out, blas_dim(out_dim));
}

void sr_linear_backward(float *din, float *dw, float *db, const float *dout, const float *in, const float *w,
                        int64_t B, int64_t in_dim, int64_t out_dim) {
  if (B == 0) return;
  const int m = blas_dim(B), k_in = blas_dim(in_dim), k_out = blas_dim(out_dim);
  if (din) /* (B, IN) += (B, OUT) . (IN, OUT)^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k_in, k_out, 1.0f, dout, k_out, w, k_out, 1.0f, din,
                k_in);
  /* (IN, OUT) += (B, IN)^T . (B, OUT) */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k_in, k_out, m, 1.0f, in, k_in, dout, k_out, 1.0f, dw, k_out);
  if (db)
    for (int64_t r = 0; r < B; r++) sr_axpy(db, 1.0f, dout + r * out_dim, out_dim);
}

/* ---- activations ------------------------------------------------------------------- */

void sr_tanh_forward(float *out, const float *in, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = tanhf(in[i]);
}

void sr_tanh_backward(float *restrict din, const float *restrict dout, const float *restrict out, int64_t n) {
  for (int64_t i = 0; i < n; i++) din[i] += dout[i] * (1.0f - out[i] * out[i]);
}

void sr_relu_forward(float *out, const float *in, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void sr_relu_backward(float *restrict din, const float *restrict dout, const float *restrict out, int64_t n) {
  for (int64_t i = 0; i < n; i++) din[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

/* ---- row L2 normalisation ------------------------------------------------------------ */

void sr_l2norm_forward(float *out, float *norms, const float *in, int64_t R, int64_t D, float eps) {
  for (int64_t r = 0; r < R; r++) {
    const float norm = fmaxf((float)sqrt(sr_sum_squares(in + r * D, D)), eps);
    norms[r] = norm;
    const float inv = 1.0f / norm;
    for (int64_t j = 0; j < D; j++) out[r * D + j] = in[r * D + j] * inv;
  }
}

void sr_l2norm_backward(float *din, const float *dout, const float *out, const float *norms, int64_t R, int64_t D,
                        float eps) {
  for (int64_t r = 0; r < R; r++) {
    float *restrict dx = din + r * D;
    const float *restrict dy = dout + r * D, *restrict y = out + r * D;
    const float inv = 1.0f / norms[r];
    /* A clamped row is in / eps: linear, so the projection term vanishes. */
    float dot = 0.0f;
    if (norms[r] > eps)
      for (int64_t j = 0; j < D; j++) dot += dy[j] * y[j];
    for (int64_t j = 0; j < D; j++) dx[j] += (dy[j] - y[j] * dot) * inv;
  }
}

void sr_csr_l2norm_values(float *values_out, const sr_csr *x) {
  for (int64_t r = 0; r < x->n_rows; r++) {
    const int64_t begin = x->indptr[r], end = x->indptr[r + 1];
    double ss = 0.0;
    for (int64_t k = begin; k < end; k++) ss += (double)sr_csr_value(x, k) * sr_csr_value(x, k);
    const float inv = ss > 0.0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
    for (int64_t k = begin; k < end; k++) values_out[k] = sr_csr_value(x, k) * inv;
  }
}

/* ---- inverted dropout ------------------------------------------------------------------ */

static float dropout_scale(float p) {
  SR_ASSERT(p >= 0.0f && p < 1.0f);
  return 1.0f / (1.0f - p);
}

void sr_dropout_forward(float *out, float *mask, const float *in, int64_t R, int64_t D, float p, uint64_t seed,
                        uint32_t purpose, uint64_t step, const int64_t *sample_ids) {
  const float scale = dropout_scale(p);
  for (int64_t r = 0; r < R; r++) {
    sr_rng rng;
    sr_rng_init(&rng, seed, purpose, step, (uint64_t)sample_ids[r]);
    for (int64_t j = r * D; j < (r + 1) * D; j++) {
      mask[j] = sr_rng_uniform(&rng) < p ? 0.0f : scale;
      out[j] = in[j] * mask[j];
    }
  }
}

void sr_dropout_backward(float *restrict din, const float *restrict dout, const float *restrict mask, int64_t n) {
  for (int64_t i = 0; i < n; i++) din[i] += dout[i] * mask[i];
}

void sr_csr_dropout_values(float *values, const sr_csr *x, float p, uint64_t seed, uint32_t purpose, uint64_t step,
                           const int64_t *sample_ids) {
  const float scale = dropout_scale(p);
  for (int64_t r = 0; r < x->n_rows; r++) {
    sr_rng rng;
    sr_rng_init(&rng, seed, purpose, step, (uint64_t)sample_ids[r]);
    for (int64_t k = x->indptr[r]; k < x->indptr[r + 1]; k++)
      values[k] = sr_rng_uniform(&rng) < p ? 0.0f : values[k] * scale;
  }
}

/* ---- multinomial log-likelihood ------------------------------------------------------------ */

/* One row (C): returns -sum_i x_i log_softmax(l)_i (not yet divided by norm) and
 * writes d = (softmax(l) * sum_x - x) * inv_norm. d may alias l. */
static double softmax_nll_row(float *d, const float *l, const sr_csr *targets, int64_t r, int64_t C, float inv_norm) {
  const int64_t begin = targets->indptr[r], end = targets->indptr[r + 1];
  /* Read the target logits before d (possibly l itself) is overwritten. */
  double sum_x = 0.0, dot_xl = 0.0;
  for (int64_t k = begin; k < end; k++) {
    const double xk = sr_csr_value(targets, k);
    sum_x += xk;
    dot_xl += xk * l[targets->indices[k]];
  }
  float max = l[0];
  for (int64_t i = 1; i < C; i++) max = l[i] > max ? l[i] : max;
  /* Shifted exponentials are in (0, 1]: no overflow; the sum in double keeps
   * 20000 small terms exact enough for the log. */
  double sum_exp = 0.0;
  for (int64_t i = 0; i < C; i++) {
    d[i] = expf(l[i] - max);
    sum_exp += d[i];
  }
  const double log_sum_exp = max + log(sum_exp);
  const float prob_scale = (float)(sum_x / sum_exp) * inv_norm;
  for (int64_t i = 0; i < C; i++) d[i] *= prob_scale;
  for (int64_t k = begin; k < end; k++) d[targets->indices[k]] -= sr_csr_value(targets, k) * inv_norm;
  /* -sum_i x_i (l_i - lse) */
  return sum_x * log_sum_exp - dot_xl;
}

double sr_softmax_nll(float *dlogits, const float *logits, const sr_csr *targets, int64_t R, int64_t C, float norm) {
  const float inv_norm = 1.0f / norm;
  double total = 0.0;
  for (int64_t r = 0; r < R; r++) total += softmax_nll_row(dlogits + r * C, logits + r * C, targets, r, C, inv_norm);
  return total / norm;
}

/* ---- Gaussian KL to N(0, I) ------------------------------------------------------------------ */

double sr_gaussian_kl(float *dmu, float *dlogvar, const float *mu, const float *logvar, int64_t R, int64_t K,
                      float norm, float scale) {
  const int64_t n = R * K;
  const float grad_scale = scale / norm;
  double kl = 0.0;
  for (int64_t i = 0; i < n; i++) {
    const float var = expf(logvar[i]);
    kl += 0.5 * (-(double)logvar[i] + var + (double)mu[i] * mu[i] - 1.0);
    if (dmu) dmu[i] += grad_scale * mu[i];
    if (dlogvar) dlogvar[i] += grad_scale * 0.5f * (var - 1.0f);
  }
  return kl / norm;
}

/* ---- reparameterisation -------------------------------------------------------------------- */

void sr_reparam_forward(float *z, float *eps, const float *mu, const float *logvar, int64_t R, int64_t K,
                        uint64_t seed, uint64_t step, const int64_t *sample_ids) {
  for (int64_t r = 0; r < R; r++) {
    sr_rng rng;
    sr_rng_init(&rng, seed, SR_RNG_NOISE, step, (uint64_t)sample_ids[r]);
    for (int64_t i = r * K; i < (r + 1) * K; i++) {
      eps[i] = sr_rng_normal(&rng);
      z[i] = mu[i] + eps[i] * expf(0.5f * logvar[i]);
    }
  }
}

void sr_reparam_backward(float *restrict dmu, float *restrict dlogvar, const float *restrict dz,
                         const float *restrict eps, const float *restrict logvar, int64_t R, int64_t K) {
  const int64_t n = R * K;
  for (int64_t i = 0; i < n; i++) {
    dmu[i] += dz[i];
    dlogvar[i] += dz[i] * eps[i] * 0.5f * expf(0.5f * logvar[i]);
  }
}

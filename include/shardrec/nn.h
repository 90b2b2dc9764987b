/*
 * nn.h — math kernels with explicit forward and backward passes (llm.c style).
 *
 * Conventions:
 *  - Row-major float32. Shapes are given in the comments: (B, D) = B rows of D.
 *  - Linear weights are stored (in, out): out = in . W + b, so the first layer's
 *    sparse product gathers rows of W (one per clicked item).
 *  - Backward kernels ACCUMULATE (+=) into every gradient they produce, for
 *    parameters and activations alike; the caller zeroes activation-gradient
 *    buffers. Loss kernels WRITE (=) the gradient of the loss they compute.
 *  - Losses are "sum over rows / norm": pass norm = the global batch size so
 *    that per-rank gradients summed over ranks equal the global-batch gradient.
 *  - Randomness is keyed per row by its global sample index (rng.h), never by
 *    position in the batch or by rank.
 *  - Dense products go through CBLAS; nothing here densifies a sparse input.
 */
#ifndef SHARDREC_NN_H
#define SHARDREC_NN_H

#include <stdint.h>

#include "shardrec/csr.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- sparse x dense --------------------------------------------------------
 * out (R, H) = X (R, C) . W (C, H), X sparse CSR with values (or binary).
 * `values` overrides X->values when non-NULL (e.g. normalised + dropped-out). */
void sr_spmm_forward(float *out, const sr_csr *x, const float *values, const float *w, int64_t h);
/* dW (C, H) += X^T (C, R) . dOut (R, H). Deterministic: rows in order.
 * Both products sum each element's terms in X's row order, whatever the
 * thread count and the vector width (sr_simd_select). */
void sr_spmm_backward_weight(float *dw, const sr_csr *x, const float *values, const float *dout, int64_t h);

/* ---- linear ----------------------------------------------------------------
 * out (B, OUT) = in (B, IN) . W (IN, OUT) + b (OUT); b may be NULL. */
void sr_linear_forward(float *out, const float *in, const float *w, const float *b, int64_t B, int64_t in_dim,
                       int64_t out_dim);
/* din (B, IN) += dout . W^T   (skipped when din == NULL)
 * dW (IN, OUT) += in^T . dout
 * db (OUT)     += column sums of dout (skipped when db == NULL) */
void sr_linear_backward(float *din, float *dw, float *db, const float *dout, const float *in, const float *w,
                        int64_t B, int64_t in_dim, int64_t out_dim);

/* ---- activations (elementwise, n elements) ---------------------------------- */
/* out = tanh(in), within 7 ulp of the exact value (a rational function,
 * vectorised: the same bits on every machine and vector width,
 * sr_simd_select). out may alias in. */
void sr_tanh_forward(float *out, const float *in, int64_t n);
/* din += dout * (1 - out^2), from the forward output. */
void sr_tanh_backward(float *din, const float *dout, const float *out, int64_t n);
void sr_relu_forward(float *out, const float *in, int64_t n);
/* din += dout * [out > 0] */
void sr_relu_backward(float *din, const float *dout, const float *out, int64_t n);

/* ---- row L2 normalisation ---------------------------------------------------
 * out[r] = in[r] / max(||in[r]||, eps); norms (R) keeps max(||in[r]||, eps). */
void sr_l2norm_forward(float *out, float *norms, const float *in, int64_t R, int64_t D, float eps);
/* din += (dout - out * <dout, out>) / norm  (rows whose norm was clamped to eps:
 * din += dout / eps). */
void sr_l2norm_backward(float *din, const float *dout, const float *out, const float *norms, int64_t R, int64_t D,
                        float eps);
/* Sparse input side: values_out[k] = x_k / ||x_row|| (0-norm rows stay 0).
 * The input has no gradient, so there is no backward. */
void sr_csr_l2norm_values(float *values_out, const sr_csr *x);

/* ---- inverted dropout --------------------------------------------------------
 * mask (R, D) gets 0 or 1/(1-p); out = in * mask. Row r draws from the stream
 * (seed, purpose, step, sample_ids[r]), `purpose` = SR_RNG_DROPOUT + 256*layer.
 * p == 0 gives an all-ones mask. */
void sr_dropout_forward(float *out, float *mask, const float *in, int64_t R, int64_t D, float p, uint64_t seed,
                        uint32_t purpose, uint64_t step, const int64_t *sample_ids);
/* din += dout * mask */
void sr_dropout_backward(float *din, const float *dout, const float *mask, int64_t n);
/* Dropout of the nonzeros of a CSR batch, in place on `values` (nnz): the k-th
 * stored entry of row r uses the k-th draw of row r's stream. A dropped entry
 * is set to 0 (the structure is kept), a kept one is scaled by 1/(1-p). */
void sr_csr_dropout_values(float *values, const sr_csr *x, float p, uint64_t seed, uint32_t purpose, uint64_t step,
                           const int64_t *sample_ids);

/* ---- multinomial log-likelihood --------------------------------------------
 * logits (R, C); targets X (R, C) sparse counts/weights (binary if no values).
 * Returns  sum_r [ -sum_i x_ri * log_softmax(logits_r)_i ] / norm   and WRITES
 * dlogits (R, C) = (softmax(logits_r) * sum_i x_ri - x_r) / norm.
 * dlogits may alias logits (computed in place). */
double sr_softmax_nll(float *dlogits, const float *logits, const sr_csr *targets, int64_t R, int64_t C, float norm);
/* The same for one row in pieces, for rows whose columns are split among
 * ranks (item_parallel.h), which combine their pieces between the steps. */
typedef struct {
  double sum_x;   /* sum_i x_i */
  double dot_xl;  /* sum_i x_i l_i */
  float max;      /* max_i l_i */
  double sum_exp; /* sum_i exp(l_i - max) */
} sr_softmax_row;
/* row->sum_x and row->dot_xl of row r of targets against its logits l (C). */
void sr_softmax_target_sums(sr_softmax_row *row, const float *l, const sr_csr *targets, int64_t r);
/* With every field of row known and d (C) = exp(l - row->max) (sr_exp_shifted):
 * overwrites d with the row's dlogits and returns its loss (not divided by norm). */
double sr_softmax_nll_finish_row(float *d, int64_t C, const sr_csr *targets, int64_t r, const sr_softmax_row *row,
                                 float inv_norm);

/* ---- Gaussian KL to N(0, I) --------------------------------------------------
 * mu, logvar (R, K). Returns KL = sum_r sum_k 0.5(-lv + e^lv + mu^2 - 1) / norm
 * and accumulates scale * dKL: dmu += scale*mu/norm, dlogvar += scale*0.5(e^lv - 1)/norm.
 * (scale = beta; dmu/dlogvar may be NULL when only the value is needed.) */
double sr_gaussian_kl(float *dmu, float *dlogvar, const float *mu, const float *logvar, int64_t R, int64_t K,
                      float norm, float scale);

/* ---- reparameterisation ------------------------------------------------------
 * z = mu + eps * exp(0.5 * logvar), eps ~ N(0,1) drawn per row from
 * (seed, SR_RNG_NOISE, step, sample_ids[r]) and stored in eps (R, K). */
void sr_reparam_forward(float *z, float *eps, const float *mu, const float *logvar, int64_t R, int64_t K,
                        uint64_t seed, uint64_t step, const int64_t *sample_ids);
/* dmu += dz;  dlogvar += dz * eps * 0.5 * exp(0.5 * logvar) */
void sr_reparam_backward(float *dmu, float *dlogvar, const float *dz, const float *eps, const float *logvar,
                         int64_t R, int64_t K);

/* ---- vector helpers ------------------------------------------------------------
 * max of x (n >= 1), with independent lanes (one running max is a long
 * dependency chain). */
float sr_max(const float *x, int64_t n);
/* out[i] = exp(x[i] - shift) for x[i] <= shift, vectorised (relative error
 * < 1e-6 + |x[i] - shift| * 2e-7, the second term from rounding the exponent;
 * values below exp(-86) are flushed to about 1e-38); returns the sum
 * (lanes in float, blocks added in double). out may alias x. Runs with the
 * widest vectors the CPU has (sr_simd_select) and gives the same bits with
 * any of them. */
double sr_exp_shifted(float *out, const float *x, int64_t n, float shift);

/* Vector widths of the run-time dispatched kernels (sr_exp_shifted, tanh,
 * the sparse products). */
typedef enum { SR_SIMD_BASELINE, SR_SIMD_AVX2, SR_SIMD_AVX512, SR_SIMD_COUNT } sr_simd_level;
/* Makes the kernels use `level`; returns 0, or -1 (nothing changed) when the
 * CPU lacks it. The default is the best level the CPU has; every level gives
 * bit-identical results, so this is for tests and benchmarks only. */
int sr_simd_select(sr_simd_level level);
sr_simd_level sr_simd_selected(void);

/* Sum of squares of x (n), in double. */
double sr_sum_squares(const float *x, int64_t n);
/* sums (D) += column sums of x (R, D); e.g. a bias gradient. */
void sr_column_sums_acc(float *sums, const float *x, int64_t R, int64_t D);
/* y += a * x (n). */
void sr_axpy(float *y, float a, const float *x, int64_t n);

#ifdef __cplusplus
}
#endif
#endif

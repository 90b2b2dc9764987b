/*
 * cu_nn.h — the device twins of the nn.h kernels (not installed).
 *
 * Same names with cu_ for sr_, same shapes, same conventions (row-major fp32,
 * backward kernels ACCUMULATE, loss kernels WRITE their gradient, randomness
 * keyed per row by the global sample id), so src/cuda/vae.cu reads like
 * src/models/vae.c. Every pointer is device memory unless said otherwise;
 * everything is enqueued on ctx->stream and nothing synchronises.
 *
 * What differs, and why:
 *  - losses write one double per row (row_loss) instead of returning the sum:
 *    the caller adds the rows on the host in row order (deterministic, and no
 *    synchronisation inside the step);
 *  - the sparse weight gradient takes the batch already transposed (x_t, the
 *    CSR of X^T, with its values in x_t's entry order): cuSPARSE's transposed
 *    SpMM accumulates in an unspecified order, the non-transposed one is
 *    bitwise reproducible, which bit-exact resume needs;
 *  - random draws take the stream key (sr_rng's key for (seed, purpose),
 *    cu_rng_key) so every thread derives its Philox block without a generator.
 * Tests compare each of these with its CPU kernel (tests/gpu/test_gpu_kernels.cpp).
 */
#ifndef SHARDREC_CU_NN_H
#define SHARDREC_CU_NN_H

#include <stdint.h>

#include "cu_internal.h"
#include "shardrec/csr.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A CSR batch on the device: 32-bit row offsets and columns (cuSPARSE wants
 * one index type; a batch's nonzeros fit 32 bits by far). */
typedef struct {
  int64_t n_rows, n_cols, nnz;
  int32_t *indptr;  /* [n_rows + 1] */
  int32_t *indices; /* [nnz] */
  float *values;    /* [nnz] or NULL (binary) */
} cu_csr;

/* The Philox key of the stream family (seed, purpose), as sr_rng_init derives it. */
typedef struct {
  uint32_t k0, k1;
} cu_rng_key;
cu_rng_key cu_rng_key_for(uint64_t seed, uint32_t purpose);
/* Draw j as a uniform, and normal i, of the stream (key, step, sample), as
 * the kernels compute them (the same host/device functions), callable on the
 * host: tests check them against rng.h's streams without a GPU. */
float cu_rng_uniform_at(cu_rng_key key, uint64_t step, uint64_t sample, int64_t j);
float cu_rng_normal_at(cu_rng_key key, uint64_t step, uint64_t sample, int64_t i);

/* ---- sparse x dense ------------------------------------------------------------------
 * out (R, H) = X (R, C) . W (C, H), with `values` (nnz) as X's values. */
void cu_spmm_forward(cu_ctx *c, float *out, const cu_csr *x, const float *values, const float *w, int64_t h);
/* dW (C, H) += X^T . dOut, given x_t = X^T (C, R) as CSR and values_t (its nnz). */
void cu_spmm_backward_weight(cu_ctx *c, float *dw, const cu_csr *x_t, const float *values_t, const float *dout,
                             int64_t h);
/* On the host: X^T of x as CSR (n_cols + 1 offsets, nnz rows), rows ascending
 * within each column, and perm[k] = the entry of x that entry k of X^T is. */
void cu_csr_transpose_host(const sr_csr *x, int32_t *indptr_t, int32_t *indices_t, int32_t *perm);
/* values_t[k] = values[perm[k]] (nnz): a batch's values in the entry order of its transpose. */
void cu_gather_values(cu_ctx *c, float *values_t, const float *values, const int32_t *perm, int64_t nnz);

/* ---- linear (cuBLAS; run.precision picks the math) ----------------------------------
 * out (B, OUT) = in (B, IN) . W (IN, OUT) + b (OUT); b may be NULL. */
void cu_linear_forward(cu_ctx *c, float *out, const float *in, const float *w, const float *b, int64_t B,
                       int64_t in_dim, int64_t out_dim);
/* din (B, IN) += dout . W^T (skipped when din == NULL); dW += in^T . dout;
 * db += column sums of dout (skipped when db == NULL). */
void cu_linear_backward(cu_ctx *c, float *din, float *dw, float *db, const float *dout, const float *in,
                        const float *w, int64_t B, int64_t in_dim, int64_t out_dim);

/* ---- elementwise and row helpers ---------------------------------------------------- */
void cu_tanh_forward(cu_ctx *c, float *out, const float *in, int64_t n);
/* din += dout * (1 - out^2) */
void cu_tanh_backward(cu_ctx *c, float *din, const float *dout, const float *out, int64_t n);
/* out (R, D) += bias (D) on every row. */
void cu_add_bias_rows(cu_ctx *c, float *out, const float *bias, int64_t R, int64_t D);
/* sums (D) += column sums of x (R, D), each column in row order. */
void cu_column_sums_acc(cu_ctx *c, float *sums, const float *x, int64_t R, int64_t D);
/* y += a * x (n). */
void cu_axpy(cu_ctx *c, float *y, float a, const float *x, int64_t n);
/* Sum of squares of x (n), in double; synchronises (it returns a host value). */
double cu_sum_squares(cu_ctx *c, const float *x, int64_t n);

/* ---- the sparse input --------------------------------------------------------------------
 * values_out[k] = x_k / ||x_row|| (0-norm rows stay 0). */
void cu_csr_l2norm_values(cu_ctx *c, float *values_out, const cu_csr *x);
/* Inverted dropout of the nonzeros, in place: entry j of row r uses draw j of
 * the stream (key, step, sample_ids[r]) — sr_csr_dropout_values' masks. */
void cu_csr_dropout_values(cu_ctx *c, float *values, const cu_csr *x, float p, cu_rng_key key, uint64_t step,
                           const int64_t *sample_ids);

/* ---- multinomial log-likelihood (fused softmax + NLL over the item dimension) --------
 * row_loss[r] = -sum_i x_ri log_softmax(logits_r)_i (not divided by norm) and
 * dlogits (R, C) = (softmax(logits_r) * sum_i x_ri - x_r) / norm; dlogits may alias logits. */
void cu_softmax_nll(cu_ctx *c, float *dlogits, const float *logits, const cu_csr *targets, int64_t R, int64_t C,
                    float norm, double *row_loss);

/* ---- Gaussian KL to N(0, I) -----------------------------------------------------------------
 * row_kl[r] = sum_k 0.5(-lv + e^lv + mu^2 - 1) (not divided by norm);
 * dmu += scale*mu/norm, dlogvar += scale*0.5(e^lv - 1)/norm. */
void cu_gaussian_kl(cu_ctx *c, float *dmu, float *dlogvar, const float *mu, const float *logvar, int64_t R, int64_t K,
                    float norm, float scale, double *row_kl);

/* ---- reparameterisation -----------------------------------------------------------------
 * z = mu + eps * exp(0.5 logvar), eps (R, K) ~ N(0,1) from the stream
 * (key(seed, SR_RNG_NOISE), step, sample_ids[r]): sr_rng_normal's Box-Muller pairs. */
void cu_reparam_forward(cu_ctx *c, float *z, float *eps, const float *mu, const float *logvar, int64_t R, int64_t K,
                        cu_rng_key key, uint64_t step, const int64_t *sample_ids);
/* dmu += dz; dlogvar += dz * eps * 0.5 * exp(0.5 logvar) */
void cu_reparam_backward(cu_ctx *c, float *dmu, float *dlogvar, const float *dz, const float *eps,
                         const float *logvar, int64_t R, int64_t K);

/* ---- Adam / AdamW ------------------------------------------------------------------------------
 * One fused pass over n elements of the arenas: the update of sr_optim_step_ranges
 * (coupled_wd = Adam's L2 term, decay = AdamW's 1 - lr*wd), gradients zeroed,
 * non-finite gradients counted into *non_finite (device counter). */
typedef struct {
  float lr, beta1, beta2, eps, bias_correction1, bias_correction2, coupled_wd, decay;
} cu_adam_args;
void cu_adam(cu_ctx *c, float *w, float *m, float *v, float *g, int64_t n, cu_adam_args a,
             unsigned long long *non_finite);

#ifdef __cplusplus
}
#endif
#endif

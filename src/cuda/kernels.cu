/* kernels.cu — the device twins of the nn.h kernels (cu_nn.h). */
#include <math.h>
#include <string.h>

#include "cu_nn.h"
#include "shardrec/device.h"
#include "shardrec/error.h"
#include "shardrec/rng.h"

/* Threads per block of the elementwise kernels and of the row kernels (one
 * block per row: a row's reductions stay in one block, in a fixed order). */
#define ELEMENT_THREADS 256
#define ROW_THREADS 512

static unsigned element_blocks(int64_t n) {
  const int64_t blocks = (n + ELEMENT_THREADS - 1) / ELEMENT_THREADS;
  SR_ASSERT(blocks <= 0x7fffffff);
  return (unsigned)blocks;
}

/* ---- block reductions ------------------------------------------------------------------
 * Every thread of the block gets the result. The tree's shape depends only on
 * blockDim, so results are bitwise reproducible. */
struct sum_op {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};
struct max_op {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

template <typename T, typename Op>
__device__ T block_reduce(T v, Op op, T identity) {
  __shared__ T lanes[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = (blockDim.x + 31) / 32;
  for (int offset = 16; offset > 0; offset /= 2) v = op(v, __shfl_down_sync(0xffffffffu, v, offset));
  if (lane == 0) lanes[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < n_warps ? lanes[lane] : identity;
    for (int offset = 16; offset > 0; offset /= 2) v = op(v, __shfl_down_sync(0xffffffffu, v, offset));
    if (lane == 0) lanes[0] = v;
  }
  __syncthreads();
  const T result = lanes[0];
  __syncthreads(); /* lanes may be reused by the next reduction */
  return result;
}

/* ---- Philox4x32-10, bit for bit sr_philox4x32 (rng.c) --------------------------------- */

__host__ __device__ static void philox4x32(uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1, uint32_t c2,
                                           uint32_t c3, uint32_t out[4]) {
  for (int round = 0; round < 10; round++) {
    const uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1;
    const uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* The Philox block `block` of the stream (key, step, sample): sr_rng's
 * counter is (block, step, sample low, sample high), draw j is word j % 4 of
 * block j / 4. */
__host__ __device__ static void stream_block(cu_rng_key key, uint32_t block, uint64_t step, uint64_t sample,
                                             uint32_t out[4]) {
  philox4x32(key.k0, key.k1, block, (uint32_t)step, (uint32_t)sample, (uint32_t)(sample >> 32), out);
}

/* Uniform in [0, 1) from a draw, as sr_rng_uniform. */
__host__ __device__ static float uniform_of(uint32_t draw) { return (float)(draw >> 8) * (1.0f / 16777216.0f); }

/* Normal i of the stream: half of Box-Muller pair i / 2, which consumes draws
 * i - i % 2 and i - i % 2 + 1 (both in one Philox block); even i take the
 * cosine, odd i the sine, as sr_rng_normal returns them. */
__host__ __device__ static float normal_draw(cu_rng_key key, uint64_t step, uint64_t sample, int64_t i) {
  const int64_t first_draw = i - i % 2;
  uint32_t block[4];
  stream_block(key, (uint32_t)(first_draw / 4), step, sample, block);
  const double u1 = ((double)(block[first_draw % 4] >> 8) + 1.0) * (1.0 / 16777216.0); /* (0, 1] */
  const double u2 = (double)(block[first_draw % 4 + 1] >> 8) * (1.0 / 16777216.0);
  const double radius = sqrt(-2.0 * log(u1)), angle = 6.283185307179586 * u2;
  return (float)(i % 2 == 0 ? radius * cos(angle) : radius * sin(angle));
}

float cu_rng_uniform_at(cu_rng_key key, uint64_t step, uint64_t sample, int64_t j) {
  uint32_t block[4];
  stream_block(key, (uint32_t)(j / 4), step, sample, block);
  return uniform_of(block[j % 4]);
}

float cu_rng_normal_at(cu_rng_key key, uint64_t step, uint64_t sample, int64_t i) {
  return normal_draw(key, step, sample, i);
}

cu_rng_key cu_rng_key_for(uint64_t seed, uint32_t purpose) {
  sr_rng r;
  sr_rng_init(&r, seed, purpose, 0, 0);
  return cu_rng_key{r.key[0], r.key[1]};
}

/* ---- sparse x dense (cuSPARSE) ------------------------------------------------------------- */

/* C (m, h) = A . B (k, h) + beta * C, A sparse CSR (m, k): the non-transposed
 * SpMM, bitwise reproducible run to run. Dense matrices row-major. */
static void csr_times_dense(cu_ctx *c, float *out, const cu_csr *a, const float *values, const float *b, int64_t h,
                            float beta) {
  if (a->n_rows == 0 || h == 0) return;
  if (a->nnz == 0) {
    if (beta == 0.0f) CUDA_CHECK(cudaMemsetAsync(out, 0, (size_t)(a->n_rows * h) * sizeof(float), c->stream));
    return;
  }
  cusparseConstSpMatDescr_t mat_a;
  cusparseConstDnMatDescr_t mat_b;
  cusparseDnMatDescr_t mat_c;
  CUSPARSE_CHECK(cusparseCreateConstCsr(&mat_a, a->n_rows, a->n_cols, a->nnz, a->indptr, a->indices, values,
                                        CUSPARSE_INDEX_32I, CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO,
                                        CUDA_R_32F));
  CUSPARSE_CHECK(cusparseCreateConstDnMat(&mat_b, a->n_cols, h, h, b, CUDA_R_32F, CUSPARSE_ORDER_ROW));
  CUSPARSE_CHECK(cusparseCreateDnMat(&mat_c, a->n_rows, h, h, out, CUDA_R_32F, CUSPARSE_ORDER_ROW));
  const float alpha = 1.0f;
  size_t bytes = 0;
  const cusparseOperation_t op = CUSPARSE_OPERATION_NON_TRANSPOSE;
  CUSPARSE_CHECK(cusparseSpMM_bufferSize(c->sparse, op, op, &alpha, mat_a, mat_b, &beta, mat_c, CUDA_R_32F,
                                         CUSPARSE_SPMM_ALG_DEFAULT, &bytes));
  void *work = cu_buffer_reserve(&c->sparse_work, bytes > 0 ? bytes : 1);
  CUSPARSE_CHECK(cusparseSpMM(c->sparse, op, op, &alpha, mat_a, mat_b, &beta, mat_c, CUDA_R_32F,
                              CUSPARSE_SPMM_ALG_DEFAULT, work));
  CUSPARSE_CHECK(cusparseDestroySpMat(mat_a));
  CUSPARSE_CHECK(cusparseDestroyDnMat(mat_b));
  CUSPARSE_CHECK(cusparseDestroyDnMat(mat_c));
}

void cu_spmm_forward(cu_ctx *c, float *out, const cu_csr *x, const float *values, const float *w, int64_t h) {
  csr_times_dense(c, out, x, values, w, h, 0.0f);
}

void cu_spmm_backward_weight(cu_ctx *c, float *dw, const cu_csr *x_t, const float *values_t, const float *dout,
                             int64_t h) {
  csr_times_dense(c, dw, x_t, values_t, dout, h, 1.0f);
}

void cu_csr_transpose_host(const sr_csr *x, int32_t *indptr_t, int32_t *indices_t, int32_t *perm) {
  const int64_t C = x->n_cols;
  SR_ASSERT(x->nnz <= 0x7fffffff);
  /* Counting sort by column: count, prefix-sum into starts, then fill, which
   * moves each start to the next column's; shifting back restores them. */
  memset(indptr_t, 0, (size_t)(C + 1) * sizeof *indptr_t);
  for (int64_t k = 0; k < x->nnz; k++) indptr_t[x->indices[k] + 1]++;
  for (int64_t col = 0; col < C; col++) indptr_t[col + 1] += indptr_t[col];
  for (int64_t r = 0; r < x->n_rows; r++) {
    for (int64_t k = x->indptr[r]; k < x->indptr[r + 1]; k++) {
      const int32_t at = indptr_t[x->indices[k]]++;
      indices_t[at] = (int32_t)r;
      perm[at] = (int32_t)k;
    }
  }
  for (int64_t col = C; col > 0; col--) indptr_t[col] = indptr_t[col - 1];
  indptr_t[0] = 0;
}

__global__ static void gather_kernel(float *out, const float *in, const int32_t *perm, int64_t n) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = in[perm[i]];
}

void cu_gather_values(cu_ctx *c, float *values_t, const float *values, const int32_t *perm, int64_t nnz) {
  if (nnz == 0) return;
  gather_kernel<<<element_blocks(nnz), ELEMENT_THREADS, 0, c->stream>>>(values_t, values, perm, nnz);
  CUDA_CHECK_LAUNCH();
}

/* ---- linear (cuBLAS) ---------------------------------------------------------------------------
 * cuBLAS is column-major: a row-major (r, c) matrix is its transpose (c, r)
 * with leading dimension c, so each row-major product below is computed as
 * the product of the transposes in reverse order. */

static cublasComputeType_t compute_type(int precision) {
  switch (precision) {
    case SR_PRECISION_TF32:
      return CUBLAS_COMPUTE_32F_FAST_TF32;
    case SR_PRECISION_BF16:
      return CUBLAS_COMPUTE_32F_FAST_16BF; /* bf16 tensor cores on fp32 data, fp32 accumulation */
    default:
      return CUBLAS_COMPUTE_32F; /* exact fp32: no TF32 */
  }
}

static int blas_dim(int64_t n) {
  SR_ASSERT(n >= 0 && n <= 0x7fffffff);
  return (int)n;
}

/* Column-major C (m, n) = op(A) op(B) + beta C. */
static void gemm(cu_ctx *c, cublasOperation_t op_a, cublasOperation_t op_b, int64_t m, int64_t n, int64_t k,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *out, int64_t ldc) {
  const float alpha = 1.0f;
  CUBLAS_CHECK(cublasGemmEx(c->blas, op_a, op_b, blas_dim(m), blas_dim(n), blas_dim(k), &alpha, a, CUDA_R_32F,
                            blas_dim(lda), b, CUDA_R_32F, blas_dim(ldb), &beta, out, CUDA_R_32F, blas_dim(ldc),
                            compute_type(c->precision), CUBLAS_GEMM_DEFAULT));
}

void cu_linear_forward(cu_ctx *c, float *out, const float *in, const float *w, const float *b, int64_t B,
                       int64_t in_dim, int64_t out_dim) {
  if (B == 0) return;
  /* out^T (OUT, B) = W^T (OUT, IN) . in^T (IN, B) */
  gemm(c, CUBLAS_OP_N, CUBLAS_OP_N, out_dim, B, in_dim, w, out_dim, in, in_dim, 0.0f, out, out_dim);
  if (b) cu_add_bias_rows(c, out, b, B, out_dim);
}

void cu_linear_backward(cu_ctx *c, float *din, float *dw, float *db, const float *dout, const float *in,
                        const float *w, int64_t B, int64_t in_dim, int64_t out_dim) {
  if (B == 0) return;
  /* din^T (IN, B) += W (IN, OUT) . dout^T (OUT, B); W is stored as W^T (OUT, IN) */
  if (din) gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, in_dim, B, out_dim, w, out_dim, dout, out_dim, 1.0f, din, in_dim);
  /* dW^T (OUT, IN) += dout^T (OUT, B) . in (B, IN); in is stored as in^T (IN, B) */
  gemm(c, CUBLAS_OP_N, CUBLAS_OP_T, out_dim, in_dim, B, dout, out_dim, in, in_dim, 1.0f, dw, out_dim);
  if (db) cu_column_sums_acc(c, db, dout, B, out_dim);
}

/* ---- elementwise and row helpers ----------------------------------------------------------- */

__global__ static void tanh_forward_kernel(float *out, const float *in, int64_t n) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = tanhf(in[i]);
}

void cu_tanh_forward(cu_ctx *c, float *out, const float *in, int64_t n) {
  if (n == 0) return;
  tanh_forward_kernel<<<element_blocks(n), ELEMENT_THREADS, 0, c->stream>>>(out, in, n);
  CUDA_CHECK_LAUNCH();
}

__global__ static void tanh_backward_kernel(float *din, const float *dout, const float *out, int64_t n) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) din[i] += dout[i] * (1.0f - out[i] * out[i]);
}

void cu_tanh_backward(cu_ctx *c, float *din, const float *dout, const float *out, int64_t n) {
  if (n == 0) return;
  tanh_backward_kernel<<<element_blocks(n), ELEMENT_THREADS, 0, c->stream>>>(din, dout, out, n);
  CUDA_CHECK_LAUNCH();
}

__global__ static void add_bias_rows_kernel(float *out, const float *bias, int64_t n, int64_t D) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] += bias[i % D];
}

void cu_add_bias_rows(cu_ctx *c, float *out, const float *bias, int64_t R, int64_t D) {
  if (R * D == 0) return;
  add_bias_rows_kernel<<<element_blocks(R * D), ELEMENT_THREADS, 0, c->stream>>>(out, bias, R * D, D);
  CUDA_CHECK_LAUNCH();
}

/* One thread per column, rows in order: the CPU kernel's summation order. */
__global__ static void column_sums_kernel(float *sums, const float *x, int64_t R, int64_t D) {
  const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= D) return;
  float s = sums[j];
  for (int64_t r = 0; r < R; r++) s += x[r * D + j];
  sums[j] = s;
}

void cu_column_sums_acc(cu_ctx *c, float *sums, const float *x, int64_t R, int64_t D) {
  if (D == 0) return;
  column_sums_kernel<<<element_blocks(D), ELEMENT_THREADS, 0, c->stream>>>(sums, x, R, D);
  CUDA_CHECK_LAUNCH();
}

__global__ static void axpy_kernel(float *y, float a, const float *x, int64_t n) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] += a * x[i];
}

void cu_axpy(cu_ctx *c, float *y, float a, const float *x, int64_t n) {
  if (n == 0) return;
  axpy_kernel<<<element_blocks(n), ELEMENT_THREADS, 0, c->stream>>>(y, a, x, n);
  CUDA_CHECK_LAUNCH();
}

/* A fixed grid of CU_REDUCE_BLOCKS blocks striding over x: each block's
 * partial sum, added on the host in block order (reproducible). */
__global__ static void sum_squares_kernel(double *partials, const float *x, int64_t n) {
  double s = 0.0;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    s += (double)x[i] * x[i];
  s = block_reduce(s, sum_op(), 0.0);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

double cu_sum_squares(cu_ctx *c, const float *x, int64_t n) {
  sum_squares_kernel<<<CU_REDUCE_BLOCKS, ELEMENT_THREADS, 0, c->stream>>>(c->partials, x, n);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaMemcpyAsync(c->partials_host, c->partials, CU_REDUCE_BLOCKS * sizeof(double), cudaMemcpyDeviceToHost,
                             c->stream));
  CUDA_CHECK(cudaStreamSynchronize(c->stream));
  double total = 0.0;
  for (int b = 0; b < CU_REDUCE_BLOCKS; b++) total += c->partials_host[b];
  return total;
}

/* ---- the sparse input ------------------------------------------------------------------------ */

__global__ static void csr_l2norm_kernel(float *values_out, const int32_t *indptr, const float *x_values) {
  const int64_t r = blockIdx.x;
  const int32_t begin = indptr[r], end = indptr[r + 1];
  double ss = 0.0;
  for (int32_t k = begin + (int32_t)threadIdx.x; k < end; k += (int32_t)blockDim.x) {
    const double v = x_values ? x_values[k] : 1.0;
    ss += v * v;
  }
  ss = block_reduce(ss, sum_op(), 0.0);
  const float inv = ss > 0.0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
  for (int32_t k = begin + (int32_t)threadIdx.x; k < end; k += (int32_t)blockDim.x)
    values_out[k] = (x_values ? x_values[k] : 1.0f) * inv;
}

void cu_csr_l2norm_values(cu_ctx *c, float *values_out, const cu_csr *x) {
  if (x->n_rows == 0) return;
  csr_l2norm_kernel<<<(unsigned)x->n_rows, ROW_THREADS, 0, c->stream>>>(values_out, x->indptr, x->values);
  CUDA_CHECK_LAUNCH();
}

__global__ static void csr_dropout_kernel(float *values, const int32_t *indptr, float p, float scale, cu_rng_key key,
                                          uint64_t step, const int64_t *sample_ids) {
  const int64_t r = blockIdx.x;
  const int32_t begin = indptr[r], len = indptr[r + 1] - begin;
  const uint64_t sample = (uint64_t)sample_ids[r];
  for (int32_t j = (int32_t)threadIdx.x; j < len; j += (int32_t)blockDim.x) {
    uint32_t block[4];
    stream_block(key, (uint32_t)j / 4, step, sample, block);
    values[begin + j] = uniform_of(block[j % 4]) < p ? 0.0f : values[begin + j] * scale;
  }
}

void cu_csr_dropout_values(cu_ctx *c, float *values, const cu_csr *x, float p, cu_rng_key key, uint64_t step,
                           const int64_t *sample_ids) {
  SR_ASSERT(p >= 0.0f && p < 1.0f);
  if (x->n_rows == 0) return;
  const float scale = 1.0f / (1.0f - p); /* sr_csr_dropout_values' scale, rounded the same way */
  csr_dropout_kernel<<<(unsigned)x->n_rows, ROW_THREADS, 0, c->stream>>>(values, x->indptr, p, scale, key, step,
                                                                         sample_ids);
  CUDA_CHECK_LAUNCH();
}

/* ---- multinomial log-likelihood ----------------------------------------------------------------
 * One block per row: the target terms, the row max and the sum of shifted
 * exponentials are block reductions; every read of the logits happens before
 * the barrier that ends the last reduction, so dlogits may alias them. */
__global__ static void softmax_nll_kernel(float *dlogits, const float *logits, const int32_t *indptr,
                                          const int32_t *indices, const float *x_values, int64_t C, float inv_norm,
                                          double *row_loss) {
  const int64_t r = blockIdx.x;
  const float *l = logits + r * C;
  float *d = dlogits + r * C;
  const int32_t begin = indptr[r], end = indptr[r + 1];
  double sum_x = 0.0, dot_xl = 0.0;
  for (int32_t k = begin + (int32_t)threadIdx.x; k < end; k += (int32_t)blockDim.x) {
    const double x = x_values ? x_values[k] : 1.0;
    sum_x += x;
    dot_xl += x * l[indices[k]];
  }
  sum_x = block_reduce(sum_x, sum_op(), 0.0);
  dot_xl = block_reduce(dot_xl, sum_op(), 0.0);
  float max = -INFINITY;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) max = fmaxf(max, l[i]);
  max = block_reduce(max, max_op(), -INFINITY);
  float partial = 0.0f; /* terms in (0, 1], a few dozen per thread */
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) partial += expf(l[i] - max);
  const double sum_exp = block_reduce((double)partial, sum_op(), 0.0);
  const float prob_scale = (float)(sum_x / sum_exp) * inv_norm;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x) d[i] = expf(l[i] - max) * prob_scale;
  __syncthreads();
  for (int32_t k = begin + (int32_t)threadIdx.x; k < end; k += (int32_t)blockDim.x)
    d[indices[k]] -= (x_values ? x_values[k] : 1.0f) * inv_norm;             /* columns are unique within a row */
  if (threadIdx.x == 0) row_loss[r] = sum_x * (max + log(sum_exp)) - dot_xl; /* -sum_i x_i (l_i - lse) */
}

void cu_softmax_nll(cu_ctx *c, float *dlogits, const float *logits, const cu_csr *targets, int64_t R, int64_t C,
                    float norm, double *row_loss) {
  if (R == 0) return;
  softmax_nll_kernel<<<(unsigned)R, ROW_THREADS, 0, c->stream>>>(dlogits, logits, targets->indptr, targets->indices,
                                                                 targets->values, C, 1.0f / norm, row_loss);
  CUDA_CHECK_LAUNCH();
}

/* ---- Gaussian KL ------------------------------------------------------------------------------------ */

__global__ static void gaussian_kl_kernel(float *dmu, float *dlogvar, const float *mu, const float *logvar, int64_t K,
                                          float grad_scale, double *row_kl) {
  const int64_t r = blockIdx.x;
  double kl = 0.0;
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    const int64_t i = r * K + k;
    const float var = expf(logvar[i]);
    kl += 0.5 * (-(double)logvar[i] + var + (double)mu[i] * mu[i] - 1.0);
    if (dmu) dmu[i] += grad_scale * mu[i];
    if (dlogvar) dlogvar[i] += grad_scale * 0.5f * (var - 1.0f);
  }
  kl = block_reduce(kl, sum_op(), 0.0);
  if (threadIdx.x == 0) row_kl[r] = kl;
}

void cu_gaussian_kl(cu_ctx *c, float *dmu, float *dlogvar, const float *mu, const float *logvar, int64_t R, int64_t K,
                    float norm, float scale, double *row_kl) {
  if (R == 0) return;
  gaussian_kl_kernel<<<(unsigned)R, ELEMENT_THREADS, 0, c->stream>>>(dmu, dlogvar, mu, logvar, K, scale / norm,
                                                                     row_kl);
  CUDA_CHECK_LAUNCH();
}

/* ---- reparameterisation ------------------------------------------------------------------------------
 * Normal i of a row is normal_draw i of the row's stream. */
__global__ static void reparam_forward_kernel(float *z, float *eps, const float *mu, const float *logvar, int64_t n,
                                              int64_t K, cu_rng_key key, uint64_t step, const int64_t *sample_ids) {
  const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= n) return;
  const int64_t r = idx / K, i = idx % K;
  const float e = normal_draw(key, step, (uint64_t)sample_ids[r], i);
  eps[idx] = e;
  z[idx] = mu[idx] + e * expf(0.5f * logvar[idx]);
}

void cu_reparam_forward(cu_ctx *c, float *z, float *eps, const float *mu, const float *logvar, int64_t R, int64_t K,
                        cu_rng_key key, uint64_t step, const int64_t *sample_ids) {
  if (R * K == 0) return;
  reparam_forward_kernel<<<element_blocks(R * K), ELEMENT_THREADS, 0, c->stream>>>(z, eps, mu, logvar, R * K, K, key,
                                                                                   step, sample_ids);
  CUDA_CHECK_LAUNCH();
}

__global__ static void reparam_backward_kernel(float *dmu, float *dlogvar, const float *dz, const float *eps,
                                               const float *logvar, int64_t n) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  dmu[i] += dz[i];
  dlogvar[i] += dz[i] * eps[i] * 0.5f * expf(0.5f * logvar[i]);
}

void cu_reparam_backward(cu_ctx *c, float *dmu, float *dlogvar, const float *dz, const float *eps,
                         const float *logvar, int64_t R, int64_t K) {
  if (R * K == 0) return;
  reparam_backward_kernel<<<element_blocks(R * K), ELEMENT_THREADS, 0, c->stream>>>(dmu, dlogvar, dz, eps, logvar,
                                                                                    R * K);
  CUDA_CHECK_LAUNCH();
}

/* ---- Adam / AdamW ------------------------------------------------------------------------------------ */

__global__ static void adam_kernel(float *w, float *m, float *v, float *g, int64_t n, cu_adam_args a,
                                   unsigned long long *non_finite) {
  const int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= n) return;
  if (!isfinite(g[j])) atomicAdd(non_finite, 1ull); /* an integer count: order does not matter */
  const float gj = g[j] + a.coupled_wd * w[j];
  g[j] = 0.0f; /* consumed, as sr_optim_step_ranges does */
  m[j] = a.beta1 * m[j] + (1.0f - a.beta1) * gj;
  v[j] = a.beta2 * v[j] + (1.0f - a.beta2) * gj * gj;
  const float mhat = m[j] / a.bias_correction1, vhat = v[j] / a.bias_correction2;
  w[j] = w[j] * a.decay - a.lr * mhat / (sqrtf(vhat) + a.eps);
}

void cu_adam(cu_ctx *c, float *w, float *m, float *v, float *g, int64_t n, cu_adam_args a,
             unsigned long long *non_finite) {
  if (n == 0) return;
  adam_kernel<<<element_blocks(n), ELEMENT_THREADS, 0, c->stream>>>(w, m, v, g, n, a, non_finite);
  CUDA_CHECK_LAUNCH();
}

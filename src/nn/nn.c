/* nn.c — forward/backward math kernels (nn.h). Dense products go through CBLAS. */
#include "shardrec/nn.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/mem.h"
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

float sr_max(const float *x, int64_t n) {
  enum { LANES = 8 };
  float lane[LANES];
  for (int j = 0; j < LANES; j++) lane[j] = x[0];
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int j = 0; j < LANES; j++) lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
  for (; i < n; i++) lane[0] = x[i] > lane[0] ? x[i] : lane[0];
  for (int j = 1; j < LANES; j++) lane[0] = lane[j] > lane[0] ? lane[j] : lane[0];
  return lane[0];
}

/* The softmax's exponentials, on every (user, item) of every batch. -O2 does
 * not vectorise a loop that calls expf, so the polynomial below is written
 * with GCC/Clang vector extensions: 16 floats per operation, which the
 * compiler lowers to 4 SSE2 (or NEON) operations in the portable build.
 * Cluster binaries are portable builds, so the same body is also compiled
 * for AVX2 and AVX-512 and picked at run time (sr_simd_select).
 *
 * Bit-identical on every level: checkpoints resume and ranks of a job may
 * run on nodes with different CPUs, so the result must not depend on the
 * vector width. Every lane does the same IEEE operations in the same order
 * (no FMA: the library builds with -ffp-contract=off, and the polynomial
 * is written out, not left to a math library), and the sum adds the values in
 * 4-lane groups in index order whatever the width (4-wide partial sums in a
 * fixed order, as before the dispatch). That sum is a chain of dependent
 * adds, which bounds the wide levels; a reordered sum would be faster but
 * would change the bits between machines. */
typedef float f32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));
typedef float f32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));

/* 2^t for t <= 0: 2^k * poly(f) with k = round(t), f in [-0.5, 0.5] and the
 * degree-6 Taylor polynomial of 2^f (relative error < 1e-6). t is clamped to
 * -125 so 2^k stays a normal float; smaller values are negligible anyway.
 * A macro, not a function, for both vector types: a function taking 64-byte
 * vectors would have a different ABI per instruction set. */
#define EXP2_NONPOSITIVE(result, t_in, vf, vi)                                                                     \
  do {                                                                                                             \
    vf t_ = (t_in);                                                                                                \
    const vf lowest_ = (vf){0} - 125.0f;                                                                           \
    const vi below_ = t_ < lowest_;                                                                                \
    t_ = (vf)(((vi)t_ & ~below_) | ((vi)lowest_ & below_));                                                        \
    const vi k_ = __builtin_convertvector(t_ - 0.5f, vi); /* truncation towards 0 = rounding, for t <= 0 */        \
    const vf f_ = t_ - __builtin_convertvector(k_, vf);                                                            \
    const vf poly_ =                                                                                               \
        1.0f +                                                                                                     \
        f_ * (0.693147181f +                                                                                       \
              f_ * (0.240226507f +                                                                                 \
                    f_ * (0.0555041087f + f_ * (0.00961812911f + f_ * (0.00133335581f + f_ * 0.000154035304f))))); \
    (result) = poly_ * (vf)((k_ + 127) << 23); /* 2^k built from its exponent bits */                              \
  } while (0)

/* Subtract before scaling: x - shift is exact for nearby values, while
 * x * log2e - shift * log2e would lose the low bits of large logits. */
#define EXP_LOG2E 1.44269504f
enum { EXP_BLOCK = 1024 }; /* float lanes stay exact enough over a block of terms in (0, 1] */

/* One block (n <= EXP_BLOCK): 16 lanes while they fit, then 4, then scalar
 * exp2f for the last n % 4 (as before the wide lanes: same bits). Returns
 * the block's float sum. */
static inline __attribute__((always_inline)) float exp_block(float *out, const float *x, int64_t n, float shift) {
  int64_t i = 0;
  f32x4 sum4 = {0};
  for (; i + 16 <= n; i += 16) {
    f32x16 v, w;
    memcpy(&v, x + i, sizeof v);
    EXP2_NONPOSITIVE(w, (v - shift) * EXP_LOG2E, f32x16, i32x16);
    memcpy(out + i, &w, sizeof w);
    for (int q = 0; q < 16; q += 4) sum4 += (f32x4){w[q], w[q + 1], w[q + 2], w[q + 3]};
  }
  for (; i + 4 <= n; i += 4) {
    f32x4 v, w;
    memcpy(&v, x + i, sizeof v);
    EXP2_NONPOSITIVE(w, (v - shift) * EXP_LOG2E, f32x4, i32x4);
    memcpy(out + i, &w, sizeof w);
    sum4 += w;
  }
  float sum = (sum4[0] + sum4[1]) + (sum4[2] + sum4[3]);
  for (; i < n; i++) sum += out[i] = exp2f((x[i] - shift) * EXP_LOG2E);
  return sum;
}

static inline __attribute__((always_inline)) void exp_shifted_body(float *out, const float *x, int64_t n, float shift,
                                                                   double *total) {
  *total = 0.0;
  for (int64_t b = 0; b < n; b += EXP_BLOCK)
    *total += exp_block(out + b, x + b, n - b < EXP_BLOCK ? n - b : EXP_BLOCK, shift);
}

/* ---- run-time dispatch ------------------------------------------------------------
 * SIMD_VARIANTS(name, params, args) compiles the always-inline function
 * name##_body once per sr_simd_level (the target attribute only lets the
 * compiler use wider registers for the same operations) and defines the
 * table name##_variants of them, indexed by level. */
#if defined(__x86_64__)
#define SIMD_VARIANTS(name, params, args)                                                   \
  static void name##_baseline params { name##_body args; }                                  \
  __attribute__((target("avx2"))) static void name##_avx2 params { name##_body args; }      \
  __attribute__((target("avx512f"))) static void name##_avx512 params { name##_body args; } \
  static void(*const name##_variants[SR_SIMD_COUNT]) params = {name##_baseline, name##_avx2, name##_avx512}
#else
#define SIMD_VARIANTS(name, params, args)                  \
  static void name##_baseline params { name##_body args; } \
  static void(*const name##_variants[SR_SIMD_COUNT]) params = {name##_baseline, name##_baseline, name##_baseline}
#endif

SIMD_VARIANTS(exp_shifted, (float *out, const float *x, int64_t n, float shift, double *total),
              (out, x, n, shift, total));

static int simd_supported(sr_simd_level level) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (level == SR_SIMD_AVX2) return __builtin_cpu_supports("avx2");
  if (level == SR_SIMD_AVX512) return __builtin_cpu_supports("avx512f");
#endif
  return level == SR_SIMD_BASELINE;
}

static sr_simd_level simd_level = SR_SIMD_COUNT; /* SR_SIMD_COUNT: not chosen yet */

int sr_simd_select(sr_simd_level level) {
  if (level >= SR_SIMD_COUNT || !simd_supported(level)) return -1;
  __atomic_store_n(&simd_level, level, __ATOMIC_RELAXED);
  return 0;
}

sr_simd_level sr_simd_selected(void) {
  sr_simd_level level = __atomic_load_n(&simd_level, __ATOMIC_RELAXED);
  if (level != SR_SIMD_COUNT) return level;
  level = SR_SIMD_BASELINE; /* the best this CPU has; threads racing here pick the same */
  for (int l = SR_SIMD_COUNT - 1; l > SR_SIMD_BASELINE; l--)
    if (simd_supported((sr_simd_level)l)) {
      level = (sr_simd_level)l;
      break;
    }
  __atomic_store_n(&simd_level, level, __ATOMIC_RELAXED);
  return level;
}

double sr_exp_shifted(float *out, const float *x, int64_t n, float shift) {
  double total;
  exp_shifted_variants[sr_simd_selected()](out, x, n, shift, &total);
  return total;
}

/* ---- sparse x dense ------------------------------------------------------------- */

/* This thread's [begin, end) of n items inside an OpenMP parallel region. */
static void even_slice(int64_t n, int64_t *begin, int64_t *end) {
  int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
  *begin = n * t / threads;
  *end = n * (t + 1) / threads;
}

/* y[0..n) += a * x[0..n): the short rows of the sparse products, inlined. */
static inline __attribute__((always_inline)) void row_axpy(float *restrict y, float a, const float *restrict x,
                                                           int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; j++) y[j] += a * x[j];
}

/* X's entries by column: column c's are at positions col_start[c] ..
 * col_start[c + 1] of entry (their index in X) and row, rows ascending. A
 * product that walks X by column reads each row of W (or updates each row
 * of dW) once per batch, where a walk by row does so once per entry: a
 * batch of 500 users has ~40k entries over a few thousand items. */
typedef struct {
  int64_t *col_start, *entry, *row;
} column_order;

static void column_order_build(column_order *o, const sr_csr *x) {
  const int64_t n = x->nnz > 0 ? x->nnz : 1;
  o->col_start = sr_calloc((size_t)x->n_cols + 2, sizeof *o->col_start);
  o->entry = sr_malloc((size_t)n * sizeof *o->entry);
  o->row = sr_malloc((size_t)n * sizeof *o->row);
  /* Counting sort, stable in row order: count into col_start[c + 2], sum up
   * so that col_start[c + 1] is where column c starts, then place each entry
   * at its column's cursor, which leaves col_start[c + 1] where c ends. */
  int64_t *cursor = o->col_start + 1;
  for (int64_t k = 0; k < x->nnz; k++) o->col_start[x->indices[k] + 2]++;
  for (int64_t c = 0; c < x->n_cols; c++) o->col_start[c + 2] += o->col_start[c + 1];
  for (int64_t r = 0; r < x->n_rows; r++)
    for (int64_t k = x->indptr[r]; k < x->indptr[r + 1]; k++) {
      const int64_t at = cursor[x->indices[k]]++;
      o->entry[at] = k;
      o->row[at] = r;
    }
}

static void column_order_free(column_order *o) {
  free(o->col_start);
  free(o->entry);
  free(o->row);
}

/* Both products: threads split the H columns (no two threads touch one
 * element), and every output element sums its terms in the order a
 * row-by-row pass over X would (rows are sorted by column, so column order
 * is each row's own order; and rows ascend within a column): the same bits
 * whatever the number of threads, and as a walk row by row. */
/* Columns [begin, end) of out (R, H): zeroed, then the terms of every entry. */
static inline __attribute__((always_inline)) void spmm_forward_slice_body(float *out, const sr_csr *x,
                                                                          const column_order *o, const float *v,
                                                                          const float *w, int64_t h, int64_t begin,
                                                                          int64_t end) {
  for (int64_t r = 0; r < x->n_rows; r++) memset(out + r * h + begin, 0, (size_t)(end - begin) * sizeof(float));
  /* One row of W (C, H) per stored column: cost O(nnz * H), never O(C * H). */
  for (int64_t c = 0; c < x->n_cols; c++)
    for (int64_t p = o->col_start[c]; p < o->col_start[c + 1]; p++)
      row_axpy(out + o->row[p] * h + begin, v ? v[o->entry[p]] : 1.0f, w + c * h + begin, end - begin);
}
SIMD_VARIANTS(spmm_forward_slice,
              (float *out, const sr_csr *x, const column_order *o, const float *v, const float *w, int64_t h,
               int64_t begin, int64_t end),
              (out, x, o, v, w, h, begin, end));

/* Columns [begin, end) of dW (C, H). */
static inline __attribute__((always_inline)) void spmm_backward_slice_body(float *dw, const sr_csr *x,
                                                                           const column_order *o, const float *v,
                                                                           const float *dout, int64_t h,
                                                                           int64_t begin, int64_t end) {
  for (int64_t c = 0; c < x->n_cols; c++)
    for (int64_t p = o->col_start[c]; p < o->col_start[c + 1]; p++)
      row_axpy(dw + c * h + begin, v ? v[o->entry[p]] : 1.0f, dout + o->row[p] * h + begin, end - begin);
}
SIMD_VARIANTS(spmm_backward_slice,
              (float *dw, const sr_csr *x, const column_order *o, const float *v, const float *dout, int64_t h,
               int64_t begin, int64_t end),
              (dw, x, o, v, dout, h, begin, end));

/* dst = (forward) or += (backward) the product whose slice kernels (one per
 * level) are `variants`, each thread on its share of the H columns. */
typedef void spmm_slice_fn(float *dst, const sr_csr *x, const column_order *o, const float *v, const float *src,
                           int64_t h, int64_t begin, int64_t end);
static void spmm_by_columns(spmm_slice_fn *const *variants, float *dst, const sr_csr *x, const float *values,
                            const float *src, int64_t h) {
  const float *v = values ? values : x->values;
  spmm_slice_fn *slice = variants[sr_simd_selected()];
  column_order o;
  column_order_build(&o, x);
#pragma omp parallel
  {
    int64_t begin, end;
    even_slice(h, &begin, &end);
    slice(dst, x, &o, v, src, h, begin, end);
  }
  column_order_free(&o);
}

void sr_spmm_forward(float *out, const sr_csr *x, const float *values, const float *w, int64_t h) {
  spmm_by_columns(spmm_forward_slice_variants, out, x, values, w, h);
}

void sr_spmm_backward_weight(float *dw, const sr_csr *x, const float *values, const float *dout, int64_t h) {
  spmm_by_columns(spmm_backward_slice_variants, dw, x, values, dout, h);
}

void sr_column_sums_acc(float *sums, const float *x, int64_t R, int64_t D) {
  /* Threads split the columns; each column adds its rows in order, so the
   * result does not depend on the number of threads. */
#pragma omp parallel
  {
    int64_t begin, end;
    even_slice(D, &begin, &end);
    for (int64_t r = 0; r < R; r++) row_axpy(sums + begin, 1.0f, x + r * D + begin, end - begin);
  }
}

/* ---- linear ------------------------------------------------------------------------ */

void sr_linear_forward(float *out, const float *in, const float *w, const float *b, int64_t B, int64_t in_dim,
                       int64_t out_dim) {
  if (B == 0) return;
  /* Seed every row with the bias, then let GEMM accumulate (beta = 1). */
  if (b) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < B; r++) memcpy(out + r * out_dim, b, (size_t)out_dim * sizeof *b);
  }
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
  if (db) sr_column_sums_acc(db, dout, B, out_dim);
}

/* ---- activations ------------------------------------------------------------------- */

/* tanh as the 13/6-degree rational function of Eigen's
 * generic_fast_tanh_float (its published coefficients), with the input
 * clamped to [-9, 9], the result to [-1, 1], and x itself below 0.0004
 * (where tanh(x) rounds to x and x^2 would underflow). Against tanh in
 * double, checked on every float: at most 6.9 ulp (near |x| = 5.8, where an
 * ulp is 6e-8: 4e-7), 92 % correctly rounded. libm's tanhf is scalar, ~20 ns per
 * element (11 % of an ML-1M-shaped Mult-VAE step), and its bits depend on the
 * C library; this runs 4 to 16 lanes wide and gives the same bits on every
 * machine. Odd: p is odd and q even, so tanh(-x) = -tanh(x) exactly. NaN
 * stays NaN (every comparison with it is false). Vector extensions with
 * explicit selects, as for the exponentials: GCC leaves the branchy scalar
 * form unvectorised. A macro for both vector types. */
#define VSELECT(mask, a, b, vf, vi) ((vf)(((vi)(a) & (mask)) | ((vi)(b) & ~(mask))))
#define TANH_RATIONAL(result, in_, vf, vi)                               \
  do {                                                                   \
    const vf in__ = (in_), lim_ = (vf){0} + 9.0f, one_ = (vf){0} + 1.0f; \
    vf x_ = VSELECT(in__ > lim_, lim_, in__, vf, vi);                    \
    x_ = VSELECT(x_ < -lim_, -lim_, x_, vf, vi);                         \
    const vf x2_ = x_ * x_;                                              \
    vf p_ = x2_ * -2.76076847742355e-16f + 2.00018790482477e-13f;        \
    p_ = p_ * x2_ + -8.60467152213735e-11f;                              \
    p_ = p_ * x2_ + 5.12229709037114e-08f;                               \
    p_ = p_ * x2_ + 1.48572235717979e-05f;                               \
    p_ = p_ * x2_ + 6.37261928875436e-04f;                               \
    p_ = p_ * x2_ + 4.89352455891786e-03f;                               \
    p_ = p_ * x_;                                                        \
    vf q_ = x2_ * 1.19825839466702e-06f + 1.18534705686654e-04f;         \
    q_ = q_ * x2_ + 2.26843463243900e-03f;                               \
    q_ = q_ * x2_ + 4.89352518554385e-03f;                               \
    vf y_ = p_ / q_;                                                     \
    y_ = VSELECT(y_ > one_, one_, y_, vf, vi);                           \
    y_ = VSELECT(y_ < -one_, -one_, y_, vf, vi);                         \
    const vf abs_ = (vf)((vi)in__ & 0x7fffffff);                         \
    (result) = VSELECT(abs_ < 0.0004f, in__, y_, vf, vi);                \
  } while (0)

/* 16 lanes while they fit, then 4; the last n % 4 padded to 4 lanes (the
 * same operations: the same bits wherever an element sits). */
static inline __attribute__((always_inline)) void tanh_body(float *out, const float *in, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    f32x16 v, w;
    memcpy(&v, in + i, sizeof v);
    TANH_RATIONAL(w, v, f32x16, i32x16);
    memcpy(out + i, &w, sizeof w);
  }
  for (; i < n; i += 4) {
    const int64_t lanes = n - i < 4 ? n - i : 4;
    f32x4 v = {0}, w;
    memcpy(&v, in + i, (size_t)lanes * sizeof(float));
    TANH_RATIONAL(w, v, f32x4, i32x4);
    memcpy(out + i, &w, (size_t)lanes * sizeof(float));
  }
}
SIMD_VARIANTS(tanh, (float *out, const float *in, int64_t n), (out, in, n));

void sr_tanh_forward(float *out, const float *in, int64_t n) { tanh_variants[sr_simd_selected()](out, in, n); }

void sr_tanh_backward(float *restrict din, const float *restrict dout, const float *restrict out, int64_t n) {
  for (int64_t i = 0; i < n; i++) din[i] += dout[i] * (1.0f - out[i] * out[i]);
}

/* Both operands are loaded before the select so that it vectorises (a load
 * under the condition kept these loops scalar: 15% of a two-tower step).
 * Elementwise: in-place use is fine. */
void sr_relu_forward(float *out, const float *in, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    const float x = in[i];
    out[i] = x > 0.0f ? x : 0.0f;
  }
}

void sr_relu_backward(float *restrict din, const float *restrict dout, const float *restrict out, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    const float g = dout[i], y = out[i];
    din[i] += y > 0.0f ? g : 0.0f;
  }
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

void sr_softmax_target_sums(sr_softmax_row *row, const float *l, const sr_csr *targets, int64_t r) {
  row->sum_x = row->dot_xl = 0.0;
  for (int64_t k = targets->indptr[r]; k < targets->indptr[r + 1]; k++) {
    const double xk = sr_csr_value(targets, k);
    row->sum_x += xk;
    row->dot_xl += xk * l[targets->indices[k]];
  }
}

double sr_softmax_nll_finish_row(float *d, int64_t C, const sr_csr *targets, int64_t r, const sr_softmax_row *row,
                                 float inv_norm) {
  const float prob_scale = (float)(row->sum_x / row->sum_exp) * inv_norm;
  for (int64_t i = 0; i < C; i++) d[i] *= prob_scale;
  for (int64_t k = targets->indptr[r]; k < targets->indptr[r + 1]; k++)
    d[targets->indices[k]] -= sr_csr_value(targets, k) * inv_norm;
  /* -sum_i x_i (l_i - lse) */
  return row->sum_x * (row->max + log(row->sum_exp)) - row->dot_xl;
}

/* One row (C): returns -sum_i x_i log_softmax(l)_i (not yet divided by norm) and
 * writes d = (softmax(l) * sum_x - x) * inv_norm. d may alias l. */
static double softmax_nll_row(float *d, const float *l, const sr_csr *targets, int64_t r, int64_t C, float inv_norm) {
  sr_softmax_row row;
  /* Read the target logits before d (possibly l itself) is overwritten. */
  sr_softmax_target_sums(&row, l, targets, r);
  /* Shifted exponentials are in (0, 1]: no overflow. */
  row.max = sr_max(l, C);
  row.sum_exp = sr_exp_shifted(d, l, C, row.max);
  return sr_softmax_nll_finish_row(d, C, targets, r, &row, inv_norm);
}

double sr_softmax_nll(float *dlogits, const float *logits, const sr_csr *targets, int64_t R, int64_t C, float norm) {
  const float inv_norm = 1.0f / norm;
  double *row_loss = sr_malloc((size_t)(R > 0 ? R : 1) * sizeof *row_loss);
  /* Rows are independent; their losses are summed afterwards in row order so
   * the total does not depend on the number of threads. */
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < R; r++)
    row_loss[r] = softmax_nll_row(dlogits + r * C, logits + r * C, targets, r, C, inv_norm);
  double total = 0.0;
  for (int64_t r = 0; r < R; r++) total += row_loss[r];
  free(row_loss);
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

// test_nn.cpp — math kernels: finite-difference gradient checks for every
// backward, GEMM / sparse products against naive loops, keyed dropout and
// noise, hand-computed loss values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include <omp.h>

#include "kernel_check.h"

extern "C" {
#include "shardrec/csr.h"
#include "shardrec/nn.h"
#include "shardrec/rng.h"
}

namespace {

using kcheck::expect_all_near;
using kcheck::expect_gradient;
using kcheck::halved;
using kcheck::uniform;
using kcheck::Vec;
using kcheck::weighted_sum;

// Magnitudes in [lo, hi) with random signs: keeps inputs away from 0 (ReLU's kink).
Vec signed_away_from_zero(size_t n, float lo, float hi, uint64_t stream) {
  Vec mag = uniform(n, lo, hi, stream), sign = uniform(n, 0.0f, 1.0f, stream + 1000);
  for (size_t i = 0; i < n; i++) mag[i] = sign[i] < 0.5f ? -mag[i] : mag[i];
  return mag;
}

// A CSR matrix owning its storage, built from a dense (R, C) array: the nonzeros
// become the stored entries (with their values, or binary when with_values == 0).
class Csr {
 public:
  Csr(const Vec &dense, int64_t rows, int64_t cols, bool with_values) {
    int64_t nnz = 0;
    for (float v : dense) nnz += v != 0.0f;
    sr_csr_alloc(&m_, rows, cols, nnz, with_values ? 1 : 0);
    int64_t k = 0;
    for (int64_t r = 0; r < rows; r++) {
      for (int64_t c = 0; c < cols; c++) {
        const float v = dense[r * cols + c];
        if (v == 0.0f) continue;
        m_.indices[k] = (int32_t)c;
        if (with_values) m_.values[k] = v;
        k++;
      }
      m_.indptr[r + 1] = k;
    }
  }
  ~Csr() { sr_csr_free(&m_); }
  Csr(const Csr &) = delete;
  Csr &operator=(const Csr &) = delete;
  const sr_csr *get() const { return &m_; }

 private:
  sr_csr m_;
};

// Dense (R, C) with about `density` of entries nonzero, values in [0.5, 3) (or 1 if binary).
Vec sparse_dense(int64_t rows, int64_t cols, float density, bool binary, uint64_t stream) {
  Vec keep = uniform((size_t)(rows * cols), 0.0f, 1.0f, stream);
  Vec vals = uniform(keep.size(), 0.5f, 3.0f, stream + 1);
  Vec d(keep.size(), 0.0f);
  for (size_t i = 0; i < d.size(); i++)
    if (keep[i] < density) d[i] = binary ? 1.0f : vals[i];
  return d;
}

// Naive (M, K) . (K, N).
Vec naive_matmul(const Vec &a, const Vec &b, int64_t M, int64_t K, int64_t N) {
  Vec c((size_t)(M * N), 0.0f);
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double s = 0.0;
      for (int64_t k = 0; k < K; k++) s += (double)a[i * K + k] * b[k * N + j];
      c[i * N + j] = (float)s;
    }
  return c;
}

}  // namespace

// ---- sparse x dense ---------------------------------------------------------------

TEST(Spmm, ForwardMatchesDenseProduct) {
  const int64_t R = 6, C = 17, H = 9;
  const Vec w = uniform((size_t)(C * H), -1.0f, 1.0f, 1);
  for (bool binary : {false, true}) {
    Vec dense = sparse_dense(R, C, 0.3f, binary, 2);
    Csr x(dense, R, C, !binary);
    Vec out((size_t)(R * H), 7.0f);  // garbage: forward must write, not accumulate
    sr_spmm_forward(out.data(), x.get(), nullptr, w.data(), H);
    expect_all_near(out, naive_matmul(dense, w, R, C, H), 1e-5f, binary ? "binary" : "valued");
  }
  // The `values` argument replaces the stored values.
  Vec dense = sparse_dense(R, C, 0.3f, false, 3);
  Csr x(dense, R, C, true);
  Vec override_values = uniform((size_t)x.get()->nnz, -2.0f, 2.0f, 4);
  Vec overridden = dense;
  for (int64_t i = 0, k = 0; i < R * C; i++)
    if (dense[i] != 0.0f) overridden[i] = override_values[k++];
  Vec out((size_t)(R * H));
  sr_spmm_forward(out.data(), x.get(), override_values.data(), w.data(), H);
  expect_all_near(out, naive_matmul(overridden, w, R, C, H), 1e-5f, "override");
}

TEST(Spmm, WeightGradientMatchesFiniteDifferences) {
  const int64_t R = 4, C = 7, H = 3;
  Csr x(sparse_dense(R, C, 0.5f, false, 5), R, C, true);
  Vec values = uniform((size_t)x.get()->nnz, -1.5f, 1.5f, 6);
  Vec w = uniform((size_t)(C * H), -1.0f, 1.0f, 7);
  const Vec g = uniform((size_t)(R * H), -1.0f, 1.0f, 8);
  Vec dw(w.size(), 0.0f);
  for (int pass = 0; pass < 2; pass++) sr_spmm_backward_weight(dw.data(), x.get(), values.data(), g.data(), H);
  Vec out((size_t)(R * H));
  expect_gradient("dW", w, halved(dw), [&] {
    sr_spmm_forward(out.data(), x.get(), values.data(), w.data(), H);
    return weighted_sum(out, g);
  });
}

// Both products walk X by column for speed, yet every element must sum its
// terms as a walk row by row does, bit for bit (results stay those of
// earlier builds, and depend neither on the number of threads nor on the
// vector width).
TEST(Spmm, SumsTermsInRowOrderBitForBit) {
  const int64_t R = 9, C = 23, H = 21;
  Csr x(sparse_dense(R, C, 0.4f, false, 11), R, C, true);
  const sr_csr *m = x.get();
  const Vec w = uniform((size_t)(C * H), -1.0f, 1.0f, 12), g = uniform((size_t)(R * H), -1.0f, 1.0f, 13);
  Vec want_out((size_t)(R * H), 0.0f), want_dw((size_t)(C * H), 0.5f);
  for (int64_t r = 0; r < R; r++)
    for (int64_t k = m->indptr[r]; k < m->indptr[r + 1]; k++)
      for (int64_t j = 0; j < H; j++) {
        want_out[(size_t)(r * H + j)] += m->values[k] * w[(size_t)(m->indices[k] * H + j)];
        want_dw[(size_t)(m->indices[k] * H + j)] += m->values[k] * g[(size_t)(r * H + j)];
      }
  const int saved_threads = omp_get_max_threads();
  const sr_simd_level chosen = sr_simd_selected();
  for (int level = SR_SIMD_BASELINE; level < SR_SIMD_COUNT; level++) {
    if (sr_simd_select((sr_simd_level)level) != 0) continue;  // this CPU lacks it
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      Vec out((size_t)(R * H)), dw((size_t)(C * H), 0.5f);
      sr_spmm_forward(out.data(), m, nullptr, w.data(), H);
      sr_spmm_backward_weight(dw.data(), m, nullptr, g.data(), H);
      EXPECT_EQ(std::memcmp(out.data(), want_out.data(), out.size() * sizeof(float)), 0)
          << "level " << level << ", " << threads << " threads";
      EXPECT_EQ(std::memcmp(dw.data(), want_dw.data(), dw.size() * sizeof(float)), 0)
          << "level " << level << ", " << threads << " threads";
    }
  }
  ASSERT_EQ(sr_simd_select(chosen), 0);
  omp_set_num_threads(saved_threads);
}

// ---- linear -------------------------------------------------------------------------

TEST(Linear, ForwardMatchesNaiveTripleLoop) {
  // Odd sizes so blocked GEMM kernels hit their edge cases.
  const int64_t B = 33, IN = 70, OUT = 45;
  const Vec in = uniform((size_t)(B * IN), -1.0f, 1.0f, 10), w = uniform((size_t)(IN * OUT), -1.0f, 1.0f, 11);
  const Vec b = uniform((size_t)OUT, -1.0f, 1.0f, 12);
  Vec want = naive_matmul(in, w, B, IN, OUT);
  Vec out((size_t)(B * OUT), 7.0f);
  sr_linear_forward(out.data(), in.data(), w.data(), nullptr, B, IN, OUT);
  expect_all_near(out, want, 1e-5f, "no bias");
  for (int64_t r = 0; r < B; r++)
    for (int64_t j = 0; j < OUT; j++) want[r * OUT + j] += b[j];
  sr_linear_forward(out.data(), in.data(), w.data(), b.data(), B, IN, OUT);
  expect_all_near(out, want, 1e-5f, "bias");
}

TEST(Linear, GradientsMatchFiniteDifferences) {
  const int64_t B = 3, IN = 5, OUT = 4;
  Vec in = uniform((size_t)(B * IN), -1.0f, 1.0f, 13), w = uniform((size_t)(IN * OUT), -1.0f, 1.0f, 14);
  Vec b = uniform((size_t)OUT, -1.0f, 1.0f, 15);
  const Vec g = uniform((size_t)(B * OUT), -1.0f, 1.0f, 16);
  Vec din(in.size(), 0.0f), dw(w.size(), 0.0f), db(b.size(), 0.0f);
  for (int pass = 0; pass < 2; pass++)
    sr_linear_backward(din.data(), dw.data(), db.data(), g.data(), in.data(), w.data(), B, IN, OUT);
  Vec out((size_t)(B * OUT));
  auto loss = [&] {
    sr_linear_forward(out.data(), in.data(), w.data(), b.data(), B, IN, OUT);
    return weighted_sum(out, g);
  };
  expect_gradient("din", in, halved(din), loss);
  expect_gradient("dW", w, halved(dw), loss);
  expect_gradient("db", b, halved(db), loss);

  // din / db are optional: dW alone is the same.
  Vec dw_only(w.size(), 0.0f);
  sr_linear_backward(nullptr, dw_only.data(), nullptr, g.data(), in.data(), w.data(), B, IN, OUT);
  expect_all_near(dw_only, halved(dw), 1e-6f, "dW without din/db");
}

// ---- activations ----------------------------------------------------------------------

using Activation = void (*)(float *, const float *, int64_t);
using ActivationBackward = void (*)(float *, const float *, const float *, int64_t);

static void check_activation(const char *what, Activation forward, ActivationBackward backward, Vec in) {
  const Vec g = uniform(in.size(), -1.0f, 1.0f, 20);
  Vec out(in.size()), din(in.size(), 0.0f);
  forward(out.data(), in.data(), (int64_t)in.size());
  for (int pass = 0; pass < 2; pass++) backward(din.data(), g.data(), out.data(), (int64_t)in.size());
  Vec probe(in.size());
  expect_gradient(what, in, halved(din), [&] {
    forward(probe.data(), in.data(), (int64_t)in.size());
    return weighted_sum(probe, g);
  });
}

TEST(Activations, TanhAndReluGradients) {
  check_activation("tanh", sr_tanh_forward, sr_tanh_backward, uniform(24, -2.0f, 2.0f, 21));
  check_activation("relu", sr_relu_forward, sr_relu_backward, signed_away_from_zero(24, 0.1f, 2.0f, 22));
}

TEST(Activations, ForwardValues) {
  const Vec in = {-2.0f, -0.0f, 0.5f, 3.0f};
  Vec out(in.size());
  sr_relu_forward(out.data(), in.data(), 4);
  EXPECT_EQ(out, (Vec{0.0f, 0.0f, 0.5f, 3.0f}));
  sr_tanh_forward(out.data(), in.data(), 4);
  for (size_t i = 0; i < in.size(); i++) EXPECT_FLOAT_EQ(out[i], std::tanh(in[i]));
}

// sr_tanh_forward is a rational function, not libm's tanhf: within 7 ulp of
// tanh in double (6.9 at worst over every float) on every 997th float below
// 20, both signs, and the edges: zeros, denormals, the 0.0004 and 9 switch
// points, the worst input, +-inf; NaN stays NaN. Odd bit for bit, the same
// in place, and the same bits at every vector width and array length (16
// lanes, 4 lanes, the padded tail).
TEST(Activations, TanhIsWithinSevenUlpAndTheSameOnEveryVectorWidth) {
  Vec x;
  for (uint32_t bits = 0; bits < 0x41a00000u; bits += 997) {  // 0x41a00000 = 20.0f
    float v;
    std::memcpy(&v, &bits, sizeof v);
    x.push_back(v);
    x.push_back(-v);
  }
  for (float v : {0.0f, 1e-45f, 1e-38f, 0.0004f, std::nextafter(0.0004f, 0.0f), 9.0f, std::nextafter(9.0f, 10.0f),
                  5.82787609f, 20.0f, INFINITY}) {
    x.push_back(v);
    x.push_back(-v);
  }
  x.push_back(NAN);
  const int64_t n = (int64_t)x.size();
  const sr_simd_level chosen = sr_simd_selected();
  ASSERT_EQ(sr_simd_select(SR_SIMD_BASELINE), 0);
  Vec base((size_t)n);
  sr_tanh_forward(base.data(), x.data(), n);
  for (int64_t i = 0; i < n; i++) {
    const float got = base[(size_t)i];
    if (std::isnan(x[(size_t)i])) {
      EXPECT_TRUE(std::isnan(got));
      continue;
    }
    const double want = std::tanh((double)x[(size_t)i]);
    const float magnitude = std::fabs((float)want);
    const double ulp = magnitude == 0.0f ? 1e-45 : (double)(std::nextafter(magnitude, 2.0f) - magnitude);
    EXPECT_LE(std::fabs((double)got - want), 7.0 * ulp) << "x " << x[(size_t)i];
  }
  for (int64_t i = 0; i + 1 < n; i += 2) {  // (v, -v) pairs
    const float negated = -base[(size_t)i];
    EXPECT_EQ(std::memcmp(&base[(size_t)i + 1], &negated, sizeof negated), 0) << "x " << x[(size_t)i];
  }
  for (int level = SR_SIMD_BASELINE; level < SR_SIMD_COUNT; level++) {
    if (sr_simd_select((sr_simd_level)level) != 0) continue;  // this CPU lacks it
    Vec out = x;
    sr_tanh_forward(out.data(), out.data(), n);  // in place
    EXPECT_EQ(std::memcmp(out.data(), base.data(), (size_t)n * sizeof(float)), 0) << "level " << level;
    for (int64_t len : {1, 3, 4, 5, 15, 16, 17, 33}) {
      Vec part((size_t)len + 1, 7.0f);  // one element past the end: must stay untouched
      sr_tanh_forward(part.data(), x.data() + 101, len);
      EXPECT_EQ(std::memcmp(part.data(), base.data() + 101, (size_t)len * sizeof(float)), 0)
          << "level " << level << " length " << len;
      EXPECT_EQ(part[(size_t)len], 7.0f) << "level " << level << " length " << len;
    }
  }
  ASSERT_EQ(sr_simd_select(chosen), 0);
}

// ---- L2 normalisation --------------------------------------------------------------------

TEST(L2Norm, ForwardValuesAndGradient) {
  const int64_t R = 4, D = 5;
  const float eps = 0.5f;
  // Rows 0..2 have norms >= 0.5 * sqrt(5) > eps; row 3 is scaled below eps (clamped).
  Vec in = signed_away_from_zero((size_t)(R * D), 0.5f, 1.0f, 30);
  for (int64_t j = 0; j < D; j++) in[3 * D + j] *= 0.05f;
  Vec out(in.size()), norms(R);
  sr_l2norm_forward(out.data(), norms.data(), in.data(), R, D, eps);
  for (int64_t r = 0; r < R; r++) {
    double ss = 0.0;
    for (int64_t j = 0; j < D; j++) ss += (double)in[r * D + j] * in[r * D + j];
    const double norm = std::max(std::sqrt(ss), (double)eps);
    EXPECT_NEAR(norms[r], norm, 1e-6);
    for (int64_t j = 0; j < D; j++) EXPECT_NEAR(out[r * D + j], in[r * D + j] / norm, 1e-6);
  }
  EXPECT_FLOAT_EQ(norms[3], eps);

  const Vec g = uniform(in.size(), -1.0f, 1.0f, 31);
  Vec din(in.size(), 0.0f);
  for (int pass = 0; pass < 2; pass++) sr_l2norm_backward(din.data(), g.data(), out.data(), norms.data(), R, D, eps);
  Vec probe(in.size()), probe_norms(R);
  expect_gradient("din", in, halved(din), [&] {
    sr_l2norm_forward(probe.data(), probe_norms.data(), in.data(), R, D, eps);
    return weighted_sum(probe, g);
  });
}

TEST(L2Norm, CsrValues) {
  // Row 0 valued {3, 4}: norm 5 -> {0.6, 0.8}. Row 1 empty. Row 2 valued {0, 0}:
  // zero norm, stays 0. Binary rows: 4 entries -> 1/sqrt(4) = 0.5 each.
  sr_csr x;
  sr_csr_alloc(&x, 3, 8, 4, 1);
  const int64_t indptr[] = {0, 2, 2, 4};
  const int32_t indices[] = {1, 5, 0, 7};
  const float values[] = {3.0f, 4.0f, 0.0f, 0.0f};
  std::copy(indptr, indptr + 4, x.indptr);
  std::copy(indices, indices + 4, x.indices);
  std::copy(values, values + 4, x.values);
  Vec out(4, 9.0f);
  sr_csr_l2norm_values(out.data(), &x);
  EXPECT_FLOAT_EQ(out[0], 0.6f);
  EXPECT_FLOAT_EQ(out[1], 0.8f);
  EXPECT_EQ(out[2], 0.0f);
  EXPECT_EQ(out[3], 0.0f);
  sr_csr_free(&x);

  Csr binary(Vec{1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1}, 2, 6, false);
  Vec bout((size_t)binary.get()->nnz);
  sr_csr_l2norm_values(bout.data(), binary.get());
  EXPECT_EQ(bout, (Vec{0.5f, 0.5f, 0.5f, 0.5f, 1.0f}));
}

// ---- dropout ---------------------------------------------------------------------------------

static const uint64_t kSeed = 99;

// The draws the header promises: row `sample` at `step` uses (seed, purpose, step, sample).
static Vec expected_mask(int64_t n, float p, uint32_t purpose, uint64_t step, int64_t sample) {
  sr_rng r;
  sr_rng_init(&r, kSeed, purpose, step, (uint64_t)sample);
  Vec m((size_t)n);
  for (float &x : m) x = sr_rng_uniform(&r) < p ? 0.0f : 1.0f / (1.0f - p);
  return m;
}

static Vec dropout_mask(const Vec &in, const std::vector<int64_t> &ids, int64_t D, float p, uint64_t step,
                        Vec *out = nullptr) {
  Vec mask(in.size()), o(in.size());
  sr_dropout_forward(o.data(), mask.data(), in.data(), (int64_t)ids.size(), D, p, kSeed, SR_RNG_DROPOUT, step,
                     ids.data());
  if (out) *out = o;
  return mask;
}

TEST(Dropout, MaskIsKeyedBySampleNotRow) {
  const int64_t D = 64;
  const float p = 0.5f;
  const std::vector<int64_t> ids_a = {10, 31, 12}, ids_b = {12, 99};
  const Vec in_a = uniform(3 * D, -1.0f, 1.0f, 40), in_b = uniform(2 * D, -1.0f, 1.0f, 41);
  const Vec mask_a = dropout_mask(in_a, ids_a, D, p, 5), mask_b = dropout_mask(in_b, ids_b, D, p, 5);
  // Sample 12 is row 2 of batch A and row 0 of batch B.
  EXPECT_TRUE(std::equal(mask_a.begin() + 2 * D, mask_a.end(), mask_b.begin()));
  for (size_t r = 0; r < ids_a.size(); r++) {
    const Vec want = expected_mask(D, p, SR_RNG_DROPOUT, 5, ids_a[r]);
    EXPECT_TRUE(std::equal(want.begin(), want.end(), mask_a.begin() + (int64_t)r * D)) << "row " << r;
  }
  // Another step, or another layer's purpose, draws another mask.
  EXPECT_NE(dropout_mask(in_a, ids_a, D, p, 6), mask_a);
  Vec other_layer(in_a.size()), out(in_a.size());
  sr_dropout_forward(out.data(), other_layer.data(), in_a.data(), 3, D, p, kSeed, SR_RNG_DROPOUT + 256, 5,
                     ids_a.data());
  EXPECT_NE(other_layer, mask_a);
}

TEST(Dropout, FractionAndScaling) {
  const int64_t R = 50, D = 200;
  const float p = 0.3f;
  std::vector<int64_t> ids(R);
  for (int64_t r = 0; r < R; r++) ids[r] = 1000 + 7 * r;
  const Vec in = uniform((size_t)(R * D), -1.0f, 1.0f, 42);
  Vec out;
  const Vec mask = dropout_mask(in, ids, D, p, 0, &out);
  int64_t dropped = 0;
  for (size_t i = 0; i < mask.size(); i++) {
    if (mask[i] == 0.0f) {
      dropped++;
    } else {
      EXPECT_FLOAT_EQ(mask[i], 1.0f / 0.7f);
    }
    EXPECT_EQ(out[i], in[i] * mask[i]);
  }
  // 10000 Bernoulli(0.3) draws: std 0.0046, so +-0.02 is over 4 sigma.
  EXPECT_NEAR((double)dropped / (double)mask.size(), p, 0.02);

  // p == 0: identity.
  const Vec ones_mask = dropout_mask(in, ids, D, 0.0f, 0, &out);
  EXPECT_EQ(ones_mask, Vec(in.size(), 1.0f));
  EXPECT_EQ(out, in);
}

TEST(Dropout, GradientWithFixedMask) {
  const int64_t R = 3, D = 8;
  const std::vector<int64_t> ids = {4, 8, 15};
  Vec in = uniform((size_t)(R * D), -1.0f, 1.0f, 43);
  const Vec g = uniform(in.size(), -1.0f, 1.0f, 44);
  const Vec mask = dropout_mask(in, ids, D, 0.4f, 3);
  Vec din(in.size(), 0.0f);
  for (int pass = 0; pass < 2; pass++) sr_dropout_backward(din.data(), g.data(), mask.data(), R * D);
  Vec out;
  // The same key redraws the same mask, so the forward below is a fixed linear map.
  expect_gradient("din", in, halved(din), [&] {
    dropout_mask(in, ids, D, 0.4f, 3, &out);
    return weighted_sum(out, g);
  });
}

TEST(Dropout, CsrValuesKeyedBySample) {
  const int64_t C = 300;
  const float p = 0.5f;
  // Batch A: rows for samples {3, 21}; batch B: sample 21 alone. Same structure for sample 21.
  const Vec row3 = sparse_dense(1, C, 0.3f, false, 50), row21 = sparse_dense(1, C, 0.4f, false, 51);
  Vec dense_a = row3;
  dense_a.insert(dense_a.end(), row21.begin(), row21.end());
  Csr a(dense_a, 2, C, true), b(row21, 1, C, true);
  const std::vector<int64_t> ids_a = {3, 21}, ids_b = {21};
  Vec va(a.get()->values, a.get()->values + a.get()->nnz), vb(b.get()->values, b.get()->values + b.get()->nnz);
  sr_csr_dropout_values(va.data(), a.get(), p, kSeed, SR_RNG_DROPOUT, 9, ids_a.data());
  sr_csr_dropout_values(vb.data(), b.get(), p, kSeed, SR_RNG_DROPOUT, 9, ids_b.data());
  const int64_t off = a.get()->indptr[1];
  EXPECT_TRUE(std::equal(vb.begin(), vb.end(), va.begin() + off));
  // k-th entry of a row uses the k-th draw of its stream; kept entries scale by 1/(1-p) = 2.
  int64_t dropped = 0;
  for (int64_t r = 0; r < 2; r++) {
    const int64_t begin = a.get()->indptr[r], len = sr_csr_row_len(a.get(), r);
    const Vec want = expected_mask(len, p, SR_RNG_DROPOUT, 9, ids_a[r]);
    for (int64_t k = 0; k < len; k++) {
      EXPECT_EQ(va[begin + k], a.get()->values[begin + k] * want[k]) << "row " << r << " entry " << k;
      dropped += va[begin + k] == 0.0f;
    }
  }
  // About 210 entries at p = 0.5: std ~0.035, so +-0.15 is over 4 sigma.
  EXPECT_NEAR((double)dropped / (double)a.get()->nnz, p, 0.15);
}

// ---- softmax NLL --------------------------------------------------------------------------------

TEST(SoftmaxNll, HandComputedValueAndInPlace) {
  // Row 0: logits {0,0,0}, binary targets {0, 2} (as 1s): log_softmax = -ln 3 each,
  //   loss = 2 ln 3 = 2.1972246; d = 2 * {1/3,1/3,1/3} - {1,0,1} = {-1/3, 2/3, -1/3}.
  // Row 1: logits {1001,1002,1003} (stable only with max subtraction), target col 2
  //   weight 2: softmax = e^{0,1,2}/(1+e+e^2) = {0.0900306, 0.2447285, 0.6652410},
  //   loss = -2 log 0.6652410 = 2 * 0.4076060 = 0.8152119;
  //   d = 2*softmax - {0,0,2} = {0.1800611, 0.4894569, -0.6695181}.
  // norm = 2: loss = (2.1972246 + 0.8152119) / 2 = 1.5062183, d halved.
  sr_csr t;
  sr_csr_alloc(&t, 2, 3, 3, 1);
  const int64_t indptr[] = {0, 2, 3};
  const int32_t indices[] = {0, 2, 2};
  const float values[] = {1.0f, 1.0f, 2.0f};
  std::copy(indptr, indptr + 3, t.indptr);
  std::copy(indices, indices + 3, t.indices);
  std::copy(values, values + 3, t.values);
  const Vec logits = {0.0f, 0.0f, 0.0f, 1001.0f, 1002.0f, 1003.0f};
  Vec d(6);
  EXPECT_NEAR(sr_softmax_nll(d.data(), logits.data(), &t, 2, 3, 2.0f), 1.5062183, 1e-6);
  const Vec want = {-1.0f / 6, 1.0f / 3, -1.0f / 6, 0.0900306f, 0.2447285f, -0.3347591f};
  for (size_t i = 0; i < want.size(); i++) EXPECT_NEAR(d[i], want[i], 1e-6) << i;

  Vec in_place = logits;
  EXPECT_NEAR(sr_softmax_nll(in_place.data(), in_place.data(), &t, 2, 3, 2.0f), 1.5062183, 1e-6);
  EXPECT_EQ(in_place, d);
  sr_csr_free(&t);
}

TEST(SoftmaxNll, GradientMatchesFiniteDifferences) {
  const int64_t R = 3, C = 11;
  for (bool binary : {false, true}) {
    Csr t(sparse_dense(R, C, 0.3f, binary, 60), R, C, !binary);
    Vec logits = uniform((size_t)(R * C), -2.0f, 2.0f, 61);
    Vec d(logits.size(), 5.0f);  // garbage: the loss WRITES its gradient
    sr_softmax_nll(d.data(), logits.data(), t.get(), R, C, 4.0f);
    Vec scratch(logits.size());
    expect_gradient(binary ? "dlogits binary" : "dlogits valued", logits, d,
                    [&] { return sr_softmax_nll(scratch.data(), logits.data(), t.get(), R, C, 4.0f); });
  }
}

// ---- Gaussian KL ------------------------------------------------------------------------------------

TEST(GaussianKl, HandComputedValues) {
  // mu = 0, logvar = 0 is N(0, 1) itself: KL 0, zero gradients.
  Vec zeros(4, 0.0f), dmu(4, 0.0f), dlv(4, 0.0f);
  EXPECT_EQ(sr_gaussian_kl(dmu.data(), dlv.data(), zeros.data(), zeros.data(), 2, 2, 1.0f, 1.0f), 0.0);
  EXPECT_EQ(dmu, zeros);
  EXPECT_EQ(dlv, zeros);
  // mu = {0, 1, 0}, logvar = {0, 0, ln 2}: terms 0, 0.5(0+1+1-1) = 0.5,
  // 0.5(-ln 2 + 2 - 1) = 0.1534264; sum 0.6534264, / norm 2 = 0.3267132.
  // dmu = mu / 2 = {0, 0.5, 0}; dlogvar = 0.5(e^lv - 1) / 2 = {0, 0, 0.25}.
  const Vec mu = {0.0f, 1.0f, 0.0f}, lv = {0.0f, 0.0f, std::log(2.0f)};
  Vec gm(3, 0.0f), gl(3, 0.0f);
  EXPECT_NEAR(sr_gaussian_kl(gm.data(), gl.data(), mu.data(), lv.data(), 1, 3, 2.0f, 1.0f), 0.3267132, 1e-6);
  expect_all_near(gm, Vec{0.0f, 0.5f, 0.0f}, 1e-6f, "dmu");
  expect_all_near(gl, Vec{0.0f, 0.0f, 0.25f}, 1e-6f, "dlogvar");
  // Value only.
  EXPECT_NEAR(sr_gaussian_kl(nullptr, nullptr, mu.data(), lv.data(), 1, 3, 2.0f, 1.0f), 0.3267132, 1e-6);
}

TEST(GaussianKl, ScaledGradientsMatchFiniteDifferences) {
  const int64_t R = 2, K = 4;
  const float norm = 3.0f, scale = 0.7f;
  Vec mu = uniform((size_t)(R * K), -1.5f, 1.5f, 70), lv = uniform((size_t)(R * K), -2.0f, 1.0f, 71);
  Vec dmu(mu.size(), 0.0f), dlv(lv.size(), 0.0f);
  for (int pass = 0; pass < 2; pass++)
    sr_gaussian_kl(dmu.data(), dlv.data(), mu.data(), lv.data(), R, K, norm, scale);
  auto loss = [&] { return scale * sr_gaussian_kl(nullptr, nullptr, mu.data(), lv.data(), R, K, norm, scale); };
  expect_gradient("dmu", mu, halved(dmu), loss);
  expect_gradient("dlogvar", lv, halved(dlv), loss);
}

// ---- reparameterisation ---------------------------------------------------------------------------------

TEST(Reparam, NoiseIsKeyedAndGradientsMatch) {
  const int64_t R = 3, K = 5;
  const std::vector<int64_t> ids = {7, 70, 700};
  Vec mu = uniform((size_t)(R * K), -1.0f, 1.0f, 80), lv = uniform((size_t)(R * K), -1.5f, 1.0f, 81);
  Vec z(mu.size()), eps(mu.size());
  sr_reparam_forward(z.data(), eps.data(), mu.data(), lv.data(), R, K, kSeed, 12, ids.data());
  for (int64_t r = 0; r < R; r++) {
    sr_rng rng;
    sr_rng_init(&rng, kSeed, SR_RNG_NOISE, 12, (uint64_t)ids[r]);
    for (int64_t k = 0; k < K; k++) {
      const int64_t i = r * K + k;
      EXPECT_EQ(eps[i], sr_rng_normal(&rng)) << "row " << r << " dim " << k;
      EXPECT_NEAR(z[i], mu[i] + eps[i] * std::exp(0.5f * lv[i]), 1e-6);
    }
  }

  const Vec g = uniform(z.size(), -1.0f, 1.0f, 82);
  Vec dmu(mu.size(), 0.0f), dlv(lv.size(), 0.0f);
  for (int pass = 0; pass < 2; pass++)
    sr_reparam_backward(dmu.data(), dlv.data(), g.data(), eps.data(), lv.data(), R, K);
  // Same key => same eps on every forward: the noise is fixed for the check.
  Vec probe_z(z.size()), probe_eps(z.size());
  auto loss = [&] {
    sr_reparam_forward(probe_z.data(), probe_eps.data(), mu.data(), lv.data(), R, K, kSeed, 12, ids.data());
    return weighted_sum(probe_z, g);
  };
  expect_gradient("dmu", mu, halved(dmu), loss);
  expect_gradient("dlogvar", lv, halved(dlv), loss);
}

// ---- vector helpers ------------------------------------------------------------------------------------------

TEST(VectorHelpers, SumSquaresAndAxpy) {
  const Vec x = {1.0f, -2.0f, 3.0f};
  EXPECT_EQ(sr_sum_squares(x.data(), 3), 14.0);  // 1 + 4 + 9
  Vec y = {10.0f, 20.0f, 30.0f};
  sr_axpy(y.data(), 0.5f, x.data(), 3);
  EXPECT_EQ(y, (Vec{10.5f, 19.0f, 31.5f}));
}

// Lengths around the 16- and 4-lane steps and the 1024-value blocks.
static const int64_t kExpLengths[] = {1, 3, 4, 15, 16, 17, 35, 1023, 1024, 1025, 3001};

static Vec exp_inputs(int64_t n) {
  Vec x((size_t)n);
  for (int64_t i = 0; i < n; i++) x[(size_t)i] = -0.013f * (float)((i * 7919) % 9000);  // 0 down to -117
  if (n > 2) x[2] = -INFINITY;
  return x;
}

TEST(VectorHelpers, ExpShiftedMatchesExpAndSumsIt) {
  for (int64_t n : kExpLengths) {
    const Vec x = exp_inputs(n);
    Vec out((size_t)n);
    const double sum = sr_exp_shifted(out.data(), x.data(), n, 0.5f);
    double want_sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
      const double want = std::exp((double)x[(size_t)i] - 0.5);
      want_sum += want;
      if (want < 1e-37) {
        EXPECT_LE(out[(size_t)i], 1e-37f) << "n " << n << " i " << i;  // flushed to about 2^-125
      } else {
        // The polynomial's 1e-6, plus the float rounding of t = (x - shift) * log2(e): ~|t| ulps of 2^t.
        const double t = std::fabs((double)x[(size_t)i] - 0.5) * 1.4427;
        EXPECT_NEAR(out[(size_t)i], want, (1e-6 + 1.2e-7 * t) * want) << "n " << n << " i " << i;
      }
    }
    EXPECT_NEAR(sum, want_sum, 2e-6 * want_sum) << "n " << n;
  }
}

// Ranks of one job may run on CPUs with different vector units, and a run
// may resume on another node: every dispatched width must give the same
// values and the same sum, bit for bit.
TEST(VectorHelpers, ExpShiftedGivesTheSameBitsOnEveryVectorWidth) {
  const sr_simd_level chosen = sr_simd_selected();
  int compared = 0;
  for (int64_t n : kExpLengths) {
    const Vec x = exp_inputs(n);
    Vec base((size_t)n), out((size_t)n);
    ASSERT_EQ(sr_simd_select(SR_SIMD_BASELINE), 0);
    const double base_sum = sr_exp_shifted(base.data(), x.data(), n, 0.5f);
    for (int level = SR_SIMD_BASELINE + 1; level < SR_SIMD_COUNT; level++) {
      if (sr_simd_select((sr_simd_level)level) != 0) continue;  // this CPU lacks it
      const double sum = sr_exp_shifted(out.data(), x.data(), n, 0.5f);
      EXPECT_EQ(std::memcmp(&sum, &base_sum, sizeof sum), 0) << "level " << level << " n " << n;
      EXPECT_EQ(std::memcmp(out.data(), base.data(), (size_t)n * sizeof(float)), 0)
          << "level " << level << " n " << n;
      compared++;
    }
  }
  ASSERT_EQ(sr_simd_select(chosen), 0);
  if (compared == 0) GTEST_SKIP() << "this CPU has only the baseline vector width";
}

// kernel_check.h — helpers for testing math kernels (nn, embedding,
// contrastive, feature masks): keyed test data, central finite differences,
// CSR matrices built from row lists.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

extern "C" {
#include "shardrec/csr.h"
#include "shardrec/rng.h"
}

namespace kcheck {

using Vec = std::vector<float>;

// Deterministic test data: uniform in [lo, hi) from its own Philox stream.
inline Vec uniform(size_t n, float lo, float hi, uint64_t stream) {
  sr_rng r;
  sr_rng_init(&r, 4048, SR_RNG_SYNTH, 0, stream);
  Vec v(n);
  for (float &x : v) x = lo + (hi - lo) * sr_rng_uniform(&r);
  return v;
}

// L = sum(out * g) in double: the scalar loss whose gradient w.r.t. out is g.
inline double weighted_sum(const Vec &out, const Vec &g) {
  double s = 0.0;
  for (size_t i = 0; i < out.size(); i++) s += (double)out[i] * g[i];
  return s;
}

// Central differences of `loss` w.r.t. every element of x, against `analytic`.
// The forwards run in float: a step of 1e-3 and a loose tolerance.
inline void expect_gradient(const char *what, Vec &x, const Vec &analytic, const std::function<double()> &loss,
                            float h = 1e-3f) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  for (size_t i = 0; i < x.size(); i++) {
    const float saved = x[i];
    x[i] = saved + h;
    const double plus = loss();
    x[i] = saved - h;
    const double minus = loss();
    x[i] = saved;
    const double numeric = (plus - minus) / (2.0 * h);
    EXPECT_NEAR(analytic[i], numeric, 1e-3 + 1e-2 * std::fabs(numeric)) << what << " element " << i;
  }
}

// Backward kernels accumulate: tests run them twice and check half the sum.
inline Vec halved(Vec v) {
  for (float &x : v) x *= 0.5f;
  return v;
}

inline void expect_all_near(const Vec &got, const Vec &want, float rel, const char *what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); i++)
    EXPECT_NEAR(got[i], want[i], rel * (1.0f + std::fabs(want[i]))) << what << " element " << i;
}

// A binary CSR matrix owning its storage, from its rows' (sorted) column lists.
class CsrRows {
 public:
  CsrRows(const std::vector<std::vector<int32_t>> &rows, int64_t cols) {
    int64_t nnz = 0;
    for (const auto &r : rows) nnz += (int64_t)r.size();
    sr_csr_alloc(&m_, (int64_t)rows.size(), cols, nnz, 0);
    int64_t k = 0;
    for (size_t r = 0; r < rows.size(); r++) {
      for (int32_t c : rows[r]) m_.indices[k++] = c;
      m_.indptr[r + 1] = k;
    }
  }
  ~CsrRows() { sr_csr_free(&m_); }
  CsrRows(CsrRows &&other) noexcept : m_(other.m_) { other.m_ = sr_csr{}; }
  CsrRows(const CsrRows &) = delete;
  CsrRows &operator=(const CsrRows &) = delete;
  const sr_csr *get() const { return &m_; }

 private:
  sr_csr m_;
};

}  // namespace kcheck

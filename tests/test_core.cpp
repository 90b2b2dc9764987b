// test_core.cpp — error reporting, Philox streams, parameter registry, Adam/AdamW, CSR.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>
#include <vector>

#include "test_util.h"

extern "C" {
#include "shardrec/csr.h"
#include "shardrec/error.h"
#include "shardrec/optim.h"
#include "shardrec/params.h"
#include "shardrec/rng.h"
}

static int fails_with_context() {
  SR_TRY(SR_FAIL(SR_EFORMAT, "row %d is bad", 7));
  return SR_OK;
}

TEST(Error, MessageCodeAndPrefix) {
  sr_error_clear();
  EXPECT_EQ(fails_with_context(), SR_EFORMAT);
  sr_error_prefix("reading '%s'", "x.h5");
  EXPECT_STREQ(sr_error_message(), "reading 'x.h5': row 7 is bad");
  EXPECT_EQ(sr_error_code(), SR_EFORMAT);
  EXPECT_NE(std::strstr(sr_error_where(), "test_core.cpp:"), nullptr);
  sr_error_clear();
  EXPECT_STREQ(sr_error_message(), "");
}

// Known-answer vectors from the Random123 distribution (kat_vectors, philox4x32_10).
TEST(Philox, KnownAnswers) {
  struct Kat {
    uint32_t ctr[4], key[2], out[4];
  } kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat &k : kats) {
    uint32_t out[4];
    sr_philox4x32(k.key, k.ctr, out);
    for (int i = 0; i < 4; i++) EXPECT_EQ(out[i], k.out[i]) << "word " << i;
  }
}

TEST(Rng, StreamsAreKeyedNotSequential) {
  sr_rng a, b;
  // Same key => same draws, regardless of what was drawn elsewhere.
  sr_rng_init(&a, 42, SR_RNG_DROPOUT, 7, 123456789012ull);
  sr_rng_init(&b, 1, SR_RNG_DROPOUT, 0, 0);
  for (int i = 0; i < 10; i++) sr_rng_u32(&b);
  sr_rng_init(&b, 42, SR_RNG_DROPOUT, 7, 123456789012ull);
  for (int i = 0; i < 100; i++) EXPECT_EQ(sr_rng_u32(&a), sr_rng_u32(&b));
  // Any component of the key changes the stream.
  auto first = [](uint64_t seed, uint32_t purpose, uint64_t step, uint64_t sample) {
    sr_rng r;
    sr_rng_init(&r, seed, purpose, step, sample);
    return sr_rng_u32(&r);
  };
  uint32_t base = first(42, SR_RNG_DROPOUT, 7, 5);
  EXPECT_NE(base, first(43, SR_RNG_DROPOUT, 7, 5));
  EXPECT_NE(base, first(42, SR_RNG_NOISE, 7, 5));
  EXPECT_NE(base, first(42, SR_RNG_DROPOUT + 256, 7, 5));
  EXPECT_NE(base, first(42, SR_RNG_DROPOUT, 8, 5));
  EXPECT_NE(base, first(42, SR_RNG_DROPOUT, 7, 6));
  EXPECT_NE(base, first(42, SR_RNG_DROPOUT, 7, 5 + (1ull << 32)));
}

TEST(Rng, DistributionsHaveTheRightMoments) {
  sr_rng r;
  sr_rng_init(&r, 7, SR_RNG_NOISE, 0, 0);
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0;
  float umin = 1, umax = 0;
  for (int i = 0; i < n; i++) {
    float u = sr_rng_uniform(&r);
    umin = std::min(umin, u), umax = std::max(umax, u);
    su += u;
    float z = sr_rng_normal(&r);
    sn += z, sn2 += (double)z * z;
  }
  EXPECT_GE(umin, 0.0f);
  EXPECT_LT(umax, 1.0f);
  EXPECT_NEAR(su / n, 0.5, 0.005);
  EXPECT_NEAR(sn / n, 0.0, 0.01);
  EXPECT_NEAR(sn2 / n, 1.0, 0.015);
  // sr_rng_below: every value of a small range hit about equally often.
  int counts[7] = {0};
  for (int i = 0; i < 70000; i++) counts[sr_rng_below(&r, 7)]++;
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);
}

TEST(Rng, PermutationIsAPermutation) {
  sr_rng r;
  sr_rng_init(&r, 1, SR_RNG_SHUFFLE, 3, 0);
  std::vector<int64_t> p(1000);
  sr_rng_permutation(&r, p.data(), (int64_t)p.size());
  std::set<int64_t> s(p.begin(), p.end());
  EXPECT_EQ(s.size(), p.size());
  EXPECT_EQ(*s.begin(), 0);
  EXPECT_EQ(*s.rbegin(), 999);
  int fixed = 0;
  for (size_t i = 0; i < p.size(); i++) fixed += p[i] == (int64_t)i;
  EXPECT_LT(fixed, 10);  // a shuffle, not the identity
}

// A sparse tail (embedding tables): no dense gradient, so the optimizer's
// dense step leaves it alone and the gradient arena stops before it.
TEST(Rng, SkipEqualsDrawing) {
  for (uint64_t consumed : {0, 1, 3, 4, 7}) {
    for (uint64_t n : {0, 1, 2, 3, 4, 5, 9, 1000}) {
      sr_rng a, b;
      sr_rng_init(&a, 11, SR_RNG_INIT, 2, 3);
      sr_rng_init(&b, 11, SR_RNG_INIT, 2, 3);
      for (uint64_t k = 0; k < consumed; k++) sr_rng_u32(&a), sr_rng_u32(&b);
      for (uint64_t k = 0; k < n; k++) sr_rng_u32(&a);
      sr_rng_skip(&b, n);
      for (int k = 0; k < 6; k++) ASSERT_EQ(sr_rng_u32(&a), sr_rng_u32(&b)) << consumed << " then " << n;
    }
  }
}

// A tensor split along either dimension initialises to the slices of the
// whole tensor, for both initialisers (one skips draws, one must draw them).
TEST(Params, ShardedInitialisationIsTheSliceOfTheWhole) {
  const int64_t shape[2] = {7, 5};
  sr_params whole;
  sr_params_init(&whole);
  int w = sr_params_add(&whole, "w", SR_PARAM_WEIGHT, 2, shape);
  int b = sr_params_add(&whole, "b", SR_PARAM_BIAS, 2, shape);
  sr_params_finalize(&whole);
  sr_param_init_xavier_uniform(&whole, w, 5, 7, 5);
  sr_param_init_truncated_normal(&whole, b, 5, 0.1f);
  for (int dim = 0; dim < 2; dim++) {
    for (int64_t begin : {0, 1, 3}) {
      const int64_t extent = 2;
      int64_t local[2] = {shape[0], shape[1]};
      local[dim] = extent;
      sr_params part;
      sr_params_init(&part);
      int pw = sr_params_add(&part, "w", SR_PARAM_WEIGHT, 2, local);
      int pb = sr_params_add(&part, "b", SR_PARAM_BIAS, 2, local);
      sr_params_set_shard(&part, pw, dim, begin, shape[dim]);
      sr_params_set_shard(&part, pb, dim, begin, shape[dim]);
      sr_params_finalize(&part);
      sr_param_init_xavier_uniform(&part, pw, 5, 7, 5);
      sr_param_init_truncated_normal(&part, pb, 5, 0.1f);
      int64_t full[SR_PARAM_MAX_DIM];
      sr_param_full_shape(&part.items[pw], full);
      EXPECT_EQ(full[0], 7);
      EXPECT_EQ(full[1], 5);
      for (int t = 0; t < 2; t++)
        for (int64_t r = 0; r < local[0]; r++)
          for (int64_t c = 0; c < local[1]; c++) {
            const int64_t wr = dim == 0 ? r + begin : r, wc = dim == 1 ? c + begin : c;
            ASSERT_EQ(part.items[t].value[r * local[1] + c], whole.items[t].value[wr * 5 + wc])
                << part.items[t].name << " dim " << dim << " begin " << begin << " at " << r << "," << c;
          }
      EXPECT_EQ(sr_params_sharded(&part), 2);
      sr_params_free(&part);
    }
  }
  EXPECT_EQ(sr_params_sharded(&whole), 0);
  sr_params_free(&whole);
}

TEST(Params, SparseTailHasNoDenseGradientAndDenseAdamSkipsIt) {
  sr_params ps;
  sr_params_init(&ps);
  int64_t s1[1] = {4}, s2[2] = {10, 3};
  int w = sr_params_add(&ps, "mlp.weight", SR_PARAM_WEIGHT, 1, s1);
  int t = sr_params_add(&ps, "feature.table", SR_PARAM_EMBEDDING, 2, s2);
  sr_params_finalize_sparse_tail(&ps, 1);
  EXPECT_EQ(ps.n_dense, 1);
  EXPECT_EQ(ps.dense_total, 16);  // the table starts at the next 64-byte boundary
  EXPECT_EQ(ps.total, 46);
  EXPECT_EQ(ps.items[w].grad, ps.grads);
  EXPECT_EQ(ps.items[t].grad, nullptr);
  for (int64_t j = 0; j < 30; j++) ps.items[t].value[j] = 1.0f;
  for (int64_t j = 0; j < 4; j++) ps.items[w].grad[j] = 1.0f;
  sr_optim o;
  sr_optim_init(&o, SR_OPTIM_ADAMW);
  o.weight_decay = 0.5f;  // would move the table if the dense step reached it
  EXPECT_EQ(sr_optim_step(&o, &ps), 0);
  EXPECT_LT(ps.items[w].value[0], 0.0f);
  for (int64_t j = 0; j < 30; j++) {
    EXPECT_EQ(ps.items[t].value[j], 1.0f);
    EXPECT_EQ(ps.items[t].adam_v[j], 0.0f);
  }
  ps.items[w].grad[0] = 2.0f;
  EXPECT_EQ(sr_params_grad_sq_norm(&ps), 4.0);
  sr_params_free(&ps);
}

TEST(Params, RegistryLaysOutAlignedContiguousArenas) {
  sr_params ps;
  sr_params_init(&ps);
  int64_t s1[2] = {3, 5}, s2[1] = {7};
  int a = sr_params_add(&ps, "layer.weight", SR_PARAM_WEIGHT, 2, s1);
  int b = sr_params_add(&ps, "layer.bias", SR_PARAM_BIAS, 1, s2);
  sr_params_finalize(&ps);
  EXPECT_EQ(ps.items[a].numel, 15);
  EXPECT_EQ(ps.items[a].offset, 0);
  EXPECT_EQ(ps.items[b].offset, 16);  // 64-byte aligned start
  EXPECT_EQ(ps.total, 23);
  EXPECT_EQ(ps.items[b].grad, ps.grads + 16);
  EXPECT_EQ(((uintptr_t)ps.items[b].value) % 64, 0u);
  EXPECT_EQ(sr_params_find(&ps, "layer.bias"), &ps.items[b]);
  EXPECT_EQ(sr_params_find(&ps, "nope"), nullptr);
  // Initialisation is a function of (seed, index) only.
  sr_param_init_xavier_uniform(&ps, a, 9, 3, 5);
  std::vector<float> first(ps.items[a].value, ps.items[a].value + 15);
  float limit = std::sqrt(6.0f / 8.0f);
  for (float v : first) EXPECT_LE(std::fabs(v), limit);
  sr_param_init_xavier_uniform(&ps, a, 9, 3, 5);
  for (int i = 0; i < 15; i++) EXPECT_EQ(first[i], ps.items[a].value[i]);
  sr_param_init_truncated_normal(&ps, b, 9, 0.001f);
  for (int i = 0; i < 7; i++) EXPECT_LE(std::fabs(ps.items[b].value[i]), 0.002f);
  sr_params_free(&ps);
}

// Adam on one scalar against the update written out by hand.
TEST(Optim, AdamAndAdamWMatchHandComputedUpdates) {
  for (int kind = 0; kind < 2; kind++) {
    sr_params ps;
    sr_params_init(&ps);
    int64_t shape[1] = {1};
    sr_params_add(&ps, "w", SR_PARAM_WEIGHT, 1, shape);
    sr_params_finalize(&ps);
    sr_optim o;
    sr_optim_init(&o, (sr_optim_kind)kind);
    o.lr = 0.1f;
    o.weight_decay = 0.5f;
    double w = 2.0, m = 0, v = 0;
    ps.values[0] = 2.0f;
    const double grads[3] = {0.3, -1.0, 0.7};
    for (int t = 1; t <= 3; t++) {
      ps.grads[0] = (float)grads[t - 1];
      sr_optim_step(&o, &ps);
      double g = grads[t - 1] + (kind == SR_OPTIM_ADAM ? 0.5 * w : 0.0);
      m = 0.9 * m + 0.1 * g;
      v = 0.999 * v + 0.001 * g * g;
      double mhat = m / (1 - std::pow(0.9, t)), vhat = v / (1 - std::pow(0.999, t));
      if (kind == SR_OPTIM_ADAMW) w *= 1 - 0.1 * 0.5;
      w -= 0.1 * mhat / (std::sqrt(vhat) + 1e-8);
      EXPECT_NEAR(ps.values[0], w, 1e-5) << "kind " << kind << " step " << t;
      EXPECT_EQ(ps.grads[0], 0.0f);  // consumed, ready for the next backward
    }
    EXPECT_EQ(o.step, 3);
    sr_params_free(&ps);
  }
}

// The update is elementwise: an element's result must not depend on where it
// sits (vectorised body, scalar remainder, another thread's chunk or range).
// Every element of a tensor whose length is no multiple of any vector width
// starts from the same state and gets the same gradients: all must end
// bit-identical, and equal to a tensor of one element updated alike.
TEST(Optim, EveryElementGetsTheSameBitsWhereverItSits) {
  for (int kind = 0; kind < 2; kind++) {
    sr_params ps;
    sr_params_init(&ps);
    int64_t shape[1] = {103}, one[1] = {1};
    sr_params_add(&ps, "w", SR_PARAM_WEIGHT, 1, shape);
    sr_params_add(&ps, "v", SR_PARAM_WEIGHT, 1, one);
    sr_params_finalize(&ps);
    sr_optim o;
    sr_optim_init(&o, (sr_optim_kind)kind);
    o.weight_decay = 0.01f;
    for (int64_t i = 0; i < ps.total; i++) ps.values[i] = 0.37f;
    const sr_arena_range halves[2] = {{0, 41}, {41, ps.dense_total}};  // a range boundary inside w
    for (int t = 0; t < 5; t++) {
      for (int64_t i = 0; i < ps.total; i++) ps.grads[i] = 0.1f * (float)(t + 1) - 0.23f;
      sr_optim_step_ranges(&o, &ps, halves, 2);
    }
    const float *w = ps.items[0].value, *v = ps.items[1].value;
    for (int64_t i = 0; i < 103; i++) {
      EXPECT_EQ(std::memcmp(&w[i], &v[0], sizeof(float)), 0) << "kind " << kind << " element " << i;
      EXPECT_EQ(std::memcmp(&ps.items[0].adam_v[i], &ps.items[1].adam_v[0], sizeof(float)), 0) << i;
    }
    sr_params_free(&ps);
  }
}

TEST(Optim, CountsNonFiniteGradients) {
  sr_params ps;
  sr_params_init(&ps);
  int64_t shape[1] = {4};
  sr_params_add(&ps, "w", SR_PARAM_WEIGHT, 1, shape);
  sr_params_finalize(&ps);
  sr_optim o;
  sr_optim_init(&o, SR_OPTIM_ADAM);
  EXPECT_EQ(sr_optim_step(&o, &ps), 0);
  ps.grads[1] = NAN;
  ps.grads[3] = INFINITY;
  EXPECT_EQ(sr_optim_step(&o, &ps), 2);
  sr_params_free(&ps);
}

TEST(Optim, BiasesAreNotDecayed) {
  sr_params ps;
  sr_params_init(&ps);
  int64_t shape[1] = {1};
  sr_params_add(&ps, "b", SR_PARAM_BIAS, 1, shape);
  sr_params_finalize(&ps);
  sr_optim o;
  sr_optim_init(&o, SR_OPTIM_ADAMW);
  o.weight_decay = 0.5f;
  ps.values[0] = 1.0f;
  ps.grads[0] = 0.0f;
  sr_optim_step(&o, &ps);
  EXPECT_EQ(ps.values[0], 1.0f);
  sr_params_free(&ps);
}

static sr_csr make_csr(std::vector<int64_t> indptr, std::vector<int32_t> indices, int64_t cols) {
  sr_csr m;
  sr_csr_alloc(&m, (int64_t)indptr.size() - 1, cols, (int64_t)indices.size(), 0);
  std::copy(indptr.begin(), indptr.end(), m.indptr);
  std::copy(indices.begin(), indices.end(), m.indices);
  return m;
}

TEST(Csr, ValidateNamesTheProblem) {
  struct Case {
    std::vector<int64_t> indptr;
    std::vector<int32_t> indices;
    const char *expect;
  } cases[] = {
      {{0, 2, 3}, {1, 4, 0}, nullptr},
      {{0, 2, 1}, {1, 4, 0}, "not monotone at row 1"},
      {{0, 2, 3}, {1, 5, 0}, "column 5 out of range"},
      {{0, 2, 3}, {4, 1, 0}, "unsorted"},
      {{0, 2, 3}, {1, 1, 0}, "duplicate"},
      {{1, 2, 3}, {1, 2, 0}, "indptr[0] is 1"},
      {{0, 1, 2}, {1, 2, 0}, "indptr ends at 2"},
  };
  for (auto &c : cases) {
    sr_csr m = make_csr(c.indptr, c.indices, 5);
    int rc = sr_csr_validate(&m, "/splits/train");
    if (!c.expect) {
      EXPECT_EQ(rc, SR_OK) << sr_error_message();
    } else {
      EXPECT_EQ(rc, SR_EFORMAT);
      EXPECT_NE(std::strstr(sr_error_message(), c.expect), nullptr) << sr_error_message();
      EXPECT_NE(std::strstr(sr_error_message(), "/splits/train"), nullptr);
    }
    sr_csr_free(&m);
  }
}

// The entries of columns [begin, end), renumbered from 0, every row kept
// (empty ones too), values and source positions carried along.
TEST(Csr, SliceColumns) {
  sr_csr m = srtest::csr_from_rows({{0, 2, 4}, {}, {1, 2, 3}, {4}}, 5, true);
  sr_csr s;
  std::vector<int64_t> source(m.nnz);
  sr_csr_slice_columns(&m, 2, 4, &s, source.data());
  EXPECT_EQ(s.n_rows, 4);
  EXPECT_EQ(s.n_cols, 2);
  EXPECT_EQ(s.nnz, 3);
  EXPECT_EQ(std::vector<int64_t>(s.indptr, s.indptr + 5), (std::vector<int64_t>{0, 1, 1, 3, 3}));
  EXPECT_EQ(std::vector<int32_t>(s.indices, s.indices + 3), (std::vector<int32_t>{0, 0, 1}));
  EXPECT_EQ(std::vector<int64_t>(source.begin(), source.begin() + 3), (std::vector<int64_t>{1, 4, 5}));
  for (int k = 0; k < 3; k++) EXPECT_EQ(s.values[k], m.values[source[k]]);
  EXPECT_EQ(sr_csr_validate(&s, "slice"), SR_OK);
  sr_csr_free(&s);
  sr_csr_slice_columns(&m, 0, 5, &s, nullptr);  // everything
  EXPECT_EQ(s.nnz, m.nnz);
  sr_csr_free(&s);
  sr_csr_free(&m);
}

TEST(Csr, GatherSliceAndSort) {
  sr_csr m = make_csr({0, 2, 2, 5}, {1, 3, 0, 2, 4}, 5);
  int64_t rows[3] = {2, 0, 1};
  sr_csr g;
  sr_csr_gather_rows(&m, rows, 3, &g);
  EXPECT_EQ(g.nnz, 5);
  std::vector<int32_t> gi(g.indices, g.indices + 5);
  EXPECT_EQ(gi, (std::vector<int32_t>{0, 2, 4, 1, 3}));
  EXPECT_EQ(g.indptr[1], 3);
  EXPECT_EQ(g.indptr[3], 5);
  sr_csr s;
  sr_csr_slice_rows(&m, 1, 3, &s);
  EXPECT_EQ(s.n_rows, 2);
  EXPECT_EQ(s.indptr[0], 0);
  EXPECT_EQ(s.indptr[2], 3);
  EXPECT_EQ(s.indices[0], 0);
  sr_csr u = make_csr({0, 3}, {4, 0, 2}, 5);
  sr_csr_sort_rows(&u);
  EXPECT_EQ(u.indices[0], 0);
  EXPECT_EQ(u.indices[2], 4);
  sr_csr_free(&m), sr_csr_free(&g), sr_csr_free(&s), sr_csr_free(&u);
}

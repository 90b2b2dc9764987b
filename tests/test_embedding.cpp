// test_embedding.cpp — embedding bags: hand-computed forward, finite-difference
// gradients (masked rows, default embedding, dropped values), sparse gradient
// against the dense one, keyed value dropout, lazy sparse Adam / Adagrad.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "kernel_check.h"

extern "C" {
#include "shardrec/embedding.h"
#include "shardrec/rng.h"
}

using kcheck::CsrRows;
using kcheck::Vec;

namespace {

// Dense table gradient of a sparse one (V, D), for comparisons.
Vec densify(const sr_sparse_grad &g, int64_t V) {
  Vec dense((size_t)(V * g.dim), 0.0f);
  sr_sparse_grad_add_to_dense(dense.data(), &g);
  return dense;
}

std::vector<int64_t> ids_of(const sr_sparse_grad &g) { return std::vector<int64_t>(g.ids, g.ids + g.n); }

// The straightforward dense gradient of the mean bag: row r with c kept values
// adds dout[r] / c to each kept id; default rows add dout[r] to ddefault.
void naive_bag_backward(Vec &dtable, Vec &ddefault, const Vec &dout, const sr_csr *bag,
                        const std::vector<uint8_t> &keep, const std::vector<uint8_t> &masked, int64_t D) {
  for (int64_t r = 0; r < bag->n_rows; r++) {
    int64_t kept = 0;
    for (int64_t k = bag->indptr[r]; k < bag->indptr[r + 1]; k++) kept += keep[k];
    if (masked[r] || kept == 0) {
      for (int64_t j = 0; j < D; j++) ddefault[j] += dout[r * D + j];
      continue;
    }
    for (int64_t k = bag->indptr[r]; k < bag->indptr[r + 1]; k++)
      if (keep[k])
        for (int64_t j = 0; j < D; j++) dtable[bag->indices[k] * D + j] += dout[r * D + j] / (float)kept;
  }
}

}  // namespace

// ---- forward -------------------------------------------------------------------------

TEST(EmbeddingBag, HandComputedForward) {
  // Table (5, 2): row v = (v, 10 v). Default (-1, -2).
  const int64_t D = 2;
  const Vec table = {0, 0, 1, 10, 2, 20, 3, 30, 4, 40};
  const Vec default_row = {-1.0f, -2.0f};
  // Rows: {0, 2} -> mean (1, 10); {} -> default; {3} masked -> default;
  // {1, 2, 4} with value 2 dropped -> mean of 1, 4 = (2.5, 25);
  // {2} with its only value dropped -> default.
  CsrRows bag({{0, 2}, {}, {3}, {1, 2, 4}, {2}}, 5);
  const std::vector<uint8_t> keep = {1, 1, 1, 1, 0, 1, 0};
  const std::vector<uint8_t> masked = {0, 0, 1, 0, 0};
  Vec out(5 * D, 99.0f);
  sr_embedding_bag_forward(out.data(), bag.get(), keep.data(), masked.data(), table.data(), default_row.data(), D);
  EXPECT_EQ(out, (Vec{1, 10, -1, -2, -1, -2, 2.5f, 25, -1, -2}));

  // Without keep / mask / default: all values kept, the empty row is zeros.
  sr_embedding_bag_forward(out.data(), bag.get(), nullptr, nullptr, table.data(), nullptr, D);
  // {1, 2, 4}: mean (7/3, 70/3).
  const Vec want = {1, 10, 0, 0, 3, 30, 7.0f / 3, 70.0f / 3, 2, 20};
  kcheck::expect_all_near(out, want, 1e-6f, "no mask");
}

// ---- gradients -----------------------------------------------------------------------

TEST(EmbeddingBag, GradientsMatchFiniteDifferences) {
  const int64_t V = 7, D = 3;
  // An empty row, a masked row, a row whose values all drop, a repeated id
  // across rows and a partially dropped row.
  CsrRows bag({{0, 3, 5}, {}, {1, 3}, {2, 6}, {3}, {0, 4, 5, 6}}, V);
  const std::vector<uint8_t> keep = {1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1};
  const std::vector<uint8_t> masked = {0, 0, 1, 0, 0, 0};
  const int64_t R = bag.get()->n_rows;
  Vec table = kcheck::uniform((size_t)(V * D), -1.0f, 1.0f, 1);
  Vec default_row = kcheck::uniform((size_t)D, -1.0f, 1.0f, 2);
  const Vec g = kcheck::uniform((size_t)(R * D), -1.0f, 1.0f, 3);

  sr_sparse_grad dtable;
  sr_sparse_grad_init(&dtable, D);
  Vec ddefault((size_t)D, 0.0f);
  for (int pass = 0; pass < 2; pass++)
    sr_embedding_bag_backward(&dtable, ddefault.data(), g.data(), bag.get(), keep.data(), masked.data(), D);
  // Rows 0, 4, 5 contribute ids {0, 3, 5} + {3} + {0, 5, 6} (value 4 dropped):
  // row 2 is masked and row 3 ({2, 6}, both dropped) falls back to the default.
  EXPECT_EQ(ids_of(dtable), (std::vector<int64_t>{0, 3, 5, 6}));

  Vec out((size_t)(R * D));
  auto loss = [&] {
    sr_embedding_bag_forward(out.data(), bag.get(), keep.data(), masked.data(), table.data(), default_row.data(), D);
    return kcheck::weighted_sum(out, g);
  };
  kcheck::expect_gradient("dtable", table, kcheck::halved(densify(dtable, V)), loss);
  kcheck::expect_gradient("ddefault", default_row, kcheck::halved(ddefault), loss);

  // A frozen default (ddefault NULL) leaves the table gradient as it was.
  sr_sparse_grad frozen;
  sr_sparse_grad_init(&frozen, D);
  sr_embedding_bag_backward(&frozen, nullptr, g.data(), bag.get(), keep.data(), masked.data(), D);
  kcheck::expect_all_near(densify(frozen, V), kcheck::halved(densify(dtable, V)), 1e-6f, "frozen default");
  sr_sparse_grad_free(&frozen);
  sr_sparse_grad_free(&dtable);
}

TEST(EmbeddingBag, SparseGradientEqualsDenseAcrossSharedUses) {
  // One table used three times (main batch, two SSL views), each backward
  // merged into the same sparse list: ids old-only, new-only and shared.
  const int64_t V = 40, D = 4;
  const CsrRows bags[] = {CsrRows({{3, 17}, {17, 39}, {5}}, V), CsrRows({{0, 5, 30}, {}, {17}, {2, 3, 4, 38}}, V),
                          CsrRows({{1}, {3, 39}}, V)};
  sr_sparse_grad sparse;
  sr_sparse_grad_init(&sparse, D);
  Vec dense((size_t)(V * D), 0.0f), ddefault_sparse((size_t)D, 0.0f), ddefault_dense((size_t)D, 0.0f);
  for (size_t b = 0; b < std::size(bags); b++) {
    const sr_csr *bag = bags[b].get();
    const std::vector<uint8_t> keep(bag->nnz, 1);
    std::vector<uint8_t> masked(bag->n_rows, 0);
    if (b == 1) masked[2] = 1;  // {17}: masked in this use only
    const Vec dout = kcheck::uniform((size_t)(bag->n_rows * D), -1.0f, 1.0f, 10 + b);
    sr_embedding_bag_backward(&sparse, ddefault_sparse.data(), dout.data(), bag, keep.data(), masked.data(), D);
    naive_bag_backward(dense, ddefault_dense, dout, bag, keep, masked, D);
  }
  // Every touched id once, ascending; untouched ids absent.
  EXPECT_EQ(ids_of(sparse), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 17, 30, 38, 39}));
  kcheck::expect_all_near(densify(sparse, V), dense, 1e-6f, "sparse vs dense");
  kcheck::expect_all_near(ddefault_sparse, ddefault_dense, 1e-6f, "default (the empty row)");

  // Clearing keeps nothing: the next step starts from an empty list.
  sr_sparse_grad_clear(&sparse);
  EXPECT_EQ(sparse.n, 0);
  EXPECT_EQ(densify(sparse, V), Vec((size_t)(V * D), 0.0f));
  sr_sparse_grad_free(&sparse);
}

TEST(EmbeddingBag, BackwardIsDeterministic) {
  // Many rows hitting few ids: the sums must come out bit-identical each time.
  const int64_t V = 5, D = 8, R = 300;
  std::vector<std::vector<int32_t>> rows((size_t)R);
  for (int64_t r = 0; r < R; r++) rows[r] = {(int32_t)(r % V), (int32_t)((r * 7 + 1) % V)};
  for (auto &row : rows)
    if (row[0] > row[1]) std::swap(row[0], row[1]);
  for (auto &row : rows)
    if (row[0] == row[1]) row.pop_back();
  CsrRows bag(rows, V);
  const Vec dout = kcheck::uniform((size_t)(R * D), -1.0f, 1.0f, 20);
  std::vector<Vec> results;
  for (int run = 0; run < 3; run++) {
    sr_sparse_grad g;
    sr_sparse_grad_init(&g, D);
    sr_embedding_bag_backward(&g, nullptr, dout.data(), bag.get(), nullptr, nullptr, D);
    results.push_back(densify(g, V));
    sr_sparse_grad_free(&g);
  }
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

// Ids that agree in their low bytes and differ above (the sort works byte by
// byte): each id's row must still be the sum of its contributions in (row,
// entry) order, bit for bit, and the list ascending.
TEST(EmbeddingBag, BackwardSumsInRowOrderForIdsOfSeveralBytes) {
  const int64_t V = 3000000, D = 3, R = 200;
  const int32_t pool[] = {5, 5 + 256, 5 + 65536, 70000, 2999999, 261, 0, 1 << 20};
  std::vector<std::vector<int32_t>> rows((size_t)R);
  for (int64_t r = 0; r < R; r++) {
    for (int k = 0; k < 8; k++)
      if ((r * 7 + k * 3) % 5 < 2) rows[r].push_back(pool[k]);
    std::sort(rows[r].begin(), rows[r].end());
  }
  CsrRows bag(rows, V);
  const Vec dout = kcheck::uniform((size_t)(R * D), -1.0f, 1.0f, 21);
  std::map<int64_t, Vec> expected;  // accumulated in (row, entry) order, as documented
  for (int64_t r = 0; r < R; r++) {
    if (rows[r].empty()) continue;
    const float scale = 1.0f / (float)rows[r].size();
    for (int32_t id : rows[r]) {
      Vec &acc = expected.try_emplace(id, Vec((size_t)D, 0.0f)).first->second;
      for (int64_t j = 0; j < D; j++) acc[j] += scale * dout[r * D + j];
    }
  }
  sr_sparse_grad g;
  sr_sparse_grad_init(&g, D);
  sr_embedding_bag_backward(&g, nullptr, dout.data(), bag.get(), nullptr, nullptr, D);
  ASSERT_EQ(g.n, (int64_t)expected.size());
  int64_t i = 0;
  for (const auto &[id, row] : expected) {
    EXPECT_EQ(g.ids[i], id);
    EXPECT_EQ(Vec(g.rows + i * D, g.rows + (i + 1) * D), row) << "id " << id;
    i++;
  }
  sr_sparse_grad_free(&g);
}

// ---- value dropout --------------------------------------------------------------------

TEST(EmbeddingBag, DropoutIsKeyedByFeatureStepAndSample) {
  const int64_t V = 50;
  const uint64_t seed = 7, step = 11;
  const int feature = 3;
  const uint32_t purpose = SR_RNG_SSL + 256u * feature, other_feature = purpose + 256u;
  std::vector<std::vector<int32_t>> rows_a = {{}, {}, {}}, rows_b = {{}, {}};
  for (int32_t v = 0; v < V; v += 2) rows_a[0].push_back(v);
  for (int32_t v = 1; v < V; v += 3) rows_a[1].push_back(v);
  for (int32_t v = 0; v < V; v += 5) rows_a[2].push_back(v);
  rows_b[0] = rows_a[1];
  rows_b[1] = rows_a[0];
  CsrRows a(rows_a, V), b(rows_b, V);
  const std::vector<int64_t> ids_a = {100, 205, 31}, ids_b = {205, 100};
  const float p = 0.4f;
  std::vector<uint8_t> keep_a(a.get()->nnz), keep_b(b.get()->nnz);
  sr_embedding_bag_dropout(keep_a.data(), a.get(), p, seed, purpose, step, ids_a.data());
  sr_embedding_bag_dropout(keep_b.data(), b.get(), p, seed, purpose, step, ids_b.data());

  // Entry k of a row is the k-th draw of (seed, SR_RNG_SSL + 256 * feature, step, sample).
  int64_t dropped = 0;
  for (int64_t r = 0; r < 3; r++) {
    sr_rng rng;
    sr_rng_init(&rng, seed, SR_RNG_SSL + 256 * feature, step, (uint64_t)ids_a[r]);
    for (int64_t k = a.get()->indptr[r]; k < a.get()->indptr[r + 1]; k++) {
      EXPECT_EQ(keep_a[k], sr_rng_uniform(&rng) >= p ? 1 : 0) << "row " << r << " entry " << k;
      dropped += !keep_a[k];
    }
  }
  // 45 values at p = 0.4: a loose sanity band (std 0.073).
  EXPECT_NEAR((double)dropped / (double)a.get()->nnz, p, 0.3);
  // The same sample in another batch position draws the same mask.
  const int64_t len1 = sr_csr_row_len(a.get(), 1);
  EXPECT_TRUE(std::equal(keep_b.begin(), keep_b.begin() + len1, keep_a.begin() + a.get()->indptr[1]));
  EXPECT_TRUE(std::equal(keep_b.begin() + len1, keep_b.end(), keep_a.begin()));
  // Another feature or step draws another mask.
  std::vector<uint8_t> other(a.get()->nnz);
  sr_embedding_bag_dropout(other.data(), a.get(), p, seed, other_feature, step, ids_a.data());
  EXPECT_NE(other, keep_a);
  sr_embedding_bag_dropout(other.data(), a.get(), p, seed, purpose, step + 1, ids_a.data());
  EXPECT_NE(other, keep_a);

  // p = 0 keeps everything; p = 1 drops everything and every row falls back
  // to the default embedding.
  sr_embedding_bag_dropout(other.data(), a.get(), 0.0f, seed, purpose, step, ids_a.data());
  EXPECT_EQ(other, std::vector<uint8_t>(a.get()->nnz, 1));
  sr_embedding_bag_dropout(other.data(), a.get(), 1.0f, seed, purpose, step, ids_a.data());
  EXPECT_EQ(other, std::vector<uint8_t>(a.get()->nnz, 0));
  const int64_t D = 2;
  const Vec table = kcheck::uniform((size_t)(V * D), -1.0f, 1.0f, 30), default_row = {0.25f, -0.5f};
  Vec out(3 * D);
  sr_embedding_bag_forward(out.data(), a.get(), other.data(), nullptr, table.data(), default_row.data(), D);
  EXPECT_EQ(out, (Vec{0.25f, -0.5f, 0.25f, -0.5f, 0.25f, -0.5f}));
}

// ---- sparse optimizers -----------------------------------------------------------------

namespace {

// A sparse gradient over rows `ids` of a (V, D) table, rows from a stream.
sr_sparse_grad make_sparse_grad(const std::vector<int64_t> &ids, int64_t D, uint64_t stream) {
  sr_sparse_grad g;
  sr_sparse_grad_init(&g, D);
  // Built through the kernel itself: one bag row per id, dout = the gradient row.
  std::vector<std::vector<int32_t>> rows;
  for (int64_t id : ids) rows.push_back({(int32_t)id});
  CsrRows bag(rows, 1000);
  const Vec dout = kcheck::uniform(ids.size() * (size_t)D, -1.0f, 1.0f, stream);
  sr_embedding_bag_backward(&g, nullptr, dout.data(), bag.get(), nullptr, nullptr, D);
  return g;
}

bool row_equal(const Vec &a, const Vec &b, int64_t row, int64_t D) {
  return std::equal(a.begin() + row * D, a.begin() + (row + 1) * D, b.begin() + row * D);
}

}  // namespace

TEST(SparseOptim, LazyAdamTouchesOnlyListedRows) {
  const int64_t V = 6, D = 3, step = 4;
  const sr_sparse_adam hp = {0.01f, 0.9f, 0.999f, 1e-8f};
  sr_sparse_grad g = make_sparse_grad({4, 1}, D, 40);
  ASSERT_EQ(ids_of(g), (std::vector<int64_t>{1, 4}));
  const Vec table0 = kcheck::uniform((size_t)(V * D), -1.0f, 1.0f, 41);
  const Vec m0 = kcheck::uniform(table0.size(), -0.1f, 0.1f, 42), v0 = kcheck::uniform(table0.size(), 0.0f, 0.1f, 43);
  Vec table = table0, m = m0, v = v0;
  sr_sparse_adam_step(table.data(), m.data(), v.data(), &g, &hp, step);
  for (int64_t r = 0; r < V; r++) {
    const bool touched = r == 1 || r == 4;
    // Untouched rows keep value and moments, although their m is nonzero
    // (dense Adam would move them): the documented difference of lazy Adam.
    EXPECT_EQ(row_equal(table, table0, r, D), !touched) << "row " << r;
    EXPECT_EQ(row_equal(m, m0, r, D), !touched) << "row " << r;
    EXPECT_EQ(row_equal(v, v0, r, D), !touched) << "row " << r;
  }
  // Touched rows follow Adam with bias correction from the global step.
  for (int64_t i = 0; i < g.n; i++)
    for (int64_t j = 0; j < D; j++) {
      const int64_t e = g.ids[i] * D + j;
      const double grad = g.rows[i * D + j];
      const double mm = 0.9 * m0[e] + 0.1 * grad, vv = 0.999 * v0[e] + 0.001 * grad * grad;
      const double mhat = mm / (1 - std::pow(0.9, step)), vhat = vv / (1 - std::pow(0.999, step));
      EXPECT_NEAR(m[e], mm, 1e-6);
      EXPECT_NEAR(v[e], vv, 1e-6);
      EXPECT_NEAR(table[e], table0[e] - 0.01 * mhat / (std::sqrt(vhat) + 1e-8), 1e-5) << e;
    }
  sr_sparse_grad_free(&g);
}

TEST(SparseOptim, AdagradTouchesOnlyListedRows) {
  const int64_t V = 5, D = 2;
  sr_sparse_grad g = make_sparse_grad({0, 3}, D, 50);
  const Vec table0 = kcheck::uniform((size_t)(V * D), -1.0f, 1.0f, 51);
  const Vec acc0(table0.size(), 0.1f);
  Vec table = table0, acc = acc0;
  sr_sparse_adagrad_step(table.data(), acc.data(), &g, 0.05f, 1e-7f);
  for (int64_t r = 0; r < V; r++) {
    const bool touched = r == 0 || r == 3;
    EXPECT_EQ(row_equal(table, table0, r, D), !touched) << "row " << r;
    EXPECT_EQ(row_equal(acc, acc0, r, D), !touched) << "row " << r;
  }
  // accum = 0.1 + g^2; w -= 0.05 g / (sqrt(accum) + 1e-7).
  for (int64_t i = 0; i < g.n; i++)
    for (int64_t j = 0; j < D; j++) {
      const int64_t e = g.ids[i] * D + j;
      const double grad = g.rows[i * D + j], a = 0.1 + grad * grad;
      EXPECT_NEAR(acc[e], a, 1e-6);
      EXPECT_NEAR(table[e], table0[e] - 0.05 * grad / (std::sqrt(a) + 1e-7), 1e-6);
    }
  sr_sparse_grad_free(&g);
}

TEST(SparseGrad, ReserveGrowsAndKeepsRows) {
  const int64_t D = 3;
  sr_sparse_grad g = make_sparse_grad({1, 4, 6}, D, 60);
  const std::vector<int64_t> ids = ids_of(g);
  const Vec rows(g.rows, g.rows + g.n * D);
  sr_sparse_grad_reserve(&g, 100);
  EXPECT_GE(g.cap, 100u);
  EXPECT_EQ(ids_of(g), ids);
  EXPECT_EQ(Vec(g.rows, g.rows + g.n * D), rows);
  // Room already there: nothing moves.
  const size_t cap = g.cap;
  int64_t *const ids_before = g.ids;
  sr_sparse_grad_reserve(&g, 2);
  EXPECT_EQ(g.cap, cap);
  EXPECT_EQ(g.ids, ids_before);
  // The new rows are usable: write the last one.
  g.ids[99] = 999;
  g.rows[99 * D + D - 1] = 1.0f;
  sr_sparse_grad_free(&g);
}

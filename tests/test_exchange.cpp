// test_exchange.cpp — the exchange collectives on a single rank, where each is
// the identity (copy) and no MPI call is made. The multi-rank behaviour is
// tested in mpi/test_exchange_mpi.cpp.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

extern "C" {
#include "shardrec/error.h"
#include "shardrec/exchange.h"
}

namespace {

sr_dist self_dist() {
  sr_dist d;
  sr_dist_self(&d);
  return d;
}

}  // namespace

TEST(Exchange, LayoutOfOneRank) {
  const sr_dist self = self_dist();
  for (int64_t n : {0, 7}) {
    sr_exchange_layout l;
    ASSERT_EQ(sr_exchange_layout_init(&l, &self, n), 0) << sr_error_message();
    ASSERT_EQ(l.size, 1);
    EXPECT_EQ(l.count[0], n);
    EXPECT_EQ(l.offset[0], 0);
    EXPECT_EQ(l.total, n);
    sr_exchange_layout_free(&l);
  }
}

TEST(Exchange, GatherAndScatterCopyOnOneRank) {
  const sr_dist self = self_dist();
  const int64_t n = 3, dim = 2;
  sr_exchange_layout l;
  ASSERT_EQ(sr_exchange_layout_init(&l, &self, n), 0) << sr_error_message();
  const std::vector<float> rows = {1.5f, -2.0f, 3.25f, 0.0f, -7.0f, 1e-20f};
  std::vector<float> all(n * dim, -1.0f), local(n * dim, -1.0f);
  ASSERT_EQ(sr_gather_rows_f32(&self, &l, rows.data(), dim, all.data()), 0) << sr_error_message();
  EXPECT_EQ(all, rows);
  ASSERT_EQ(sr_scatter_sum_rows_f32(&self, &l, rows.data(), dim, local.data()), 0) << sr_error_message();
  EXPECT_EQ(local, rows);
  const std::vector<int64_t> ids = {42, -1, int64_t(1) << 40};
  std::vector<int64_t> all_ids(n, 0);
  ASSERT_EQ(sr_gather_i64(&self, &l, ids.data(), all_ids.data()), 0) << sr_error_message();
  EXPECT_EQ(all_ids, ids);
  sr_exchange_layout_free(&l);
}

TEST(Exchange, EmptyGatherOnOneRank) {
  const sr_dist self = self_dist();
  sr_exchange_layout l;
  ASSERT_EQ(sr_exchange_layout_init(&l, &self, 0), 0) << sr_error_message();
  EXPECT_EQ(sr_gather_rows_f32(&self, &l, nullptr, 4, nullptr), 0) << sr_error_message();
  EXPECT_EQ(sr_scatter_sum_rows_f32(&self, &l, nullptr, 4, nullptr), 0) << sr_error_message();
  EXPECT_EQ(sr_gather_i64(&self, &l, nullptr, nullptr), 0) << sr_error_message();
  sr_exchange_layout_free(&l);
}

TEST(Exchange, SparseAllreduceIsIdentityOnOneRank) {
  const sr_dist self = self_dist();
  const int64_t dim = 3;
  sr_sparse_grad g;
  sr_sparse_grad_init(&g, dim);
  sr_sparse_grad_reserve(&g, 3);
  const int64_t ids[3] = {2, 5, 9};
  const float rows[9] = {1, 2, 3, -4, 0.5f, 6, 7, 8, -9};
  std::memcpy(g.ids, ids, sizeof ids);
  std::memcpy(g.rows, rows, sizeof rows);
  g.n = 3;
  ASSERT_EQ(sr_sparse_grad_allreduce(&self, &g), 0) << sr_error_message();
  ASSERT_EQ(g.n, 3);
  EXPECT_EQ(std::memcmp(g.ids, ids, sizeof ids), 0);
  EXPECT_EQ(std::memcmp(g.rows, rows, sizeof rows), 0);
  sr_sparse_grad_free(&g);
}

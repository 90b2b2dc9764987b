// test_exchange_mpi.cpp — run under mpiexec with P ranks (ctest does P = 2
// and 4, and once over TCP). The exchange collectives on real ranks: gathers
// with uneven (and empty) shares, the reduce-scatter as the gather's adjoint,
// and the sparse gradient all-reduce as the dense all-reduce of the
// densified lists.
#include <gtest/gtest.h>
#include <mpi.h>

#include <climits>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "mpi_main.h"

extern "C" {
#include "shardrec/error.h"
#include "shardrec/exchange.h"
#include "shardrec/rng.h"
#include "shardrec/shard.h"
}

using srtest::world;

namespace {

// Rows held by rank q: uneven, and rank 1 holds none.
int64_t rows_of(int q) { return q == 1 ? 0 : q + 2; }

// Value of column c of row i of rank q, exact in float.
float encoded(int q, int64_t i, int64_t c) { return (float)(q * 1000 + i * 10 + c); }

struct Layout {
  sr_exchange_layout l;
  explicit Layout(int64_t n_local) {
    EXPECT_EQ(sr_exchange_layout_init(&l, &world, n_local), 0) << sr_error_message();
  }
  ~Layout() { sr_exchange_layout_free(&l); }
};

}  // namespace

TEST(ExchangeMpi, LayoutListsEveryRanksCount) {
  Layout x(rows_of(world.rank));
  ASSERT_EQ(x.l.size, world.size);
  int64_t offset = 0;
  for (int q = 0; q < world.size; q++) {
    EXPECT_EQ(x.l.count[q], rows_of(q)) << "rank " << q;
    EXPECT_EQ(x.l.offset[q], offset) << "rank " << q;
    offset += rows_of(q);
  }
  EXPECT_EQ(x.l.total, offset);
}

TEST(ExchangeMpi, GatherPutsEveryRanksRowsInRankOrder) {
  const int64_t dim = 3, n = rows_of(world.rank);
  Layout x(n);
  std::vector<float> local(n * dim);
  std::vector<int64_t> local_ids(n);
  for (int64_t i = 0; i < n; i++) {
    local_ids[i] = ((int64_t)world.rank << 40) + i;  // beyond 32 bits: proves 64-bit transport
    for (int64_t c = 0; c < dim; c++) local[i * dim + c] = encoded(world.rank, i, c);
  }
  std::vector<float> all(x.l.total * dim, -1.0f);
  std::vector<int64_t> all_ids(x.l.total, -1);
  ASSERT_EQ(sr_gather_rows_f32(&world, &x.l, local.data(), dim, all.data()), 0) << sr_error_message();
  ASSERT_EQ(sr_gather_i64(&world, &x.l, local_ids.data(), all_ids.data()), 0) << sr_error_message();
  int64_t row = 0;
  for (int q = 0; q < world.size; q++)
    for (int64_t i = 0; i < rows_of(q); i++, row++) {
      EXPECT_EQ(all_ids[row], ((int64_t)q << 40) + i) << "row " << row;
      for (int64_t c = 0; c < dim; c++) EXPECT_EQ(all[row * dim + c], encoded(q, i, c)) << "row " << row;
    }
  EXPECT_EQ(row, x.l.total);
}

TEST(ExchangeMpi, ScatterSumReturnsEachRanksRowsSummedOverRanks) {
  const int64_t dim = 2, n = rows_of(world.rank);
  Layout x(n);
  // Rank q's gradient for gathered row t, column c: (q + 1) (t dim + c + 1).
  // Summed over ranks: P (P + 1) / 2 (t dim + c + 1), exact (small integers).
  std::vector<float> all_grad(x.l.total * dim);
  for (int64_t e = 0; e < x.l.total * dim; e++) all_grad[e] = (float)((world.rank + 1) * (e + 1));
  const std::vector<float> all_grad_before = all_grad;
  std::vector<float> local(n * dim, -1.0f);
  ASSERT_EQ(sr_scatter_sum_rows_f32(&world, &x.l, all_grad.data(), dim, local.data()), 0) << sr_error_message();
  const int64_t rank_sum = (int64_t)world.size * (world.size + 1) / 2;
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < dim; c++) {
      const int64_t t = x.l.offset[world.rank] + i;
      EXPECT_EQ(local[i * dim + c], (float)(rank_sum * (t * dim + c + 1))) << "row " << i << " col " << c;
    }
  EXPECT_EQ(all_grad, all_grad_before);
}

// The defining property of an adjoint: sum over ranks of <gather(x), y_rank>
// equals sum over ranks of <x_rank, scatter_sum(y)_rank>.
TEST(ExchangeMpi, ScatterSumIsTheAdjointOfGather) {
  const int64_t dim = 5, n = rows_of(world.rank);
  Layout x(n);
  sr_rng rng;
  sr_rng_init(&rng, 3, SR_RNG_SYNTH, 0, (uint64_t)world.rank);
  std::vector<float> local_x(n * dim), y(x.l.total * dim), all_x(x.l.total * dim), back(n * dim);
  for (float &v : local_x) v = sr_rng_normal(&rng);
  for (float &v : y) v = sr_rng_normal(&rng);
  ASSERT_EQ(sr_gather_rows_f32(&world, &x.l, local_x.data(), dim, all_x.data()), 0) << sr_error_message();
  ASSERT_EQ(sr_scatter_sum_rows_f32(&world, &x.l, y.data(), dim, back.data()), 0) << sr_error_message();
  double dots[2] = {0, 0};
  for (size_t e = 0; e < all_x.size(); e++) dots[0] += (double)all_x[e] * y[e];
  for (size_t e = 0; e < back.size(); e++) dots[1] += (double)local_x[e] * back[e];
  MPI_Allreduce(MPI_IN_PLACE, dots, 2, MPI_DOUBLE, MPI_SUM, world.comm);
  EXPECT_NEAR(dots[0], dots[1], 1e-5 * (std::fabs(dots[0]) + 1.0));
}

TEST(ExchangeMpi, RefusesLayoutsBeyondMpiIntCounts) {
  // A layout (built by hand, no rows exist) whose gathered array has more
  // than INT_MAX elements: every rank fails before any MPI call.
  const int64_t dim = 4;
  std::vector<int64_t> count(world.size, 0), offset(world.size, 0);
  count[0] = INT_MAX / dim + 1;
  for (int q = 1; q < world.size; q++) offset[q] = count[0];
  sr_exchange_layout l = {world.size, count.data(), offset.data(), count[0]};
  EXPECT_EQ(sr_gather_rows_f32(&world, &l, nullptr, dim, nullptr), SR_EINVAL);
  EXPECT_NE(std::strstr(sr_error_message(), "536870912 rows of 4 values"), nullptr) << sr_error_message();
  EXPECT_EQ(sr_scatter_sum_rows_f32(&world, &l, nullptr, dim, nullptr), SR_EINVAL);
}

// ---- sparse gradient all-reduce ---------------------------------------------------------

namespace {

const int64_t kShared = 7;  // an id every non-empty list holds: rows from several ranks sum

// Rank q's sparse gradient over a (V, dim) table in `scenario`: each id with
// probability 0.3 (and kShared always), unless the rank is `empty`. Exact
// values are multiples of 1/8 below 8 in magnitude, so any sum over a few
// ranks is exact in float; otherwise standard normal. A pure function of
// (q, scenario): every rank can rebuild every other rank's list.
sr_sparse_grad rank_grad(int q, uint64_t scenario, int64_t V, int64_t dim, bool exact, bool empty) {
  sr_sparse_grad g;
  sr_sparse_grad_init(&g, dim);
  if (empty) return g;
  sr_rng rng;
  sr_rng_init(&rng, 17, SR_RNG_SYNTH, scenario, (uint64_t)q);
  for (int64_t v = 0; v < V; v++) {
    if (v != kShared && sr_rng_uniform(&rng) >= 0.3f) continue;
    sr_sparse_grad_reserve(&g, g.n + 1);
    g.ids[g.n] = v;
    for (int64_t c = 0; c < dim; c++)
      g.rows[g.n * dim + c] =
          exact ? std::ldexp((float)sr_rng_below(&rng, 17) - 8.0f, -(int)sr_rng_below(&rng, 4)) : sr_rng_normal(&rng);
    g.n++;
  }
  return g;
}

std::vector<float> densify(const sr_sparse_grad &g, int64_t V) {
  std::vector<float> dense(V * g.dim, 0.0f);
  sr_sparse_grad_add_to_dense(dense.data(), &g);
  return dense;
}

// The reference: the dense all-reduce of the densified lists.
std::vector<float> dense_allreduce(const sr_sparse_grad &g, int64_t V) {
  std::vector<float> dense = densify(g, V);
  MPI_Allreduce(MPI_IN_PLACE, dense.data(), (int)dense.size(), MPI_FLOAT, MPI_SUM, world.comm);
  return dense;
}

// The ids some rank touched, increasing.
std::vector<int64_t> union_of_ids(const sr_sparse_grad &g, int64_t V) {
  std::vector<int> touched(V, 0);
  for (int64_t i = 0; i < g.n; i++) touched[g.ids[i]] = 1;
  MPI_Allreduce(MPI_IN_PLACE, touched.data(), (int)V, MPI_INT, MPI_MAX, world.comm);
  std::vector<int64_t> ids;
  for (int64_t v = 0; v < V; v++)
    if (touched[v]) ids.push_back(v);
  return ids;
}

// Sparse all-reduce of this rank's list in `scenario`; checks what holds for
// every input (ids = the union, strictly increasing; identical bytes on all
// ranks) and returns the reduced list next to the dense reference.
struct Reduced {
  sr_sparse_grad g;
  std::vector<float> dense_reference;
};

Reduced reduce(uint64_t scenario, int64_t V, int64_t dim, bool exact, int empty_rank) {
  Reduced r;
  r.g = rank_grad(world.rank, scenario, V, dim, exact, world.rank == empty_rank);
  r.dense_reference = dense_allreduce(r.g, V);
  const std::vector<int64_t> expected_ids = union_of_ids(r.g, V);
  EXPECT_EQ(sr_sparse_grad_allreduce(&world, &r.g), 0) << sr_error_message();
  EXPECT_EQ(std::vector<int64_t>(r.g.ids, r.g.ids + r.g.n), expected_ids);
  EXPECT_EQ(sr_dist_check_identical(&world, &r.g.n, sizeof r.g.n, "list length"), 0) << sr_error_message();
  EXPECT_EQ(sr_dist_check_identical(&world, r.g.ids, r.g.n * sizeof *r.g.ids, "ids"), 0) << sr_error_message();
  EXPECT_EQ(sr_dist_check_identical(&world, r.g.rows, r.g.n * r.g.dim * sizeof *r.g.rows, "rows"), 0)
      << sr_error_message();
  return r;
}

}  // namespace

TEST(ExchangeMpi, SparseAllreduceEqualsDenseAllreduceExactly) {
  const int64_t V = 50, dim = 4;
  // No empty list, rank 0's empty, the last rank's empty.
  const int empty_ranks[3] = {-1, 0, world.size - 1};
  for (uint64_t scenario = 0; scenario < 3; scenario++) {
    SCOPED_TRACE("empty rank " + std::to_string(empty_ranks[scenario]));
    Reduced r = reduce(scenario, V, dim, true, empty_ranks[scenario]);
    EXPECT_EQ(densify(r.g, V), r.dense_reference);
    sr_sparse_grad_free(&r.g);
  }
}

TEST(ExchangeMpi, SparseAllreduceOfEmptyListsIsEmpty) {
  sr_sparse_grad g;
  sr_sparse_grad_init(&g, 3);
  ASSERT_EQ(sr_sparse_grad_allreduce(&world, &g), 0) << sr_error_message();
  EXPECT_EQ(g.n, 0);
  sr_sparse_grad_free(&g);
}

TEST(ExchangeMpi, SparseAllreduceSumsInRankOrder) {
  const int64_t V = 200, dim = 8;
  const uint64_t scenario = 10;
  Reduced r = reduce(scenario, V, dim, false, -1);
  // Every rank's list rebuilt here, summed per id in rank order in float:
  // the result must match it bit for bit (deterministic order), and the
  // dense all-reduce (any order) to rounding, relative to the size of the
  // terms (sums may cancel).
  std::vector<float> rank_order(V * dim, 0.0f), magnitude(V * dim, 0.0f);
  for (int q = 0; q < world.size; q++) {
    sr_sparse_grad gq = rank_grad(q, scenario, V, dim, false, false);
    sr_sparse_grad_add_to_dense(rank_order.data(), &gq);
    for (int64_t i = 0; i < gq.n; i++)
      for (int64_t c = 0; c < dim; c++) magnitude[gq.ids[i] * dim + c] += std::fabs(gq.rows[i * dim + c]);
    sr_sparse_grad_free(&gq);
  }
  const std::vector<float> result = densify(r.g, V);
  EXPECT_EQ(result, rank_order);
  for (int64_t e = 0; e < V * dim; e++)
    EXPECT_NEAR(result[e], r.dense_reference[e], 1e-6 * magnitude[e]) << "element " << e;
  sr_sparse_grad_free(&r.g);
}

// ---- row-sharded tables ----------------------------------------------------

namespace {

// Rank r owns rows [bounds[r], bounds[r + 1]) of a table of V rows.
std::vector<int64_t> even_bounds(int64_t V) {
  std::vector<int64_t> bounds(world.size + 1);
  for (int r = 0; r < world.size; r++) sr_shard_even_range(V, r, world.size, &bounds[r], &bounds[r + 1]);
  return bounds;
}

}  // namespace

TEST(ExchangeMpi, FetchRowsReturnsEachRowFromItsOwner) {
  const int64_t V = 23, dim = 3;
  const std::vector<int64_t> bounds = even_bounds(V);
  const int64_t lo = bounds[world.rank], hi = bounds[world.rank + 1];
  std::vector<float> local((hi - lo) * dim);
  for (int64_t v = lo; v < hi; v++)
    for (int64_t c = 0; c < dim; c++) local[(v - lo) * dim + c] = encoded(world.rank, v, c);
  // Each rank asks for every (rank + 2)-th row (the last rank for none).
  std::vector<int64_t> ids;
  if (world.rank != world.size - 1)
    for (int64_t v = world.rank % 3; v < V; v += world.rank + 2) ids.push_back(v);
  std::vector<float> rows(ids.size() * dim + 1, -1.0f);
  ASSERT_EQ(sr_fetch_rows_f32(&world, bounds.data(), local.data(), dim, ids.data(), (int64_t)ids.size(), rows.data()),
            0)
      << sr_error_message();
  for (size_t i = 0; i < ids.size(); i++) {
    int owner = 0;
    while (ids[i] >= bounds[owner + 1]) owner++;
    for (int64_t c = 0; c < dim; c++) EXPECT_EQ(rows[i * dim + c], encoded(owner, ids[i], c)) << "row " << ids[i];
  }
}

// Each owner ends with exactly the rows of its range that the all-reduce
// gives every rank: same ids, same bits (sums in rank order).
TEST(ExchangeMpi, ReduceToOwnersIsTheOwnedPartOfTheAllreduce) {
  const int64_t V = 60, dim = 5;
  const std::vector<int64_t> bounds = even_bounds(V);
  for (uint64_t scenario = 20; scenario < 23; scenario++) {
    const int empty_rank = (int)(scenario % 2) ? 0 : -1;
    sr_sparse_grad all = rank_grad(world.rank, scenario, V, dim, false, world.rank == empty_rank);
    sr_sparse_grad owned = rank_grad(world.rank, scenario, V, dim, false, world.rank == empty_rank);
    ASSERT_EQ(sr_sparse_grad_allreduce(&world, &all), 0) << sr_error_message();
    ASSERT_EQ(sr_sparse_grad_reduce_to_owners(&world, bounds.data(), &owned), 0) << sr_error_message();
    const int64_t lo = bounds[world.rank], hi = bounds[world.rank + 1];
    std::vector<int64_t> want_ids;
    std::vector<float> want_rows;
    for (int64_t i = 0; i < all.n; i++) {
      if (all.ids[i] < lo || all.ids[i] >= hi) continue;
      want_ids.push_back(all.ids[i]);
      want_rows.insert(want_rows.end(), all.rows + i * dim, all.rows + (i + 1) * dim);
    }
    EXPECT_EQ(std::vector<int64_t>(owned.ids, owned.ids + owned.n), want_ids) << "scenario " << scenario;
    EXPECT_EQ(std::vector<float>(owned.rows, owned.rows + owned.n * dim), want_rows) << "scenario " << scenario;
    sr_sparse_grad_free(&all);
    sr_sparse_grad_free(&owned);
  }
}

// test_item_parallel.cpp — run under mpiexec with P ranks (ctest: 2 and 4,
// and 2 over TCP). Proves that item-parallel Mult-VAE/DAE (dist.item_parallel
// = K: groups of K ranks share each batch and split the item layers) is the
// single-process computation: the group softmax is sr_softmax_nll, the group
// top-K ranks as one process ranks whole rows, training with K = 2 and K = P
// (on 4 ranks K = 2 is a grid of 2 replicas x 2 shards) gives the parameters
// of 1 process on the global batch, evaluation gives its metrics, and
// checkpoints resume with another K and on another number of ranks. Also:
// the memory check refuses a replicated model that item parallelism fits.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "../test_util.h"
#include "mpi_main.h"

extern "C" {
#include "shardrec/checkpoint_dir.h"
#include "shardrec/config.h"
#include "shardrec/error.h"
#include "shardrec/evaluate.h"
#include "shardrec/item_parallel.h"
#include "shardrec/memory_plan.h"
#include "shardrec/metrics.h"
#include "shardrec/nn.h"
#include "shardrec/rng.h"
#include "shardrec/shard.h"
#include "shardrec/sysmem.h"
#include "shardrec/train.h"
}

namespace {

using srtest::world;

// 123 items: K = 2 and 4 give shards of unequal sizes (62/61, 31/31/31/30).
const sr_dataset &full_dataset() {
  static sr_dataset d = srtest::synthetic_dataset(700, 123, 100, 12);
  return d;
}

sr_config small_config(sr_model_type type, int item_parallel) {
  sr_config cfg = srtest::equivalence_config(type);
  cfg.checkpoint.every_epochs = 0;
  cfg.dist.item_parallel = item_parallel;
  return cfg;
}

// Every tensor whole, in registry order: the slices of sharded tensors are
// gathered from the model's group.
std::vector<float> whole_params(const sr_model *m) {
  std::vector<float> out;
  for (int i = 0; i < m->params.count; i++) {
    const sr_param *p = &m->params.items[i];
    if (p->shard.dim < 0) {
      out.insert(out.end(), p->value, p->value + p->numel);
      continue;
    }
    const sr_dist &g = m->items->group;
    int64_t whole[SR_PARAM_MAX_DIM], outer = 1, inner = 1, numel = 1;
    sr_param_full_shape(p, whole);
    for (int d = 0; d < p->ndim; d++) numel *= whole[d];
    for (int d = 0; d < p->shard.dim; d++) outer *= whole[d];
    for (int d = p->shard.dim + 1; d < p->ndim; d++) inner *= whole[d];
    std::vector<int> counts(g.size), displs(g.size);
    std::vector<int64_t> begins(g.size);
    int mine = (int)p->numel;
    MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, g.comm);
    MPI_Allgather(&p->shard.begin, 1, MPI_INT64_T, begins.data(), 1, MPI_INT64_T, g.comm);
    for (int s = 1; s < g.size; s++) displs[s] = displs[s - 1] + counts[s - 1];
    std::vector<float> slices(numel);
    MPI_Allgatherv(p->value, mine, MPI_FLOAT, slices.data(), counts.data(), displs.data(), MPI_FLOAT, g.comm);
    std::vector<float> tensor(numel);
    for (int s = 0; s < g.size; s++) {
      const int64_t extent = counts[s] / (outer * inner);
      for (int64_t o = 0; o < outer; o++)
        std::copy_n(slices.begin() + displs[s] + o * extent * inner, extent * inner,
                    tensor.begin() + (o * whole[p->shard.dim] + begins[s]) * inner);
    }
    out.insert(out.end(), tensor.begin(), tensor.end());
  }
  return out;
}

// The inverse: this rank's slices of whole tensors laid out as whole_params.
void load_whole_params(sr_model *m, const std::vector<float> &whole_values) {
  size_t at = 0;
  for (int i = 0; i < m->params.count; i++) {
    sr_param *p = &m->params.items[i];
    int64_t whole[SR_PARAM_MAX_DIM], outer = 1, inner = 1, numel = 1;
    sr_param_full_shape(p, whole);
    for (int d = 0; d < p->ndim; d++) numel *= whole[d];
    if (p->shard.dim < 0) {
      std::copy_n(whole_values.begin() + at, numel, p->value);
    } else {
      for (int d = 0; d < p->shard.dim; d++) outer *= whole[d];
      for (int d = p->shard.dim + 1; d < p->ndim; d++) inner *= whole[d];
      const int64_t extent = p->shape[p->shard.dim];
      for (int64_t o = 0; o < outer; o++)
        std::copy_n(whole_values.begin() + at + (o * whole[p->shard.dim] + p->shard.begin) * inner, extent * inner,
                    p->value + o * extent * inner);
    }
    at += numel;
  }
}

struct Trained {
  std::vector<float> params;  // whole tensors
  sr_train_result result;
  int rc = -1;
};

// Trains on `dist` with the data shard of this rank's replica.
Trained train_on(const sr_config &cfg, const sr_dist &dist, const sr_dataset &data = full_dataset()) {
  Trained t;
  int part = 0, parts = 1;
  EXPECT_EQ(sr_item_grid_data_part(&dist, cfg.dist.item_parallel, &part, &parts), SR_OK);
  sr_dataset shard;
  sr_dataset_shard(&data, part, parts, &shard);
  sr_model *m = nullptr;
  t.rc = sr_train(&cfg, &dist, &shard, nullptr, &m, &t.result);
  if (m) {
    t.params = whole_params(m);
    sr_model_destroy(m);
  }
  sr_dataset_free(&shard);
  return t;
}

Trained train_single(const sr_config &cfg) {
  sr_dist self;
  sr_dist_self(&self);
  return train_on(cfg, self);
}

using srtest::max_relative_diff;
// The group adds partial products and softmax statistics (item parallelism),
// or the ranks their gradients, in another order than one process.
constexpr double kTolerance = srtest::kEquivalenceTolerance;

void expect_metrics_equal(const sr_metrics &a, const sr_metrics &b, double tolerance) {
  EXPECT_EQ(a.n_users, b.n_users);
  for (int i = 0; i < b.n; i++) EXPECT_NEAR(sr_metrics_mean(&a, i), sr_metrics_mean(&b, i), tolerance) << i;
}

void expect_matches_single_process(sr_config cfg) {
  cfg.eval.n_slices = 1;  // popularity slices: from the counts of the replicas (one rank per group)
  Trained grid = train_on(cfg, world), single = train_single(cfg);
  ASSERT_EQ(grid.rc, SR_OK) << sr_error_message();
  ASSERT_EQ(single.rc, SR_OK) << sr_error_message();
  EXPECT_EQ(grid.result.steps, 9);
  EXPECT_LT(max_relative_diff(grid.params, single.params), kTolerance)
      << "P=" << world.size << " K=" << cfg.dist.item_parallel;
  // The parameters moved: the comparison is not between two initialisations.
  sr_config untrained = cfg;
  untrained.train.max_steps = 1;
  EXPECT_GT(max_relative_diff(train_single(untrained).params, single.params), 1e-4);
  EXPECT_NEAR(grid.result.last_loss, single.result.last_loss, 1e-4 * std::fabs(single.result.last_loss));
  // Validation (which selected the returned model) and test metrics, each
  // user counted once although K ranks score it; the popularity baseline.
  expect_metrics_equal(grid.result.best_valid, single.result.best_valid, 1e-4);
  expect_metrics_equal(grid.result.test, single.result.test, 1e-4);
  expect_metrics_equal(grid.result.test_popularity, single.result.test_popularity, 1e-12);
  srtest::expect_slices_equal(grid.result.test, single.result.test, 1e-4);
  srtest::expect_slices_equal(grid.result.test_popularity, single.result.test_popularity, 1e-12);
}

// ---- the group softmax and top-K ----------------------------------------------------

// A grid of world.size / K replicas x K shards over n_items.
struct Grid {
  sr_item_grid g;
  Grid(int K, int64_t n_items) { EXPECT_EQ(sr_item_grid_init(&g, &world, K, n_items), SR_OK) << sr_error_message(); }
  ~Grid() { sr_item_grid_free(&g); }
};

// This rank's columns [begin, end) of a row-major (R, C) matrix.
std::vector<float> columns(const std::vector<float> &m, int64_t R, int64_t C, int64_t begin, int64_t end) {
  std::vector<float> out;
  for (int64_t r = 0; r < R; r++) out.insert(out.end(), m.begin() + r * C + begin, m.begin() + r * C + end);
  return out;
}

TEST(ItemParallel, GroupSoftmaxMatchesSoftmaxNll) {
  const int64_t R = 7, C = 37;  // 37 items: unequal shards
  for (int K : {2, world.size}) {
    Grid grid(K, C);
    // Logits of every scale, one row far from 0 (the shift must be the row's
    // max over all shards); targets weighted, one row without any.
    std::vector<float> logits(R * C);
    sr_rng rng;
    sr_rng_init(&rng, 11, 0, 0, 0);
    for (int64_t i = 0; i < R * C; i++) logits[i] = 8.0f * sr_rng_uniform(&rng) - 4.0f + (i / C == 3 ? 60.0f : 0.0f);
    std::vector<std::vector<int32_t>> rows = {{0, 5, 36}, {}, {1, 2, 3, 30, 31}, {20}, {0, 36}, {17, 18}, {9}};
    sr_csr targets = srtest::csr_from_rows(rows, C, true);
    std::vector<float> expected(R * C);
    const double expected_loss = sr_softmax_nll(expected.data(), logits.data(), &targets, R, C, 9.0f);

    sr_csr local;
    sr_csr_slice_columns(&targets, grid.g.item_begin, grid.g.item_end, &local, nullptr);
    std::vector<float> mine = columns(logits, R, C, grid.g.item_begin, grid.g.item_end), dmine(mine.size());
    double loss = 0;
    ASSERT_EQ(sr_item_grid_softmax_nll(&grid.g, dmine.data(), mine.data(), &local, R, 9.0f, &loss), SR_OK);
    EXPECT_NEAR(loss, expected_loss, 1e-6 * std::fabs(expected_loss)) << "K=" << K;
    std::vector<float> want = columns(expected, R, C, grid.g.item_begin, grid.g.item_end);
    for (size_t i = 0; i < want.size(); i++)
      EXPECT_NEAR(dmine[i], want[i], 1e-6 * (1.0 + std::fabs(want[i]))) << "K=" << K << " entry " << i;
    // In place, as the model calls it.
    ASSERT_EQ(sr_item_grid_softmax_nll(&grid.g, mine.data(), mine.data(), &local, R, 9.0f, &loss), SR_OK);
    EXPECT_EQ(mine, dmine);
    sr_csr_free(&local);
    sr_csr_free(&targets);
  }
}

TEST(ItemParallel, GroupTopKRanksAsOneProcessRanksWholeRows) {
  const int64_t R = 5, C = 23;
  for (int K : {2, world.size}) {
    Grid grid(K, C);
    // Coarse scores (many ties across shards), excluded items (-inf) and NaN.
    std::vector<float> scores(R * C);
    sr_rng rng;
    sr_rng_init(&rng, 3, 0, 0, 0);
    for (int64_t i = 0; i < R * C; i++) scores[i] = (float)(int)(4 * sr_rng_uniform(&rng));
    for (int64_t i = 0; i < C; i++) scores[2 * C + i] = i % 3 == 0 ? -INFINITY : 1.0f;  // row 2: ties and -inf
    scores[4 * C + 1] = NAN;
    scores[4 * C + 22] = NAN;
    for (int k : {1, 4, 7, 23}) {  // 7: deeper than a shard of 5 or 6 items on 4 ranks
      std::vector<int32_t> top(R * k, -1);
      std::vector<float> top_scores(R * k);
      std::vector<float> mine = columns(scores, R, C, grid.g.item_begin, grid.g.item_end);
      ASSERT_EQ(sr_item_grid_topk(&grid.g, mine.data(), R, k, top.data(), top_scores.data()), SR_OK);
      if (grid.g.shard != 0) continue;
      for (int64_t r = 0; r < R; r++) {
        std::vector<int32_t> want(k);
        sr_topk(want.data(), scores.data() + r * C, C, k);
        EXPECT_EQ(std::vector<int32_t>(top.begin() + r * k, top.begin() + (r + 1) * k), want)
            << "K=" << K << " k=" << k << " row " << r;
        for (int i = 0; i < k; i++) {
          const float s = scores[r * C + want[i]];
          EXPECT_TRUE(top_scores[r * k + i] == s || (std::isnan(s) && std::isnan(top_scores[r * k + i])));
        }
      }
    }
  }
}

TEST(ItemParallel, KMustDivideTheRanksAndOneProcessIgnoresIt) {
  int part = -1, parts = -1;
  EXPECT_EQ(sr_item_grid_data_part(&world, 3, &part, &parts), SR_ECONFIG);  // P = 2 or 4
  EXPECT_NE(std::string(sr_error_message()).find("dist.item_parallel: 3 does not divide the"), std::string::npos)
      << sr_error_message();
  EXPECT_EQ(sr_item_grid_data_part(&world, 2, &part, &parts), SR_OK);
  EXPECT_EQ(part, world.rank / 2);
  EXPECT_EQ(parts, world.size / 2);
  sr_dist self;
  sr_dist_self(&self);
  EXPECT_EQ(sr_item_grid_data_part(&self, 4, &part, &parts), SR_OK);
  EXPECT_EQ(part, 0);
  EXPECT_EQ(parts, 1);
}

// ---- training ---------------------------------------------------------------------------

TEST(ItemParallel, MultVaeGroupsOfTwoMatchSingleProcessGlobalBatch) {
  expect_matches_single_process(small_config(SR_MODEL_MULTVAE, 2));  // 4 ranks: 2 replicas x 2 shards
}

TEST(ItemParallel, MultDaeGroupsOfTwoMatchSingleProcessGlobalBatch) {
  expect_matches_single_process(small_config(SR_MODEL_MULTDAE, 2));
}

TEST(ItemParallel, MultVaeOneGroupOfAllRanksMatchesSingleProcess) {
  if (world.size == 2) GTEST_SKIP() << "the same grid as groups of two";
  expect_matches_single_process(small_config(SR_MODEL_MULTVAE, world.size));
}

TEST(ItemParallel, MultDaeOneGroupOfAllRanksMatchesSingleProcess) {
  if (world.size == 2) GTEST_SKIP() << "the same grid as groups of two";
  expect_matches_single_process(small_config(SR_MODEL_MULTDAE, world.size));
}

// The replicated optimizer with all-reduces started during backward (the
// group's collectives interleave with them), and a deeper model whose DAE
// decoder has a single layer (its input gradient is dz itself).
TEST(ItemParallel, ReplicatedOptimizerOverlapAndOtherDepthsMatchSingleProcess) {
  sr_config cfg = small_config(SR_MODEL_MULTVAE, 2);
  cfg.dist.shard_optimizer = 0;
  cfg.dist.overlap = 1;
  cfg.model.n_hidden = 2;
  cfg.model.hidden[1] = 16;
  expect_matches_single_process(cfg);
  sr_config shallow = small_config(SR_MODEL_MULTDAE, 2);
  shallow.model.n_hidden = 0;
  expect_matches_single_process(shallow);
}

// Replicated tensors stay bit-identical on every rank (the shards of a group
// compute them alike), slices on the ranks holding the same shard.
TEST(ItemParallel, ReplicasStayIdentical) {
  sr_config cfg = small_config(SR_MODEL_MULTVAE, 2);
  sr_dataset shard;
  int part, parts;
  ASSERT_EQ(sr_item_grid_data_part(&world, 2, &part, &parts), SR_OK);
  sr_dataset_shard(&full_dataset(), part, parts, &shard);
  sr_model *m = nullptr;
  sr_train_result res;
  ASSERT_EQ(sr_train(&cfg, &world, &shard, nullptr, &m, &res), SR_OK) << sr_error_message();
  for (int i = 0; i < m->params.count; i++) {
    const sr_param *p = &m->params.items[i];
    const sr_dist *over = p->shard.dim < 0 ? &world : &m->items->replicas;
    EXPECT_EQ(sr_dist_check_identical(over, p->value, (size_t)p->numel * sizeof(float), p->name), SR_OK)
        << sr_error_message();
  }
  EXPECT_EQ(sr_params_sharded(&m->params), 3);  // encoder.0.weight, the last decoder layer's weight and bias
  sr_model_destroy(m);
  sr_dataset_free(&shard);
}

// Evaluation of the same parameters: each shard ranks its items, shard 0
// merges; the metrics are those of the unsharded model.
TEST(ItemParallel, EvaluationEqualsUnshardedEvaluation) {
  sr_config cfg = small_config(SR_MODEL_MULTVAE, world.size);
  sr_dist self;
  sr_dist_self(&self);
  sr_model *whole = nullptr, *split = nullptr;
  ASSERT_EQ(sr_model_create_on(&cfg, &full_dataset(), &self, &whole), SR_OK);
  ASSERT_EQ(sr_model_create_on(&cfg, &full_dataset(), &world, &split), SR_OK);
  // Parameters far from the initialisation, so rankings are not all alike.
  for (int64_t i = 0; i < whole->params.total; i++) whole->params.values[i] *= 25.0f;
  load_whole_params(split, whole_params(whole));
  const char *names[] = {"recall@5", "recall@20", "ndcg@10", "ndcg@100", "mrr@10", "recall_plain@50"};
  sr_metrics single, sharded;
  ASSERT_EQ(sr_metrics_init(&single, names, 6), SR_OK);
  sharded = single;
  for (const sr_eval_split *split_rows : {&full_dataset().valid, &full_dataset().test}) {
    sr_metrics_reset(&single);
    sr_metrics_reset(&sharded);
    sr_evaluate_rows(whole, split_rows, 0, split_rows->n_users, 17, &single);
    sr_evaluate_rows(split, split_rows, 0, split_rows->n_users, 17, &sharded);
    ASSERT_EQ(sr_metrics_reduce(&world, &sharded), SR_OK);
    expect_metrics_equal(sharded, single, 1e-12);
    EXPECT_GT(single.n_users, 0);
  }
  sr_model_destroy(whole);
  sr_model_destroy(split);
}

// ---- checkpoints across K and rank counts -------------------------------------------------

// A directory every rank sees (rank 0 makes it), removed at the end.
struct SharedDir {
  std::unique_ptr<srtest::TempDir> owned;
  std::string path;
  SharedDir() {
    char buf[4096] = "";
    if (world.rank == 0) {
      owned = std::make_unique<srtest::TempDir>();
      snprintf(buf, sizeof buf, "%s", owned->path().c_str());
    }
    MPI_Bcast(buf, sizeof buf, MPI_CHAR, 0, world.comm);
    path = buf;
  }
  ~SharedDir() { MPI_Barrier(world.comm); }  // nobody still reads when rank 0 removes it
};

// First 5 steps written by `first` (a checkpoint at the stop), then steps 6
// to 9 resumed by `then` from that checkpoint; the resumed run writes its own
// checkpoints into `resumed_dir`.
sr_config stage(sr_config cfg, int64_t max_steps, const std::string &dir, const std::string &resume) {
  cfg.train.max_steps = max_steps;
  snprintf(cfg.checkpoint.dir, sizeof cfg.checkpoint.dir, "%s", dir.c_str());
  snprintf(cfg.checkpoint.resume, sizeof cfg.checkpoint.resume, "%s", resume.c_str());
  return cfg;
}

std::string checkpoint_at(const std::string &dir, int64_t step) {
  char path[8192];
  sr_ckptdir_path(dir.c_str(), step, path, sizeof path);
  return path;
}

// The same schedule (5 steps, checkpoint, resume to 9) on one process.
std::vector<float> single_process_schedule(const sr_config &cfg, const std::string &dir) {
  sr_config first = stage(cfg, 5, dir, ""), then = stage(cfg, 9, dir, "auto");
  first.dist.item_parallel = then.dist.item_parallel = 1;
  EXPECT_EQ(train_single(first).rc, SR_OK) << sr_error_message();
  Trained t = train_single(then);
  EXPECT_EQ(t.rc, SR_OK) << sr_error_message();
  return t.params;
}

TEST(ItemParallel, CheckpointOfGroupsOfTwoResumesDataParallelAndOnOneProcess) {
  SharedDir shared;
  const sr_config cfg = small_config(SR_MODEL_MULTVAE, 2);
  const std::string written = shared.path + "/k2", data_parallel = shared.path + "/k1";
  ASSERT_EQ(train_on(stage(cfg, 5, written, ""), world).rc, SR_OK) << sr_error_message();
  // K = 1 on the same ranks.
  sr_config k1 = stage(cfg, 9, data_parallel, checkpoint_at(written, 5));
  k1.dist.item_parallel = 1;
  Trained resumed = train_on(k1, world);
  ASSERT_EQ(resumed.rc, SR_OK) << sr_error_message();
  EXPECT_EQ(resumed.result.steps, 9);
  // Each rank alone (own checkpoint directory).
  sr_config alone = stage(cfg, 9, shared.path + "/alone" + std::to_string(world.rank), checkpoint_at(written, 5));
  Trained one = train_single(alone);
  ASSERT_EQ(one.rc, SR_OK) << sr_error_message();
  std::vector<float> reference = single_process_schedule(cfg, shared.path + "/single" + std::to_string(world.rank));
  EXPECT_LT(max_relative_diff(resumed.params, reference), kTolerance);
  EXPECT_LT(max_relative_diff(one.params, reference), kTolerance);
}

TEST(ItemParallel, CheckpointOfFourRanksResumesOnTwo) {
  if (world.size != 4) GTEST_SKIP() << "needs 4 ranks";
  SharedDir shared;
  const sr_config cfg = small_config(SR_MODEL_MULTDAE, 4);
  const std::string written = shared.path + "/p4";
  ASSERT_EQ(train_on(stage(cfg, 5, written, ""), world).rc, SR_OK) << sr_error_message();
  // Ranks 0 and 1 resume as one group of two; 2 and 3 as two data-parallel
  // replicas (K = 1), each pair in its own directory.
  sr_dist pair;
  MPI_Comm_split(world.comm, world.rank / 2, world.rank, &pair.comm);
  MPI_Comm_rank(pair.comm, &pair.rank);
  MPI_Comm_size(pair.comm, &pair.size);
  sr_config resume = stage(cfg, 9, shared.path + "/pair" + std::to_string(world.rank / 2), checkpoint_at(written, 5));
  resume.dist.item_parallel = world.rank < 2 ? 2 : 1;
  Trained resumed = train_on(resume, pair);
  MPI_Comm_free(&pair.comm);
  ASSERT_EQ(resumed.rc, SR_OK) << sr_error_message();
  std::vector<float> reference = single_process_schedule(cfg, shared.path + "/single" + std::to_string(world.rank));
  EXPECT_LT(max_relative_diff(resumed.params, reference), kTolerance) << "rank " << world.rank;
}

// ---- memory -------------------------------------------------------------------------------

// The node's memory set so that each rank has 3/4 of what the replicated
// model needs: it is refused, with what to raise; K = P fits.
TEST(ItemParallel, MemoryCheckRefusesReplicatedModelThatItemParallelismFits) {
  sr_config cfg = small_config(SR_MODEL_MULTVAE, 1);
  cfg.model.hidden[0] = 64;
  cfg.train.max_steps = 2;
  sr_dataset big = srtest::synthetic_dataset(300, 6000, 40, 12);
  sr_dist self;
  sr_dist_self(&self);
  sr_model *probe = nullptr;
  ASSERT_EQ(sr_model_create_on(&cfg, &big, &self, &probe), SR_OK);
  sr_memory_use use;
  sr_memory_use_of(probe, cfg.train.batch_size, cfg.train.eval_batch_size, &use);
  sr_model_destroy(probe);
  const int64_t replicated = use.parameters + use.gradients + use.optimizer + use.activations;
  const std::string available = std::to_string(replicated * 3 / 4 * world.size);  // one node: P ranks share it
  setenv(SR_SYSMEM_ENV, available.c_str(), 1);
  Trained refused = train_on(cfg, world, big);
  EXPECT_EQ(refused.rc, SR_ENOMEM);
  const std::string message = sr_error_message();
  EXPECT_NE(message.find("not enough memory"), std::string::npos) << message;
  EXPECT_NE(message.find("dist.item_parallel"), std::string::npos) << message;
  EXPECT_NE(message.find(SR_SYSMEM_ENV), std::string::npos) << message;
  cfg.dist.item_parallel = world.size;  // one group: every rank holds 1/P of the item layers
  EXPECT_EQ(train_on(cfg, world, big).rc, SR_OK) << sr_error_message();
  unsetenv(SR_SYSMEM_ENV);
  sr_dataset_free(&big);
}

}  // namespace

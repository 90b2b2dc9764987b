// test_data_parallel.cpp — run under mpiexec with P ranks (ctest does P = 2
// and 4, and once over TCP). Proves that data-parallel training is the
// single-process computation: P ranks x (global batch N) give the parameters
// of 1 process x N after k steps, for Mult-VAE and Mult-DAE, with tiny and
// huge gradient buckets; distributed evaluation equals single-process
// evaluation; shards cover the data exactly once.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "../test_util.h"
#include "mpi_main.h"

extern "C" {
#include "shardrec/config.h"
#include "shardrec/dataset.h"
#include "shardrec/dist.h"
#include "shardrec/error.h"
#include "shardrec/grad_reduce.h"
#include "shardrec/memory_plan.h"
#include "shardrec/params.h"
#include "shardrec/shard.h"
#include "shardrec/synth.h"
#include "shardrec/train.h"
}

namespace {

using srtest::world;

// The same small dataset on every rank (generation is seeded, not ranked).
const sr_dataset &full_dataset() {
  static sr_dataset d = srtest::synthetic_dataset(700, 120, 100, 12, true);
  return d;
}

sr_config small_config(sr_model_type type, double bucket_mb) {
  sr_config cfg = srtest::equivalence_config(type);
  cfg.dist.bucket_mb = bucket_mb;
  return cfg;
}

// Two-tower with every distributed piece on: cross-device negatives, SSL
// (CFM masks, value dropout) with its views gathered, streaming logQ.
sr_config two_tower_config() {
  sr_config cfg = small_config(SR_MODEL_TWOTOWER, 25);
  cfg.model.feature_dim = 6;
  cfg.model.tower_hidden[0] = 16;
  cfg.model.embedding_dim = 8;
  cfg.train.batch_size = 256;  // ~5 600 pairs: crosses no epoch, batches split unevenly over ranks
  cfg.train.lr = 5e-3;
  cfg.ssl.batch_size = 50;  // not a multiple of P: shares of different sizes
  cfg.ssl.weight = 0.5;
  cfg.ssl.value_dropout = 0.2;
  return cfg;
}

struct Trained {
  std::vector<float> params;
  sr_train_result result;
};

Trained train_on(const sr_config &cfg, const sr_dist &dist, const sr_dataset &data) {
  Trained t;
  sr_model *m = nullptr;
  EXPECT_EQ(sr_train(&cfg, &dist, &data, nullptr, &m, &t.result), 0) << sr_error_message();
  if (m) {
    t.params.assign(m->params.values, m->params.values + m->params.total);
    sr_model_destroy(m);
  }
  return t;
}

Trained train_sharded(const sr_config &cfg, const sr_dataset &data = full_dataset()) {
  sr_dataset shard;
  sr_dataset_shard(&data, world.rank, world.size, &shard);
  Trained t = train_on(cfg, world, shard);
  sr_dataset_free(&shard);
  return t;
}

Trained train_single(const sr_config &cfg, const sr_dataset &data = full_dataset()) {
  sr_dist self;
  sr_dist_self(&self);
  return train_on(cfg, self, data);
}

using srtest::max_relative_diff;
// The group adds partial products and softmax statistics (item parallelism),
// or the ranks their gradients, in another order than one process.
constexpr double kTolerance = srtest::kEquivalenceTolerance;

void expect_equivalent(sr_model_type type) {
  sr_config cfg = small_config(type, 25);
  cfg.eval.n_slices = 1;  // popularity slices: from the counts of every shard
  Trained dist = train_sharded(cfg), single = train_single(cfg);
  ASSERT_FALSE(single.params.empty());
  EXPECT_EQ(dist.result.steps, 9);
  EXPECT_EQ(single.result.steps, 9);
  double diff = max_relative_diff(dist.params, single.params);
  EXPECT_LT(diff, kTolerance) << "P=" << world.size;
  // The parameters moved: the comparison is not between two initialisations.
  sr_config untrained = cfg;
  untrained.train.max_steps = 1;
  EXPECT_GT(max_relative_diff(train_single(untrained).params, single.params), 1e-4);
  // Distributed evaluation (validation and test) equals single-process evaluation.
  EXPECT_EQ(dist.result.best_valid.n_users, single.result.best_valid.n_users);
  EXPECT_EQ(dist.result.test.n_users, single.result.test.n_users);
  for (int i = 0; i < single.result.test.n; i++) {
    EXPECT_NEAR(sr_metrics_mean(&dist.result.best_valid, i), sr_metrics_mean(&single.result.best_valid, i), 1e-4);
    EXPECT_NEAR(sr_metrics_mean(&dist.result.test, i), sr_metrics_mean(&single.result.test, i), 1e-4);
    EXPECT_NEAR(sr_metrics_mean(&dist.result.test_popularity, i), sr_metrics_mean(&single.result.test_popularity, i),
                1e-12);
  }
  srtest::expect_slices_equal(dist.result.best_valid, single.result.best_valid, 1e-4);
  srtest::expect_slices_equal(dist.result.test, single.result.test, 1e-4);
  srtest::expect_slices_equal(dist.result.test_popularity, single.result.test_popularity, 1e-12);
}

}  // namespace

TEST(DataParallel, MultVaeMatchesSingleProcessGlobalBatch) { expect_equivalent(SR_MODEL_MULTVAE); }
TEST(DataParallel, MultDaeMatchesSingleProcessGlobalBatch) { expect_equivalent(SR_MODEL_MULTDAE); }

// Cross-device negatives (methods.md section 3): P ranks x their share of the
// global batch give the parameters of 1 process x the whole batch, with SSL
// on, embedding tables updated from exchanged sparse gradients, and the
// dense parameters through the sharded optimizer.
TEST(DataParallel, TwoTowerCrossDeviceNegativesMatchSingleProcessGlobalBatch) {
  for (int masking : {SR_MASK_CFM, SR_MASK_RFM}) {
    sr_config cfg = two_tower_config();
    cfg.ssl.masking = masking;
    Trained dist = train_sharded(cfg), single = train_single(cfg);
    ASSERT_FALSE(single.params.empty());
    EXPECT_EQ(dist.result.steps, 9);
    EXPECT_LT(max_relative_diff(dist.params, single.params), kTolerance) << "P=" << world.size;
    sr_config untrained = cfg;
    untrained.train.max_steps = 1;
    EXPECT_GT(max_relative_diff(train_single(untrained).params, single.params), 1e-4);
    for (int i = 0; i < single.result.test.n; i++)
      EXPECT_NEAR(sr_metrics_mean(&dist.result.test, i), sr_metrics_mean(&single.result.test, i), 1e-4);
  }
}

namespace {

// The model after training on this rank's shard (the caller destroys it).
sr_model *train_model(const sr_config &cfg, sr_train_result *result) {
  sr_dataset shard;
  sr_dataset_shard(&full_dataset(), world.rank, world.size, &shard);
  sr_model *m = nullptr;
  EXPECT_EQ(sr_train(&cfg, &world, &shard, nullptr, &m, result), 0) << sr_error_message();
  sr_dataset_free(&shard);
  return m;
}

// Largest relative difference between a model's tensors (slices, for its
// sharded ones) and the same rows of `whole`'s (every tensor whole).
double max_slice_diff(const sr_model *m, const sr_model *whole) {
  double worst = 0;
  for (int i = 0; i < m->params.count; i++) {
    const sr_param *p = &m->params.items[i], *w = &whole->params.items[i];
    EXPECT_STREQ(p->name, w->name);
    EXPECT_LT(w->shard.dim, 0);
    const int64_t offset = p->shard.dim == 0 ? p->shard.begin * (p->numel / p->shape[0]) : 0;
    EXPECT_EQ(p->shard.dim < 0 ? p->numel : w->numel * p->shape[0] / p->shard.full, p->numel) << p->name;
    for (int64_t j = 0; j < p->numel; j++)
      worst = std::max(
          worst, std::fabs((double)p->value[j] - w->value[offset + j]) / (1.0 + std::fabs(w->value[offset + j])));
  }
  return worst;
}

// two_tower_config() with global batches of 3 pairs and 2 SSL items.
sr_config two_tower_config_small_batches() {
  sr_config cfg = two_tower_config();
  cfg.train.batch_size = 3;
  cfg.ssl.batch_size = 2;
  return cfg;
}

}  // namespace

// Global batches smaller than the number of ranks: most steps leave some
// rank without a pair, and 2 SSL items leave ranks without SSL rows; such a
// rank still takes part in every exchange.
TEST(DataParallel, TwoTowerRanksWithoutSamplesMatchSingleProcess) {
  sr_config cfg = two_tower_config_small_batches();
  Trained dist = train_sharded(cfg), single = train_single(cfg);
  ASSERT_FALSE(single.params.empty());
  EXPECT_EQ(dist.result.steps, 9);
  EXPECT_LT(max_relative_diff(dist.params, single.params), kTolerance) << "P=" << world.size;
  // Row-sharded tables: a rank without pairs still serves its rows.
  cfg.model.table_sharding = SR_TABLES_ROW;
  sr_train_result result;
  sr_model *sharded = train_model(cfg, &result);
  sr_model *replicated = train_model(two_tower_config_small_batches(), &result);
  ASSERT_TRUE(sharded && replicated);
  EXPECT_EQ(max_slice_diff(sharded, replicated), 0.0);
  sr_model_destroy(sharded);
  sr_model_destroy(replicated);
}

// The same with the replicated optimizer, the static logQ and the focal loss.
TEST(DataParallel, TwoTowerReplicatedOptimizerStaticLogQFocalMatchSingleProcess) {
  sr_config cfg = two_tower_config();
  cfg.dist.shard_optimizer = 0;
  cfg.loss.logq = SR_LOGQ_STATIC;
  cfg.loss.type = SR_LOSS_FOCAL;
  cfg.train.embedding_optimizer = SR_SPARSE_ADAGRAD;
  EXPECT_LT(max_relative_diff(train_sharded(cfg).params, train_single(cfg).params), kTolerance);
}

// Without cross-device negatives each query sees only its rank's items: a
// different (cheaper) objective, so it must NOT match the single process;
// on one rank the switch changes nothing.
TEST(DataParallel, TwoTowerLocalNegativesAreADifferentObjective) {
  sr_config cfg = two_tower_config();
  cfg.dist.cross_device_negatives = 0;
  Trained local = train_sharded(cfg), single_local = train_single(cfg);
  EXPECT_GT(max_relative_diff(local.params, single_local.params), 1e-4);
  sr_config cross = two_tower_config();
  EXPECT_EQ(train_single(cross).params, single_local.params);
  EXPECT_EQ(sr_dist_check_identical(&world, local.params.data(), local.params.size() * sizeof(float), "parameters"),
            0);
}

// The regularisers (issue 18: history dropout, tower dropout, embedding L2)
// and the mixed negatives (issue 14: uniform negatives with their own logQ,
// accidental-hit removal) draw by step and global sample or draw index and
// sum over pairs: P ranks match one process with the global batch, also when
// some ranks hold no pair and no uniform negative, and row-sharded tables
// match replicated ones bit for bit.
TEST(DataParallel, TwoTowerRegularisersAndMixedNegativesMatchSingleProcess) {
  auto with_all = [](sr_config cfg, int uniform) {
    cfg.model.history_dropout = 0.3;
    cfg.model.tower_dropout = 0.2;
    cfg.loss.embedding_l2 = 0.5;
    cfg.loss.uniform_negatives = uniform;
    cfg.loss.remove_accidental_hits = 1;
    return cfg;
  };
  for (sr_config cfg : {with_all(two_tower_config(), 30), with_all(two_tower_config_small_batches(), 2)}) {
    Trained dist = train_sharded(cfg), single = train_single(cfg);
    ASSERT_FALSE(single.params.empty());
    EXPECT_EQ(dist.result.steps, 9);
    EXPECT_LT(max_relative_diff(dist.params, single.params), kTolerance) << "P=" << world.size;
    sr_config plain = cfg;  // the same without them: a different result
    plain.model.history_dropout = plain.model.tower_dropout = plain.loss.embedding_l2 = 0;
    plain.loss.uniform_negatives = plain.loss.remove_accidental_hits = 0;
    EXPECT_GT(max_relative_diff(train_single(plain).params, single.params), 1e-4);
    sr_train_result result;
    sr_model *replicated = train_model(cfg, &result);
    cfg.model.table_sharding = SR_TABLES_ROW;
    sr_model *sharded = train_model(cfg, &result);
    ASSERT_TRUE(replicated && sharded);
    EXPECT_EQ(max_slice_diff(sharded, replicated), 0.0);
    sr_model_destroy(sharded);
    sr_model_destroy(replicated);
  }
}

// Row-sharded embedding tables (model.table_sharding: row, issue 12): each
// table of at least P rows is split into row ranges over the ranks, lookups
// fetch rows from their owners and gradient rows go to them. With SSL and
// cross-device negatives on, the parameters are those of replicated tables
// bit for bit (each id's gradient rows are summed in the same rank order),
// and so is evaluation; P ranks match one process with the global batch.
TEST(DataParallel, TwoTowerRowShardedTablesMatchReplicated) {
  sr_config cfg = two_tower_config();
  cfg.eval.n_slices = 1;
  sr_train_result replicated_result, sharded_result;
  sr_model *replicated = train_model(cfg, &replicated_result);
  cfg.model.table_sharding = SR_TABLES_ROW;
  sr_model *sharded = train_model(cfg, &sharded_result);
  ASSERT_TRUE(replicated && sharded);
  EXPECT_EQ(sr_params_sharded(&sharded->params), world.size > 1 ? 5 : 0);  // history, item_id and 3 item features
  EXPECT_LT(sharded->params.total, replicated->params.total * 3 / 4);
  EXPECT_EQ(max_slice_diff(sharded, replicated), 0.0);
  // Evaluation splits the items too (each rank embeds and scores its range,
  // the per-rank top-K lists are merged): the same rankings, so the same
  // metrics, up to the order in which the users' values are summed.
  for (int i = 0; i < replicated_result.test.n; i++) {
    EXPECT_NEAR(sr_metrics_mean(&sharded_result.best_valid, i), sr_metrics_mean(&replicated_result.best_valid, i),
                1e-12);
    EXPECT_NEAR(sr_metrics_mean(&sharded_result.test, i), sr_metrics_mean(&replicated_result.test, i), 1e-12);
  }
  EXPECT_EQ(sharded_result.test.n_users, replicated_result.test.n_users);
  srtest::expect_slices_equal(sharded_result.test, replicated_result.test, 1e-12);
  if (world.size > 1) {  // the evaluation's item embeddings are this rank's range only
    sr_memory_use sharded_use, replicated_use;
    sr_memory_use_of(sharded, 1, 1, &sharded_use);
    sr_memory_use_of(replicated, 1, 1, &replicated_use);
    EXPECT_LT(sharded_use.activations, replicated_use.activations);
  }
  sr_dist self;
  sr_dist_self(&self);
  sr_model *single = nullptr;
  sr_train_result single_result;
  ASSERT_EQ(sr_train(&cfg, &self, &full_dataset(), nullptr, &single, &single_result), 0) << sr_error_message();
  EXPECT_LT(max_slice_diff(sharded, single), kTolerance) << "P=" << world.size;
  sr_model_destroy(single);
  sr_model_destroy(sharded);
  sr_model_destroy(replicated);
}

// A checkpoint of row-sharded tables written on P ranks holds whole tables:
// one process resumes it and ends where an uninterrupted single process does.
TEST(DataParallel, TwoTowerRowShardedCheckpointResumesOnOneProcess) {
  sr_config cfg = two_tower_config();
  cfg.model.table_sharding = SR_TABLES_ROW;
  const std::string dir = srtest::job_file("rowshard-ckpt");
  snprintf(cfg.checkpoint.dir, sizeof cfg.checkpoint.dir, "%s", dir.c_str());
  if (world.rank == 0) std::filesystem::remove_all(dir);  // a fresh run, not an old one resumed
  MPI_Barrier(world.comm);
  cfg.train.max_steps = 5;
  sr_train_result first;
  sr_model_destroy(train_model(cfg, &first));
  if (world.rank == 0) {
    sr_dist self;
    sr_dist_self(&self);
    cfg.train.max_steps = 9;
    snprintf(cfg.checkpoint.resume, sizeof cfg.checkpoint.resume, "auto");
    Trained resumed = train_on(cfg, self, full_dataset());
    cfg.checkpoint.resume[0] = cfg.checkpoint.dir[0] = '\0';
    Trained single = train_single(cfg);
    ASSERT_FALSE(resumed.params.empty());
    EXPECT_EQ(resumed.result.steps, 9);
    EXPECT_LT(max_relative_diff(resumed.params, single.params), kTolerance);
    std::filesystem::remove_all(dir);
  }
  MPI_Barrier(world.comm);
}

TEST(DataParallel, ResultDoesNotDependOnBucketSizeOrOverlap) {
  Trained normal = train_sharded(small_config(SR_MODEL_MULTVAE, 25));
  Trained tiny = train_sharded(small_config(SR_MODEL_MULTVAE, 0.0005));  // ~one tensor per bucket
  Trained huge = train_sharded(small_config(SR_MODEL_MULTVAE, 4096));
  sr_config blocking = small_config(SR_MODEL_MULTVAE, 25);
  blocking.dist.overlap = 0;
  Trained after = train_sharded(blocking);
  if (world.size == 2) {
    // Two addends: a + b is the same whatever the collective's algorithm.
    EXPECT_EQ(tiny.params, normal.params);
    EXPECT_EQ(huge.params, normal.params);
    EXPECT_EQ(after.params, normal.params);
  } else {
    EXPECT_LT(max_relative_diff(tiny.params, normal.params), kTolerance);
    EXPECT_LT(max_relative_diff(huge.params, normal.params), kTolerance);
    EXPECT_LT(max_relative_diff(after.params, normal.params), kTolerance);
  }
}

// ZeRO-1: reduce-scatter, Adam on each rank's slices, all-gather. Adam is
// elementwise, so the parameters are those of the replicated optimizer.
TEST(DataParallel, ShardedOptimizerMatchesReplicated) {
  for (sr_model_type type : {SR_MODEL_MULTVAE, SR_MODEL_MULTDAE}) {
    sr_config cfg = small_config(type, 25);
    Trained replicated = train_sharded(cfg);
    cfg.dist.shard_optimizer = 1;
    Trained sharded = train_sharded(cfg);
    sr_config tiny = cfg;
    tiny.dist.bucket_mb = 0.0005;  // many buckets, slices of a few floats (some ranks own empty ones)
    Trained tiny_buckets = train_sharded(tiny);
    if (world.size == 2) {
      EXPECT_EQ(sharded.params, replicated.params);  // a + b either way
      EXPECT_EQ(tiny_buckets.params, replicated.params);
    } else {
      EXPECT_LT(max_relative_diff(sharded.params, replicated.params), kTolerance);
      EXPECT_LT(max_relative_diff(tiny_buckets.params, replicated.params), kTolerance);
    }
    EXPECT_LT(max_relative_diff(sharded.params, train_single(cfg).params), kTolerance);
    EXPECT_EQ(sr_dist_check_identical(&world, sharded.params.data(), sharded.params.size() * sizeof(float),
                                      "sharded-optimizer parameters"),
              0);
  }
}

// Touched rows (grad_reduce.h): a row-sparse parameter's bucket exchanges
// only the rows some rank touched. Every rank writes gradients into the rows
// of a 40 x 7 table that it touches (rows 0, 4, 8, ...: every rank; rows 1,
// 5, 9, ...: one rank each; the others no rank; 7 floats a row, so the
// ring's slices cut rows) and into dense tensors around it. Reduced with and
// without the touched-row flags, by blocking and overlapped all-reduces and
// by the ring, the slices a rank owns hold the same bits (the ring for any P,
// the all-reduce on 2 ranks, where a + b has one order), the sums by hand,
// and fewer elements travelled.
struct TouchedRowsReduction {
  std::vector<float> owned;  // every owned slice, bucket after bucket
  std::vector<double> want;  // the sums by hand, element by element
  int64_t reduced, dense;
  int64_t table_bucket;  // elements of the table's bucket (with the arena's padding after it)
};

TouchedRowsReduction reduce_touched_rows(int with_flags, int overlap, int shard_optimizer) {
  const int64_t n_rows = 41, row_len = 7;
  sr_params ps;
  sr_params_init(&ps);
  const int64_t before[2] = {3, 5}, table[2] = {n_rows, row_len}, bias[1] = {6};
  sr_params_add(&ps, "before", SR_PARAM_WEIGHT, 2, before);
  const int t = sr_params_add(&ps, "table", SR_PARAM_WEIGHT, 2, table);
  sr_params_add(&ps, "bias", SR_PARAM_BIAS, 1, bias);
  if (with_flags) sr_params_set_row_sparse(&ps, t);
  sr_params_finalize(&ps);
  auto touches = [&](int rank, int64_t element) {
    for (int i = 0; i < ps.n_dense; i++) {
      const int64_t e = element - ps.items[i].offset;
      if (e < 0 || e >= ps.items[i].numel) continue;
      const int64_t row = e / row_len;
      return i != t || row % 4 == 0 || (row % 4 == 1 && (row / 4) % world.size == rank);
    }
    return false;  // the arena's padding between tensors
  };
  auto value = [](int rank, int64_t element) { return 0.1f * (float)(rank + 1) + 0.013f * (float)element; };
  for (int64_t j = 0; j < ps.dense_total; j++)
    if (touches(world.rank, j)) ps.grads[j] = value(world.rank, j);
  if (with_flags)
    for (int64_t row = 0; row < n_rows; row++)
      ps.items[t].touched_rows[row] = touches(world.rank, ps.items[t].offset + row * row_len);
  sr_grad_reducer r;
  sr_grad_reducer_init(&r, &world, &ps, 16 * sizeof(float), overlap, shard_optimizer);
  sr_grad_reducer_begin(&r);
  for (int i = ps.n_dense - 1; i >= 0; i--) sr_grad_reducer_ready(&r, i);  // backward's order
  EXPECT_EQ(sr_grad_reducer_finish(&r), SR_OK) << sr_error_message();
  TouchedRowsReduction out;
  for (int k = 0; k < r.n_buckets; k++)
    for (int64_t j = r.owned[k].begin; j < r.owned[k].end; j++) {
      out.owned.push_back(ps.grads[j]);
      double sum = 0.0;
      for (int rank = 0; rank < world.size; rank++)
        if (touches(rank, j)) sum += value(rank, j);
      out.want.push_back(sum);
    }
  out.table_bucket = ps.items[t + 1].offset - ps.items[t].offset;
  out.reduced = r.reduced_elements;
  out.dense = r.dense_elements;
  sr_grad_reducer_free(&r);
  sr_params_free(&ps);
  return out;
}

TEST(GradReduce, TouchedRowsGiveTheBitsOfWholeRows) {
  struct Mode {
    int overlap, shard_optimizer;
    const char *name;
  };
  for (const Mode &mode :
       {Mode{0, 0, "blocking all-reduce"}, Mode{1, 0, "overlapped all-reduce"}, Mode{0, 1, "reduce-scatter"}}) {
    const TouchedRowsReduction whole = reduce_touched_rows(0, mode.overlap, mode.shard_optimizer);
    const TouchedRowsReduction packed = reduce_touched_rows(1, mode.overlap, mode.shard_optimizer);
    ASSERT_EQ(packed.owned.size(), whole.owned.size()) << mode.name;
    if (mode.shard_optimizer || world.size == 2) {
      EXPECT_EQ(packed.owned, whole.owned) << mode.name;
    } else {
      EXPECT_LT(max_relative_diff(packed.owned, whole.owned), 1e-6) << mode.name;
    }
    for (size_t j = 0; j < packed.owned.size(); j++) {
      EXPECT_NEAR(packed.owned[j], packed.want[j], 1e-6 * (1.0 + std::fabs(packed.want[j]))) << mode.name << " " << j;
      if (packed.want[j] == 0.0) {
        EXPECT_EQ(packed.owned[j], 0.0f) << mode.name << " " << j;
      }
    }
    // 21 of the 41 rows are touched by some rank: those rows alone travel.
    EXPECT_EQ(whole.reduced, whole.dense) << mode.name;
    EXPECT_EQ(packed.dense, whole.dense) << mode.name;
    EXPECT_EQ(packed.reduced, whole.dense - whole.table_bucket + 21 * 7) << mode.name;
  }
}

// dist.exchange_touched_rows on a catalogue that a batch covers a fraction
// of: the parameters are those of whole-gradient exchanges and of one
// process on the global batch. Bit for bit on 2 ranks (a + b has one order);
// on more, the first layer's own bucket (grad_reduce.h) cuts this tiny
// model's buckets differently from one bucket of every tensor, so the ring
// adds in another order (with the same buckets it adds in the same order:
// GradReduce.TouchedRowsGiveTheBitsOfWholeRows).
TEST(DataParallel, TouchedRowExchangeChangesNoParameter) {
  static const sr_dataset wide = srtest::synthetic_dataset(700, 3000, 100, 12);
  for (sr_model_type type : {SR_MODEL_MULTVAE, SR_MODEL_MULTDAE}) {
    for (int shard_optimizer : {1, 0}) {
      sr_config cfg = small_config(type, 25);
      cfg.dist.shard_optimizer = shard_optimizer;
      Trained touched = train_sharded(cfg, wide);
      cfg.dist.exchange_touched_rows = 0;
      Trained whole = train_sharded(cfg, wide);
      ASSERT_FALSE(whole.params.empty());
      if (world.size == 2) {
        EXPECT_EQ(touched.params, whole.params) << "shard_optimizer " << shard_optimizer;
      } else {
        EXPECT_LT(max_relative_diff(touched.params, whole.params), kTolerance);
      }
      EXPECT_LT(max_relative_diff(touched.params, train_single(cfg, wide).params), kTolerance);
    }
  }
}

TEST(DataParallel, ReplicasStayIdentical) {
  Trained t = train_sharded(small_config(SR_MODEL_MULTVAE, 25));
  EXPECT_EQ(sr_dist_check_identical(&world, t.params.data(), t.params.size() * sizeof(float), "parameters"), 0)
      << sr_error_message();
}

TEST(DataParallel, ShardsCoverEveryRowOnceBalancedByInteractions) {
  const sr_dataset &d = full_dataset();
  sr_dataset shard;
  sr_dataset_shard(&d, world.rank, world.size, &shard);
  int64_t counts[4] = {shard.train.n_rows, shard.train.nnz, shard.valid.n_users, shard.test.n_users};
  int64_t begin = shard.train_row_begin;
  MPI_Allreduce(MPI_IN_PLACE, counts, 4, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(counts[0], d.train.n_rows);
  EXPECT_EQ(counts[1], d.train.nnz);
  EXPECT_EQ(counts[2], d.valid.n_users);
  EXPECT_EQ(counts[3], d.test.n_users);
  // This shard's rows are the full split's rows [begin, begin + n).
  for (int64_t r = 0; r < shard.train.n_rows; r++) {
    ASSERT_EQ(sr_csr_row_len(&shard.train, r), sr_csr_row_len(&d.train, begin + r));
    EXPECT_EQ(shard.train.indices[shard.train.indptr[r]], d.train.indices[d.train.indptr[begin + r]]);
  }
  // Interactions per rank within one user's worth of an even share.
  int64_t longest = 0;
  for (int64_t r = 0; r < d.train.n_rows; r++) longest = std::max(longest, sr_csr_row_len(&d.train, r));
  EXPECT_LE(std::llabs(shard.train.nnz - d.train.nnz / world.size), longest + 1);
  sr_dataset_free(&shard);
}

namespace {

// cfg with a cosine schedule after a warm-up and gradients clipped to a
// quarter of the last step's unclipped norm (one process), so that every
// step clips.
sr_config clipped_scheduled(sr_config cfg) {
  cfg.train.clip_grad_norm = 1e9;  // the norm is computed, nothing clipped
  const double norm = train_single(cfg).result.grad_norm;
  EXPECT_GT(norm, 0.0);
  cfg.train.clip_grad_norm = norm / 4;
  cfg.train.lr_schedule = SR_LR_COSINE;
  cfg.train.warmup_steps = 3;
  return cfg;
}

// P ranks give one process's norm (each element counted once, whichever
// rank holds it) and its parameters.
void expect_clipped_equivalent(const sr_config &cfg, const char *what) {
  Trained dist = train_sharded(cfg), single = train_single(cfg);
  ASSERT_FALSE(single.params.empty());
  EXPECT_GT(single.result.grad_norm, cfg.train.clip_grad_norm) << what;
  EXPECT_NEAR(dist.result.grad_norm, single.result.grad_norm, 1e-5 * single.result.grad_norm)
      << what << " P=" << world.size;
  EXPECT_LT(max_relative_diff(dist.params, single.params), kTolerance) << what << " P=" << world.size;
  sr_config unclipped = cfg;
  unclipped.train.clip_grad_norm = 0;
  EXPECT_GT(max_relative_diff(train_single(unclipped).params, single.params), 1e-5) << what;
}

}  // namespace

// Gradient clipping by global norm and learning-rate schedules
// (train.clip_grad_norm, train.lr_schedule), distributed: the replicated and
// the sharded optimizer (where each rank holds the sums of its slices only).
TEST(DataParallel, ClippedScheduledAutoencodersMatchSingleProcess) {
  for (int shard_optimizer : {0, 1}) {
    sr_config cfg = small_config(SR_MODEL_MULTVAE, 0.0005);  // many buckets: slices split tensors
    cfg.dist.shard_optimizer = shard_optimizer;
    expect_clipped_equivalent(clipped_scheduled(cfg), shard_optimizer ? "vae sharded optimizer" : "vae replicated");
  }
}

// The two-tower's norm includes its sparse embedding tables, exchanged
// before the dense step: replicated tables (summed on every rank) and
// row-sharded ones (each rank's rows).
TEST(DataParallel, ClippedScheduledTwoTowerMatchesSingleProcess) {
  sr_config cfg = clipped_scheduled(two_tower_config());
  expect_clipped_equivalent(cfg, "two-tower replicated tables");
  cfg.dist.shard_optimizer = 0;
  expect_clipped_equivalent(cfg, "two-tower replicated optimizer");
  // Row-sharded tables: each rank's rows of them (the parameters are slices).
  cfg.model.table_sharding = SR_TABLES_ROW;
  cfg.dist.shard_optimizer = 1;
  sr_train_result sharded_result, single_result;
  sr_model *sharded = train_model(cfg, &sharded_result);
  sr_dist self;
  sr_dist_self(&self);
  sr_model *single = nullptr;
  ASSERT_EQ(sr_train(&cfg, &self, &full_dataset(), nullptr, &single, &single_result), 0) << sr_error_message();
  ASSERT_TRUE(sharded);
  EXPECT_EQ(sr_params_sharded(&sharded->params), world.size > 1 ? 5 : 0);
  EXPECT_NEAR(sharded_result.grad_norm, single_result.grad_norm, 1e-5 * single_result.grad_norm)
      << "P=" << world.size;
  EXPECT_LT(max_slice_diff(sharded, single), kTolerance) << "P=" << world.size;
  sr_model_destroy(single);
  sr_model_destroy(sharded);
}

// EASE (ease.h): each rank adds its shard's rows into X^T X, rank 0 inverts
// the sum and broadcasts B. The counts are integers, exact in float64 in any
// order, so P ranks give one process's B bit for bit, on every rank, and
// its metrics.
TEST(DataParallel, EaseMatchesSingleProcessExactly) {
  sr_config cfg = small_config(SR_MODEL_EASE, 25);
  cfg.model.ease_lambda = 20;
  Trained dist = train_sharded(cfg), single = train_single(cfg);
  ASSERT_FALSE(single.params.empty());
  EXPECT_EQ(dist.params, single.params);
  EXPECT_EQ(sr_dist_check_identical(&world, dist.params.data(), dist.params.size() * sizeof(float), "EASE B"), 0);
  for (int i = 0; i < single.result.test.n; i++) {
    EXPECT_NEAR(sr_metrics_mean(&dist.result.best_valid, i), sr_metrics_mean(&single.result.best_valid, i), 1e-12);
    EXPECT_NEAR(sr_metrics_mean(&dist.result.test, i), sr_metrics_mean(&single.result.test, i), 1e-12);
  }
  EXPECT_EQ(dist.result.stop_reason, std::string("fitted"));
}

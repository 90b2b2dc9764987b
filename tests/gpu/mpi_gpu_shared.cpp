// mpi_gpu_shared.cpp — run under mpiexec with 2 ranks on a machine with one
// GPU (or more): both ranks train on the device they are bound to (the same
// one when there is one), with the MPI backend (NCCL refuses two ranks per
// GPU), for both optimizer layouts, and must give the parameters of one
// process on the global batch to 1e-4 (srtest::max_relative_diff: the
// gradient sums change order, and cuBLAS picks its kernels by shape, so the
// per-rank halves are not summed as the whole batch is). Skips on every rank
// without a usable GPU.
#include <gtest/gtest.h>

#include <vector>

#include "../mpi/mpi_main.h"
#include "../test_util.h"

extern "C" {
#include "shardrec/config.h"
#include "shardrec/device.h"
#include "shardrec/error.h"
#include "shardrec/log.h"
#include "shardrec/shard.h"
#include "shardrec/train.h"
}

namespace {

using srtest::world;

sr_config config(int shard_optimizer) {
  sr_config cfg;
  sr_config_defaults(&cfg);
  snprintf(cfg.data.path, sizeof cfg.data.path, "in-memory");
  cfg.model.hidden[0] = 48;
  cfg.model.latent_dim = 12;
  cfg.model.total_anneal_steps = 20;
  cfg.train.batch_size = 96;
  cfg.train.epochs = 100;
  cfg.train.max_steps = 9;
  cfg.train.eval_every = 1000;
  cfg.run.device = SR_DEVICE_CUDA;
  cfg.dist.backend = SR_BACKEND_MPI;
  cfg.dist.shard_optimizer = shard_optimizer;
  return cfg;
}

std::vector<float> train(const sr_config &cfg, const sr_dist *dist, const sr_dataset *d) {
  sr_model *m = nullptr;
  sr_train_result res;
  EXPECT_EQ(sr_train(&cfg, dist, d, nullptr, &m, &res), SR_OK) << sr_error_message();
  if (!m) return {};
  std::vector<float> v(m->params.values, m->params.values + m->params.total);
  sr_model_destroy(m);
  return v;
}

TEST(GpuSharedDevice, TwoRanksOnOneGpuEqualOneRankWithTheGlobalBatch) {
  char why[256];
  if (!sr_device_available(why, sizeof why)) GTEST_SKIP() << "no GPU here: " << why;
  sr_log_set_level(SR_LOG_ERROR);
  sr_dataset full = srtest::synthetic_dataset(700, 300, 100, 15);
  for (int shard : {0, 1}) {
    sr_dist self;
    sr_dist_self(&self);
    const std::vector<float> one = train(config(shard), &self, &full);
    sr_dataset mine;
    sr_dataset_shard(&full, world.rank, world.size, &mine);
    const std::vector<float> many = train(config(shard), &world, &mine);
    EXPECT_LT(srtest::max_relative_diff(many, one), 1e-4) << "shard_optimizer " << shard;
    sr_dataset_free(&mine);
  }
  sr_dataset_free(&full);
}

}  // namespace

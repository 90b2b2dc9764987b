// test_gpu_train.cpp — training on the GPU through sr_train: 50 steps equal
// the CPU's to a relative parameter distance ||gpu - cpu|| / ||cpu|| < 1e-3
// (fp32 round-off through 50 Adam steps; an L2 distance, since single
// elements whose gradient is near zero may take Adam steps of either sign),
// the 1-rank NCCL path equals the MPI path (max_relative_diff 1e-6: the same
// arithmetic, NCCL's 1-rank all-reduce copies), resume is bit-exact on the
// GPU, and a GPU checkpoint resumes on the CPU (1e-3 of an all-CPU run).
#include <cmath>
#include <string>
#include <vector>

#include "../test_util.h"
#include "gpu_test.h"

extern "C" {
#include "shardrec/checkpoint.h"
#include "shardrec/checkpoint_dir.h"
#include "shardrec/config.h"
#include "shardrec/log.h"
#include "shardrec/train.h"
}

namespace {

class GpuTrain : public gputest::Gpu {};

const sr_dataset &dataset() {
  static sr_dataset d = srtest::synthetic_dataset(1200, 500, 100, 20);
  return d;
}

sr_config config(int device, int64_t max_steps, const std::string &ckpt_dir = "") {
  sr_config cfg;
  sr_config_defaults(&cfg);
  snprintf(cfg.data.path, sizeof cfg.data.path, "in-memory");
  cfg.model.hidden[0] = 64;
  cfg.model.latent_dim = 16;
  cfg.model.total_anneal_steps = 40;
  cfg.train.batch_size = 100;  // 10 steps per epoch
  cfg.train.epochs = 100;
  cfg.train.max_steps = max_steps;  // stops mid-run: the last validation holds the final parameters
  cfg.train.eval_every = 1000;
  cfg.run.device = device;
  cfg.dist.backend = SR_BACKEND_MPI;
  cfg.checkpoint.every_steps = 7;
  snprintf(cfg.checkpoint.dir, sizeof cfg.checkpoint.dir, "%s", ckpt_dir.c_str());
  return cfg;
}

// The parameters training returns (the final ones: see config()).
std::vector<float> train(const sr_config &cfg) {
  sr_log_set_level(SR_LOG_ERROR);
  sr_dist self;
  sr_dist_self(&self);
  sr_model *m = nullptr;
  sr_train_result res;
  EXPECT_EQ(sr_train(&cfg, &self, &dataset(), nullptr, &m, &res), SR_OK) << sr_error_message();
  if (!m) return {};
  std::vector<float> v(m->params.values, m->params.values + m->params.total);
  sr_model_destroy(m);
  return v;
}

double relative_distance(const std::vector<float> &a, const std::vector<float> &b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); i++)
    num += std::pow((double)a[i] - b[i], 2), den += std::pow(b[i], 2);
  return std::sqrt(num / den);
}

// Values and Adam moments of a training checkpoint.
std::vector<float> checkpoint_state(const std::string &dir, int64_t step) {
  char path[4096];
  sr_ckptdir_path(dir.c_str(), step, path, sizeof path);
  sr_config cfg;
  sr_model *m = nullptr;
  EXPECT_EQ(sr_checkpoint_read(path, nullptr, &cfg, &m), SR_OK) << sr_error_message();
  if (!m) return {};
  sr_optim o;
  sr_optim_init(&o, SR_OPTIM_ADAM);
  std::vector<float> best((size_t)m->params.total), all;
  sr_train_state s{};
  s.best_values = best.data();
  EXPECT_EQ(sr_checkpoint_read_training(path, m, &o, &s), SR_OK) << sr_error_message();
  for (const float *arena : {m->params.values, m->params.adam_m, m->params.adam_v})
    all.insert(all.end(), arena, arena + m->params.total);
  free(s.history);
  sr_model_destroy(m);
  return all;
}

TEST_F(GpuTrain, FiftyStepsEqualTheCpu) {
  for (sr_model_type type : {SR_MODEL_MULTVAE, SR_MODEL_MULTDAE}) {
    sr_config gpu = config(SR_DEVICE_CUDA, 50), cpu = config(SR_DEVICE_CPU, 50);
    gpu.model.type = cpu.model.type = type;
    const double dist = relative_distance(train(gpu), train(cpu));
    std::printf("%s: ||gpu - cpu|| / ||cpu|| after 50 steps = %.3g\n", type == SR_MODEL_MULTVAE ? "vae" : "dae",
                dist);
    EXPECT_LT(dist, 1e-3);
  }
}

TEST_F(GpuTrain, OneRankNcclEqualsTheMpiPath) {
#ifndef SHARDREC_HAVE_NCCL
  GTEST_SKIP() << "built without NCCL";
#endif
  for (int shard : {0, 1}) {
    sr_config nccl = config(SR_DEVICE_CUDA, 12), mpi = config(SR_DEVICE_CUDA, 12);
    nccl.dist.backend = SR_BACKEND_NCCL;
    nccl.dist.shard_optimizer = mpi.dist.shard_optimizer = shard;
    EXPECT_LT(srtest::max_relative_diff(train(nccl), train(mpi)), 1e-6) << "shard_optimizer " << shard;
  }
}

TEST_F(GpuTrain, ResumeIsBitExact) {
  srtest::TempDir tmp;
  const std::string straight = tmp.file("straight"), cut = tmp.file("cut");
  train(config(SR_DEVICE_CUDA, 23, straight));
  train(config(SR_DEVICE_CUDA, 9, cut));  // checkpoints at 7 and 9
  sr_config more = config(SR_DEVICE_CUDA, 23, cut);
  snprintf(more.checkpoint.resume, sizeof more.checkpoint.resume, "auto");
  train(more);  // from step 9, across two epoch ends
  std::vector<float> a = checkpoint_state(straight, 23), b = checkpoint_state(cut, 23);
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "relative distance " << relative_distance(a, b);
}

TEST_F(GpuTrain, AGpuCheckpointResumesOnTheCpu) {
  srtest::TempDir tmp;
  const std::string mixed = tmp.file("mixed"), cpu_only = tmp.file("cpu");
  train(config(SR_DEVICE_CUDA, 14, mixed));
  sr_config more = config(SR_DEVICE_CPU, 30, mixed);
  snprintf(more.checkpoint.resume, sizeof more.checkpoint.resume, "auto");
  const std::vector<float> resumed = train(more), reference = train(config(SR_DEVICE_CPU, 30, cpu_only));
  ASSERT_FALSE(resumed.empty());
  EXPECT_LT(relative_distance(resumed, reference), 1e-3);
}

}  // namespace

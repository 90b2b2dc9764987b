// test_gpu_vae.cpp — the device Mult-VAE and Mult-DAE (src/cuda/vae.cu)
// against the CPU models on one batch: the loss and its terms (relative 1e-5),
// every parameter gradient (|gpu - cpu| <= 1e-4 (1 + |cpu|): another summation
// order in every product, amplified through the layers), the DAE's L2 penalty,
// and evaluation scores (1e-4). Same seed, same sample ids: the same dropout
// masks and the same noise.
#include <vector>

#include "../test_util.h"
#include "gpu_test.h"

#include "cu_model.h"  // C linkage of its own (and C++ CUDA headers)

extern "C" {
#include "shardrec/config.h"
#include "shardrec/model.h"
}

namespace {

using gputest::expect_close;

class GpuVae : public gputest::Gpu {};

sr_config vae_config(sr_model_type type) {
  sr_config cfg;
  sr_config_defaults(&cfg);
  cfg.model.type = type;
  cfg.model.n_hidden = 1;
  cfg.model.hidden[0] = 96;
  cfg.model.latent_dim = 32;
  cfg.model.total_anneal_steps = 10;  // beta = min(0.2, step / 10): a live KL term at step 1
  cfg.train.batch_size = 64;
  cfg.train.eval_batch_size = 64;
  return cfg;
}

std::vector<float> device_arena(const sr_model *m, const float *dev, int64_t n) {
  std::vector<float> v((size_t)n);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);  // the model's stream is non-blocking
  EXPECT_EQ(cudaMemcpy(v.data(), dev, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  (void)m;
  return v;
}

void compare_one_batch(sr_model_type type) {
  sr_dataset d = srtest::synthetic_dataset(400, 700, 40, 30);
  sr_config cfg = vae_config(type);
  sr_model *cpu = nullptr, *gpu = nullptr;
  ASSERT_EQ(sr_model_create(&cfg, &d, &cpu), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_device_model_create(&cfg, &d, nullptr, &gpu), SR_OK) << sr_error_message();
  const int64_t B = 50;
  std::vector<int64_t> rows((size_t)B), ids((size_t)B), positions((size_t)B);
  for (int64_t r = 0; r < B; r++) rows[(size_t)r] = 3 * r, ids[(size_t)r] = 3 * r, positions[(size_t)r] = r;
  sr_csr x;
  sr_csr_gather_rows(&d.train, rows.data(), B, &x);
  sr_batch batch{};
  batch.rows = &x;
  batch.sample_ids = ids.data();
  batch.user_ids = ids.data();
  batch.positions = positions.data();
  batch.global_batch = 64;  // as if other ranks held 14 more rows
  batch.step = 1;
  sr_step_stats s_cpu, s_gpu;
  ASSERT_EQ(cpu->ops->forward_backward(cpu, &batch, &s_cpu), SR_OK);
  ASSERT_EQ(gpu->ops->forward_backward(gpu, &batch, &s_gpu), SR_OK) << sr_error_message();
  const double p_cpu = cpu->ops->add_param_penalty(cpu), p_gpu = gpu->ops->add_param_penalty(gpu);
  EXPECT_NEAR(p_gpu, p_cpu, 1e-5 * (1 + p_cpu));
  ASSERT_EQ(s_cpu.n_terms, s_gpu.n_terms);
  EXPECT_NEAR(s_gpu.loss, s_cpu.loss, 1e-5 * std::fabs(s_cpu.loss));
  for (int i = 0; i < s_cpu.n_terms; i++)
    EXPECT_NEAR(s_gpu.terms[i], s_cpu.terms[i], 1e-5 * (1 + std::fabs(s_cpu.terms[i]))) << s_cpu.term_names[i];
  const cu_model *dev = (const cu_model *)gpu;
  std::vector<float> grads = device_arena(gpu, dev->grads, gpu->params.dense_total);
  for (int i = 0; i < cpu->params.count; i++) {
    const sr_param *p = &cpu->params.items[i];
    expect_close(p->name, std::vector<float>(grads.begin() + p->offset, grads.begin() + p->offset + p->numel),
                 std::vector<float>(p->grad, p->grad + p->numel), 1e-4);
  }
  // Evaluation scores of validation users from their fold-in rows.
  sr_csr foldin;
  sr_csr_slice_rows(&d.valid.foldin, 0, 30, &foldin);
  std::vector<float> sc((size_t)(30 * d.n_items)), sg(sc.size());
  cpu->ops->score(cpu, &foldin, d.valid.user_ids, sc.data());
  gpu->ops->score(gpu, &foldin, d.valid.user_ids, sg.data());
  expect_close("scores", sg, sc, 1e-4);
  sr_csr_free(&foldin);
  sr_csr_free(&x);
  sr_model_destroy(cpu);
  sr_model_destroy(gpu);
  sr_dataset_free(&d);
}

TEST_F(GpuVae, MultVaeLossAndEveryGradientMatchTheCpu) { compare_one_batch(SR_MODEL_MULTVAE); }
TEST_F(GpuVae, MultDaeLossAndEveryGradientMatchTheCpu) { compare_one_batch(SR_MODEL_MULTDAE); }

TEST_F(GpuVae, InitialParametersAreTheCpuModels) {
  sr_dataset d = srtest::synthetic_dataset(100, 300, 10, 10);
  sr_config cfg = vae_config(SR_MODEL_MULTVAE);
  sr_model *cpu = nullptr, *gpu = nullptr;
  ASSERT_EQ(sr_model_create(&cfg, &d, &cpu), SR_OK);
  ASSERT_EQ(sr_device_model_create(&cfg, &d, nullptr, &gpu), SR_OK) << sr_error_message();
  const int64_t n = cpu->params.total;
  EXPECT_TRUE(device_arena(gpu, ((const cu_model *)gpu)->values, n) ==
              std::vector<float>(cpu->params.values, cpu->params.values + n));
  sr_model_destroy(cpu);
  sr_model_destroy(gpu);
  sr_dataset_free(&d);
}

}  // namespace

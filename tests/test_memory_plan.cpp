// test_memory_plan.cpp — what training holds per rank (memory_plan.h) and
// the memory available (sysmem.h): the figures follow the registry's arenas,
// SHARDREC_MEM_AVAILABLE replaces the measurement, and a run that does not
// fit is refused before its first step with what to raise.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "test_util.h"

extern "C" {
#include "shardrec/config.h"
#include "shardrec/error.h"
#include "shardrec/memory_plan.h"
#include "shardrec/model.h"
#include "shardrec/sysmem.h"
#include "shardrec/train.h"
}

namespace {

// Sets SHARDREC_MEM_AVAILABLE for the life of the object.
struct AvailableMemory {
  explicit AvailableMemory(const std::string &value) { setenv(SR_SYSMEM_ENV, value.c_str(), 1); }
  ~AvailableMemory() { unsetenv(SR_SYSMEM_ENV); }
};

sr_config vae_config() {
  sr_config cfg;
  sr_config_defaults(&cfg);
  snprintf(cfg.data.path, sizeof cfg.data.path, "in-memory");
  cfg.model.hidden[0] = 32;
  cfg.model.latent_dim = 8;
  cfg.train.batch_size = 50;
  cfg.train.max_steps = 2;
  return cfg;
}

TEST(SysMem, OverrideTakesSizesWithSuffixes) {
  int64_t bytes = 0;
  const char *source = nullptr;
  {
    AvailableMemory env("3G");
    ASSERT_EQ(sr_sysmem_available(&bytes, &source), SR_OK);
    EXPECT_EQ(bytes, int64_t{3} << 30);
    EXPECT_STREQ(source, SR_SYSMEM_ENV);
  }
  {
    AvailableMemory env("12345");
    ASSERT_EQ(sr_sysmem_available(&bytes, &source), SR_OK);
    EXPECT_EQ(bytes, 12345);
  }
  for (const char *bad : {"", "12x", "G", "-5", "1.5G", "5GB"}) {
    AvailableMemory env(bad);
    EXPECT_EQ(sr_sysmem_available(&bytes, &source), SR_EINVAL) << bad;
    EXPECT_NE(std::string(sr_error_message()).find(SR_SYSMEM_ENV), std::string::npos);
  }
  // Measured: this Linux machine has /proc/meminfo.
  ASSERT_EQ(sr_sysmem_available(&bytes, &source), SR_OK);
  EXPECT_GT(bytes, 0);
}

// Values and the best-validation copy, dense gradients, Adam's two moments:
// the registry's arenas; the activations grow with the batch.
TEST(MemoryPlan, FiguresFollowTheRegistryArenas) {
  sr_config cfg = vae_config();
  sr_dataset corpus = srtest::item_corpus(300);
  sr_model *m = nullptr;
  ASSERT_EQ(sr_model_create(&cfg, &corpus, &m), SR_OK);
  sr_memory_use small, large;
  sr_memory_use_of(m, 10, 20, &small);
  sr_memory_use_of(m, 100, 20, &large);
  const int64_t f = sizeof(float);
  EXPECT_EQ(small.parameters, 2 * m->params.total * f);
  EXPECT_EQ(small.gradients, m->params.dense_total * f);
  EXPECT_EQ(small.optimizer, 2 * m->params.total * f);
  EXPECT_GE(small.activations, (10 * 300 + 20 * 300) * f);  // logits and evaluation scores, at least
  EXPECT_GE(large.activations - small.activations, 90 * 300 * f);
  sr_model_destroy(m);
  sr_dataset_free(&corpus);
}

// The two-tower model estimates its buffers too: at least the evaluation's
// item embeddings (n_items, d) and the (rows, n_items) scores, growing with
// the batch through its passes.
TEST(MemoryPlan, TwoTowerEstimatesItsBuffers) {
  sr_config cfg;
  sr_config_defaults(&cfg);
  snprintf(cfg.data.path, sizeof cfg.data.path, "in-memory");
  cfg.model.type = SR_MODEL_TWOTOWER;
  cfg.model.n_item_features = 1;  // item_id
  cfg.ssl.enabled = 0;
  sr_dataset corpus = srtest::item_corpus(500);
  sr_model *m = nullptr;
  ASSERT_EQ(sr_model_create(&cfg, &corpus, &m), SR_OK) << sr_error_message();
  sr_memory_use small, large;
  sr_memory_use_of(m, 10, 20, &small);
  sr_memory_use_of(m, 1000, 20, &large);
  const int64_t f = sizeof(float);
  EXPECT_GE(small.activations, (500 * cfg.model.embedding_dim + 20 * 500) * f);
  EXPECT_GE(large.activations - small.activations, 990 * cfg.model.embedding_dim * f);
  EXPECT_EQ(small.gradients, m->params.dense_total * f);  // the tables have no dense gradient
  sr_model_destroy(m);
  sr_dataset_free(&corpus);
}

TEST(MemoryPlan, RefusesARunThatDoesNotFitSayingWhatToRaise) {
  sr_config cfg = vae_config();
  sr_dataset data = srtest::synthetic_dataset(200, 80, 20, 8);
  sr_dist self;
  sr_dist_self(&self);
  sr_train_result res;
  {
    AvailableMemory env("100k");
    EXPECT_EQ(sr_train(&cfg, &self, &data, nullptr, nullptr, &res), SR_ENOMEM);
    const std::string message = sr_error_message();
    for (const char *part : {"not enough memory: training needs", "per rank (parameters", "but a rank has 100 KiB",
                             SR_SYSMEM_ENV, "dist.item_parallel", "model.table_sharding", "number of ranks"})
      EXPECT_NE(message.find(part), std::string::npos) << part << " in: " << message;
  }
  {
    AvailableMemory env("1G");
    EXPECT_EQ(sr_train(&cfg, &self, &data, nullptr, nullptr, &res), SR_OK) << sr_error_message();
  }
  sr_dataset_free(&data);
}

}  // namespace

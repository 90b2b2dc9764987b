// test_device.cpp — run.device on any machine: asking for the GPU where there
// is none (no device, no driver, or a build without CUDA) fails at once with
// one message that says why and what to set; auto falls back to the CPU. The
// GPU itself is tested by tests/gpu/ (shardrec_gpu_tests, CUDA builds).
#include <gtest/gtest.h>

#include <string>

#include "test_util.h"

extern "C" {
#include "shardrec/config.h"
#include "shardrec/device.h"
#include "shardrec/dist.h"
#include "shardrec/error.h"
#include "shardrec/log.h"
#include "shardrec/train.h"
}

namespace {

sr_config tiny_config(int device) {
  sr_config cfg;
  sr_config_defaults(&cfg);
  snprintf(cfg.data.path, sizeof cfg.data.path, "in-memory");
  cfg.model.hidden[0] = 16;
  cfg.model.latent_dim = 8;
  cfg.train.batch_size = 50;
  cfg.train.epochs = 1;
  cfg.run.device = device;
  return cfg;
}

TEST(Device, CudaWithoutAUsableGpuFailsWithOneClearMessage) {
  char why[256];
  if (sr_device_available(why, sizeof why)) GTEST_SKIP() << "a usable GPU is present (tests/gpu covers it)";
  sr_log_set_level(SR_LOG_WARN);
  sr_dataset d = srtest::synthetic_dataset(300, 80, 40, 8);
  sr_config cfg = tiny_config(SR_DEVICE_CUDA);
  sr_dist self;
  sr_dist_self(&self);
  sr_train_result res;
  sr_model *m = nullptr;
  EXPECT_EQ(sr_train(&cfg, &self, &d, nullptr, &m, &res), SR_EINVAL);
  const std::string msg = sr_error_message();
  EXPECT_NE(msg.find("run.device: cuda, but"), std::string::npos) << msg;
  EXPECT_NE(msg.find(why), std::string::npos) << msg;  // the reason, as the probe states it
  EXPECT_NE(msg.find("run.device: cpu"), std::string::npos) << msg;
  EXPECT_EQ(m, nullptr);
  sr_dataset_free(&d);
}

TEST(Device, AutoTrainsOnTheCpuWithoutAGpu) {
  if (sr_device_available(nullptr, 0)) GTEST_SKIP() << "a usable GPU is present: auto would pick it";
  sr_log_set_level(SR_LOG_WARN);
  sr_dataset d = srtest::synthetic_dataset(300, 80, 40, 8);
  sr_config cfg = tiny_config(SR_DEVICE_AUTO);
  sr_dist self;
  sr_dist_self(&self);
  sr_train_result res;
  ASSERT_EQ(sr_train(&cfg, &self, &d, nullptr, nullptr, &res), SR_OK) << sr_error_message();
  EXPECT_EQ(res.epochs_completed, 1);
  sr_dataset_free(&d);
}

TEST(Device, TheBinaryReportsTheMissingGpuAndExitsNonZero) {
  if (sr_device_available(nullptr, 0)) GTEST_SKIP() << "a usable GPU is present";
  srtest::TempDir dir;
  const std::string data = dir.file("d.h5");
  auto synth = srtest::run_command(std::string(SHARDREC_BINARY) + " data synth -o " + data +
                                   " --users 300 --items 80 --heldout 40");
  ASSERT_EQ(synth.exit_code, 0) << synth.output;
  auto train = srtest::run_command(std::string(SHARDREC_BINARY) + " train " + SHARDREC_SOURCE_DIR +
                                   "/configs/quickstart.yaml --set data.path=" + data +
                                   " --set run.out_dir=" + dir.path() + " --set run.device=cuda");
  EXPECT_NE(train.exit_code, 0);
  EXPECT_NE(train.output.find("run.device: cuda, but"), std::string::npos) << train.output;
}

}  // namespace

// test_checkpoint.cpp — model checkpoints: exact round trip, readable by other
// HDF5 tools, shape mismatches and corrupted chunks rejected with clear errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "test_util.h"

extern "C" {
#include "shardrec/checkpoint.h"
#include "shardrec/config.h"
#include "shardrec/error.h"
#include "shardrec/model.h"
}

namespace {

sr_config small_config(int hidden) {
  sr_config cfg;
  sr_config_defaults(&cfg);
  snprintf(cfg.data.path, sizeof cfg.data.path, "data/x.h5");
  cfg.model.hidden[0] = hidden;
  cfg.model.latent_dim = 4;
  cfg.run.seed = 3;
  return cfg;
}

sr_model *make_model(const sr_config &cfg, int64_t n_items) {
  sr_model *m = nullptr;
  sr_dataset corpus = srtest::item_corpus(n_items);
  EXPECT_EQ(sr_model_create(&cfg, &corpus, &m), 0);
  return m;
}

}  // namespace

TEST(Checkpoint, RoundTripIsExact) {
  srtest::TempDir tmp;
  sr_config cfg = small_config(6);
  cfg.train.lr = 3e-4;
  sr_model *m = make_model(cfg, 9);
  for (int64_t i = 0; i < m->params.total; i++) m->params.values[i] += 0.25f * (float)(i % 7 + 1);
  const std::string path = tmp.file("ckpt.h5");
  ASSERT_EQ(sr_checkpoint_write(path.c_str(), m, &cfg), 0) << sr_error_message();
  sr_config back;
  sr_model *r = nullptr;
  ASSERT_EQ(sr_checkpoint_read(path.c_str(), nullptr, &back, &r), 0) << sr_error_message();
  EXPECT_EQ(r->n_items, 9);
  ASSERT_EQ(r->params.total, m->params.total);
  for (int i = 0; i < m->params.count; i++) {
    const sr_param &want = m->params.items[i], &got = r->params.items[i];
    EXPECT_STREQ(got.name, want.name);
    EXPECT_EQ(0, memcmp(got.value, want.value, (size_t)want.numel * sizeof(float))) << want.name;
  }
  char *a = sr_config_to_yaml(&cfg), *b = sr_config_to_yaml(&back);
  EXPECT_STREQ(a, b);
  free(a), free(b);
  // No temporary file is left behind.
  EXPECT_EQ(srtest::run_command("ls " + tmp.path()).output, "ckpt.h5\n");
  sr_model_destroy(m);
  sr_model_destroy(r);
}

TEST(Checkpoint, TensorsKeepTheirShapesForOtherTools) {
  srtest::TempDir tmp;
  sr_config cfg = small_config(6);
  sr_model *m = make_model(cfg, 9);
  const std::string path = tmp.file("ckpt.h5");
  ASSERT_EQ(sr_checkpoint_write(path.c_str(), m, &cfg), 0);
  auto dump = srtest::run_command(std::string("HDF5_PLUGIN_PATH=") + SHARDREC_PLUGIN_DIR + " h5dump -p -H -d " +
                                  "'/params/encoder.0.weight' " + path);
  EXPECT_EQ(dump.exit_code, 0) << dump.output;
  EXPECT_NE(dump.output.find("( 9, 6 )"), std::string::npos) << dump.output;
  EXPECT_NE(dump.output.find("FLETCHER32"), std::string::npos) << dump.output;
  EXPECT_NE(dump.output.find("32015"), std::string::npos) << dump.output;
  sr_model_destroy(m);
}

TEST(Checkpoint, ShapeMismatchNamesTheTensor) {
  srtest::TempDir tmp;
  sr_config written = small_config(6), claimed = small_config(7);
  sr_model *m = make_model(written, 9);
  const std::string path = tmp.file("ckpt.h5");
  // The stored config says hidden [7] but the tensors are [6]-wide.
  ASSERT_EQ(sr_checkpoint_write(path.c_str(), m, &claimed), 0);
  sr_config back;
  sr_model *r = nullptr;
  EXPECT_EQ(sr_checkpoint_read(path.c_str(), nullptr, &back, &r), SR_EFORMAT);
  EXPECT_EQ(r, nullptr);
  std::string msg = sr_error_message();
  EXPECT_NE(msg.find("/params/encoder.0.weight: shape 9 x 6, expected 9 x 7"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  sr_model_destroy(m);
}

TEST(Checkpoint, CorruptedChunkIsDetectedByItsChecksum) {
  srtest::TempDir tmp;
  sr_config cfg = small_config(64);
  sr_model *m = make_model(cfg, 300);
  const std::string path = tmp.file("ckpt.h5");
  ASSERT_EQ(sr_checkpoint_write(path.c_str(), m, &cfg), 0);
  srtest::flip_byte_in_first_chunk(path, "/params/decoder.1.weight");
  sr_config back;
  sr_model *r = nullptr;
  EXPECT_EQ(sr_checkpoint_read(path.c_str(), nullptr, &back, &r), SR_EFORMAT);
  std::string msg = sr_error_message();
  EXPECT_NE(msg.find("/params/decoder.1.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  sr_model_destroy(m);
}

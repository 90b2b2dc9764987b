// test_compression.cpp — --compression zstd|gzip|none (h5io.h): parsing, the
// filter pipeline each writes, and files any HDF5 reader opens.
#include <gtest/gtest.h>

#include <vector>

#include "test_util.h"

extern "C" {
#include <hdf5.h>

#include "shardrec/checkpoint.h"
#include "shardrec/error.h"
#include "shardrec/h5io.h"
#include "shardrec/model.h"
}

namespace {

bool contains(const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; }

// The filter ids of a dataset's pipeline, in order.
std::vector<int> filters_of(const std::string &path, const char *obj) {
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(file, obj, H5P_DEFAULT), dcpl = H5Dget_create_plist(ds);
  std::vector<int> ids;
  for (int i = 0; i < H5Pget_nfilters(dcpl); i++) {
    unsigned flags, cd[4];
    size_t n_cd = 4;
    ids.push_back((int)H5Pget_filter2(dcpl, (unsigned)i, &flags, &n_cd, cd, 0, nullptr, nullptr));
  }
  H5Pclose(dcpl);
  H5Dclose(ds);
  H5Fclose(file);
  return ids;
}

TEST(Compression, ParsesNamesAndLevels) {
  sr_h5_compression c;
  char text[32];
  for (auto [in, out] : std::vector<std::pair<const char *, const char *>>{
           {"zstd", "zstd:3"}, {"gzip", "gzip:4"}, {"none", "none"}, {"zstd:19", "zstd:19"}, {"gzip:9", "gzip:9"}}) {
    ASSERT_EQ(sr_h5_compression_parse(in, &c), SR_OK) << in << ": " << sr_error_message();
    sr_h5_compression_format(c, text, sizeof text);
    EXPECT_STREQ(text, out);
  }
  EXPECT_EQ(sr_h5_compression_parse("lz4", &c), SR_EINVAL);
  EXPECT_TRUE(contains(sr_error_message(), "compression 'lz4': expected zstd, gzip or none")) << sr_error_message();
  EXPECT_EQ(sr_h5_compression_parse("gzip:10", &c), SR_EINVAL);
  EXPECT_TRUE(contains(sr_error_message(), "gzip level must be an integer in [1, 9]")) << sr_error_message();
  EXPECT_EQ(sr_h5_compression_parse("zstd:", &c), SR_EINVAL);
  EXPECT_EQ(sr_h5_compression_parse("none:1", &c), SR_EINVAL);
  EXPECT_TRUE(contains(sr_error_message(), "none takes no level")) << sr_error_message();
}

// Shuffle then the codec then Fletcher32; uncompressed: Fletcher32 alone.
// Every codec reads back the same dataset.
TEST(Compression, EachCodecWritesItsPipelineAndReadsBack) {
  srtest::TempDir dir;
  sr_dataset d = srtest::synthetic_dataset(300, 60, 30, 8.0, true);
  const std::vector<std::pair<sr_h5_codec, std::vector<int>>> cases = {
      {SR_H5_ZSTD, {H5Z_FILTER_SHUFFLE, 32015, H5Z_FILTER_FLETCHER32}},
      {SR_H5_GZIP, {H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE, H5Z_FILTER_FLETCHER32}},
      {SR_H5_UNCOMPRESSED, {H5Z_FILTER_FLETCHER32}}};
  for (const auto &[codec, pipeline] : cases) {
    const std::string path = dir.file(std::string(sr_h5_codec_names[codec]) + ".h5");
    ASSERT_EQ(sr_dataset_write(path.c_str(), &d, sr_h5_compression_of(codec)), SR_OK) << sr_error_message();
    EXPECT_EQ(filters_of(path, "/splits/train/indices"), pipeline) << sr_h5_codec_names[codec];
    EXPECT_EQ(filters_of(path, "/features/item/tags/indptr"), pipeline) << sr_h5_codec_names[codec];
    sr_dataset back;
    ASSERT_EQ(sr_dataset_read(path.c_str(), &back), SR_OK) << sr_error_message();
    ASSERT_EQ(back.train.nnz, d.train.nnz);
    EXPECT_TRUE(std::equal(back.train.indices, back.train.indices + back.train.nnz, d.train.indices));
    EXPECT_TRUE(std::equal(back.test.user_ids, back.test.user_ids + back.test.n_users, d.test.user_ids));
    sr_dataset_free(&back);
  }
  sr_dataset_free(&d);
}

// checkpoint.compression: gzip makes a model.h5 that h5dump reads without
// any plugin; zstd (the default) needs shardrec's.
TEST(Compression, CheckpointsFollowTheConfigKey) {
  srtest::TempDir dir;
  sr_dataset corpus = srtest::item_corpus(40);
  sr_config cfg = srtest::equivalence_config(SR_MODEL_MULTVAE);
  sr_model *m;
  ASSERT_EQ(sr_model_create(&cfg, &corpus, &m), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_config_set(&cfg, "checkpoint.compression=gzip"), SR_OK) << sr_error_message();
  const std::string gz = dir.file("gz.h5"), zs = dir.file("zs.h5");
  ASSERT_EQ(sr_checkpoint_write(gz.c_str(), m, &cfg), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_config_set(&cfg, "checkpoint.compression=zstd"), SR_OK);
  ASSERT_EQ(sr_checkpoint_write(zs.c_str(), m, &cfg), SR_OK) << sr_error_message();
  EXPECT_EQ(filters_of(gz, "/params/decoder.1.weight"),
            (std::vector<int>{H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE, H5Z_FILTER_FLETCHER32}));
  EXPECT_EQ(filters_of(zs, "/params/decoder.1.weight")[1], 32015);
  const std::string no_plugin = "HDF5_PLUGIN_PATH=" + dir.path() + " h5dump -d /params/decoder.1.bias ";
  EXPECT_EQ(srtest::run_command(no_plugin + gz).exit_code, 0);
  EXPECT_NE(srtest::run_command(no_plugin + zs).exit_code, 0);
  sr_model *back;
  sr_config read_cfg;
  ASSERT_EQ(sr_checkpoint_read(gz.c_str(), &corpus, &read_cfg, &back), SR_OK) << sr_error_message();
  EXPECT_EQ(read_cfg.checkpoint.compression, (int)SR_H5_GZIP);
  sr_model_destroy(back);
  sr_model_destroy(m);
  sr_dataset_free(&corpus);
}

TEST(Compression, CommandLineOption) {
  srtest::TempDir dir;
  const std::string bin = SHARDREC_BINARY, path = dir.file("s.h5");
  auto gz = srtest::run_command(bin + " data synth -o " + path + " --users 100 --items 30 --compression gzip:6");
  ASSERT_EQ(gz.exit_code, 0) << gz.output;
  EXPECT_EQ(filters_of(path, "/splits/train/indptr")[1], H5Z_FILTER_DEFLATE);
  auto bad = srtest::run_command(bin + " data synth -o " + path + " --compression lz4");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(contains(bad.output, "--compression: compression 'lz4': expected zstd, gzip or none")) << bad.output;
}

}  // namespace

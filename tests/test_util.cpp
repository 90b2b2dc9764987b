// test_util.cpp — see test_util.h.
#include "test_util.h"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <sys/wait.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern "C" {
#include "shardrec/checkpoint.h"
#include "shardrec/error.h"
#include "shardrec/h5zstd.h"
#include "shardrec/synth.h"
}

namespace srtest {

Loaded::Loaded(const std::string &checkpoint, const std::string &dataset) {
  sr_dataset_init(&data);
  EXPECT_EQ(sr_dataset_read(dataset.c_str(), &data), SR_OK) << sr_error_message();
  EXPECT_EQ(sr_checkpoint_read(checkpoint.c_str(), &data, &cfg, &model), SR_OK) << sr_error_message();
}

Loaded::~Loaded() {
  sr_model_destroy(model);
  sr_dataset_free(&data);
}

void train_every_model_type(const std::string &shardrec, const TempDir &dir, const std::string &data,
                            const std::string &model_keys, const std::string &train_keys) {
  for (std::string type : {"multvae", "multdae", "twotower"}) {
    write_file(dir.file(type + ".yaml"), "run: {out_dir: " + dir.path() + ", name: " + type + ", log_level: warn}\n" +
                                             "data: {path: " + data + "}\n" + "model: {type: " + type + ", " +
                                             model_keys + "}\n" + "train: {" + train_keys + "}\n");
    auto train = run_command(shardrec + " train " + dir.file(type + ".yaml"));
    ASSERT_EQ(train.exit_code, 0) << train.output;
  }
}

TempDir::TempDir() {
  const char *base = std::getenv("TMPDIR");
  std::string templ = std::string(base && *base ? base : "/tmp") + "/shardrec-test-XXXXXX";
  if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

TempDir::~TempDir() {
  std::string cmd = "rm -rf '" + path_ + "'";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", path_.c_str());
}

CommandResult run_command(const std::string &command) {
  std::string full = command + " 2>&1";
  FILE *pipe = popen(full.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  int status = pclose(pipe);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return {code, out};
}

std::string read_file(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string &path, const std::string &content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

std::string tiny_training_config(const TempDir &tmp, const std::string &shardrec, const std::string &log_level,
                                 const std::string &more_yaml) {
  const std::string data = tmp.file("tiny.h5"), cfg = tmp.file("tiny.yaml");
  EXPECT_EQ(run_command(shardrec + " data synth -o " + data + " --users 300 --items 80 --heldout 40").exit_code, 0);
  write_file(cfg, "data: {path: " + data + "}\nrun: {threads: 1, log_level: " + log_level +
                      "}\nmodel: {hidden: [16], latent_dim: 4}\n" + more_yaml);
  return cfg;
}

sr_csr csr_from_rows(const std::vector<std::vector<int32_t>> &rows, int64_t n_cols, bool with_values) {
  int64_t nnz = 0;
  for (const auto &row : rows) nnz += (int64_t)row.size();
  sr_csr m;
  sr_csr_alloc(&m, (int64_t)rows.size(), n_cols, nnz, with_values);
  int64_t k = 0;
  for (size_t r = 0; r < rows.size(); r++) {
    for (int32_t c : rows[r]) {
      if (with_values) m.values[k] = 10.0f * (float)r + (float)c + 0.5f;
      m.indices[k++] = c;
    }
    m.indptr[r + 1] = k;
  }
  return m;
}

sr_config equivalence_config(sr_model_type type) {
  sr_config cfg;
  sr_config_defaults(&cfg);  // dropout 0.5 on the input: the draws must follow the rows
  snprintf(cfg.data.path, sizeof cfg.data.path, "in-memory");
  cfg.model.type = type;
  cfg.model.n_hidden = 1;
  cfg.model.hidden[0] = 24;
  cfg.model.latent_dim = 8;
  cfg.model.total_anneal_steps = 20;
  cfg.train.batch_size = 96;
  cfg.train.epochs = 100;
  cfg.train.max_steps = 9;
  cfg.train.eval_batch_size = 17;
  cfg.run.seed = 5;
  return cfg;
}

double max_relative_diff(const std::vector<float> &a, const std::vector<float> &b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); i++) {
    const double d = std::fabs((double)a[i] - b[i]) / (1.0 + std::fabs((double)b[i]));
    if (std::isnan(d) || d > worst) worst = d;
    if (std::isnan(worst)) break; /* a NaN makes the result NaN: no tolerance accepts it */
  }
  return worst;
}

void expect_slices_equal(const sr_metrics &a, const sr_metrics &reference, double tolerance) {
  ASSERT_EQ(reference.n_slices, SR_N_SLICES);
  ASSERT_EQ(a.n_slices, SR_N_SLICES);
  for (int s = 0; s < SR_N_SLICES; s++) {
    EXPECT_EQ(a.slice_items[s], reference.slice_items[s]) << sr_slice_name(s);
    EXPECT_EQ(a.slice_users[s], reference.slice_users[s]) << sr_slice_name(s);
    if (s != SR_SLICE_COLD) {
      EXPECT_GT(reference.slice_users[s], 0) << sr_slice_name(s);
    }
    for (int i = 0; i < reference.n; i++)
      EXPECT_NEAR(sr_metrics_slice_mean(&a, s, i), sr_metrics_slice_mean(&reference, s, i), tolerance)
          << sr_slice_name(s) << " metric " << i;
  }
}

sr_dataset item_corpus(int64_t n_items) {
  sr_dataset d;
  sr_dataset_init(&d);
  d.n_items = n_items;
  return d;
}

sr_dataset synthetic_dataset(int64_t users, int64_t items, int64_t n_heldout, double mean_items_per_user,
                             bool with_item_features) {
  sr_synth_opts o;
  sr_synth_opts_default(&o);
  o.n_users = users;
  o.n_items = items;
  o.mean_items_per_user = mean_items_per_user;
  o.with_item_features = with_item_features;
  sr_csr full;
  sr_feature *features = nullptr;
  int n_features = 0;
  EXPECT_EQ(sr_synth_generate(&o, &full, &features, &n_features), 0) << sr_error_message();
  sr_split_opts so;
  sr_split_opts_default(&so);
  so.n_heldout_users = n_heldout;
  sr_dataset d;
  EXPECT_EQ(sr_split_strong(&full, features, n_features, &so, &d, nullptr), 0) << sr_error_message();
  for (int f = 0; f < n_features; f++) sr_csr_free(&features[f].values);
  free(features);
  sr_csr_free(&full);
  return d;
}

std::string movielens_ratings_dat() {
  std::string s;
  for (int u = 0; u < 200; u++)
    for (int k = 0; k < 2 + u % 30; k++) {
      int item = (u * 31 + k * 17) % 150;  // 17 and 150 are coprime: a user's items are distinct
      s += std::to_string(5000 + 3 * u) + "::" + std::to_string(10 * item) +
           "::" + std::to_string(1 + (u + item) % 5) + "::" + std::to_string(1000 + k) + "\n";
    }
  return s;
}

std::string movielens_movies_dat() {
  static const char *const genres[18] = {"Action",      "Adventure", "Animation", "Children's", "Comedy", "Crime",
                                         "Documentary", "Drama",     "Fantasy",   "Film-Noir",  "Horror", "Musical",
                                         "Mystery",     "Romance",   "Sci-Fi",    "Thriller",   "War",    "Western"};
  std::string s;
  for (int i = 0; i < 150; i++) {
    int first = i % 18, second = (i / 18 + 5 * i) % 18;
    s += std::to_string(10 * i) + "::Movie " + std::to_string(i) + ", The (" + std::to_string(1930 + (7 * i) % 70) +
         ")::" + genres[first] + (second != first ? std::string("|") + genres[second] : std::string()) + "\n";
  }
  return s;
}

std::string movielens_users_dat() {
  static const int ages[7] = {1, 18, 25, 35, 45, 50, 56};
  std::string s;
  for (int u = 0; u < 200; u++) {
    std::string zip = std::to_string(10000 + (u * 7919) % 90000) + (u % 10 == 0 ? "-4321" : "");
    s += std::to_string(5000 + 3 * u) + "::" + (u % 2 ? "M" : "F") + "::" + std::to_string(ages[u % 7]) +
         "::" + std::to_string(u % 21) + "::" + zip + "\n";
  }
  return s;
}

void flip_byte_in_first_chunk(const std::string &path, const char *dataset) {
  ASSERT_EQ(sr_h5zstd_register(), 0);
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, dataset, H5P_DEFAULT);
  hsize_t origin[2] = {0, 0}, size = 0;
  haddr_t addr = 0;
  unsigned mask = 0;
  ASSERT_GE(H5Dget_chunk_info_by_coord(ds, origin, &mask, &addr, &size), 0);
  H5Dclose(ds);
  H5Fclose(f);
  FILE *fp = std::fopen(path.c_str(), "r+b");
  ASSERT_NE(fp, nullptr);
  std::fseek(fp, (long)(addr + size / 2), SEEK_SET);
  int c = std::fgetc(fp);
  std::fseek(fp, (long)(addr + size / 2), SEEK_SET);
  std::fputc(c ^ 0xff, fp);
  std::fclose(fp);
}

}  // namespace srtest

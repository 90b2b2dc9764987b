// test_export.cpp — `shardrec export`: a tiny two-tower model trained through
// the binary, exported, and the file read back: shapes, ids in the dataset's
// numbering, unit-norm rows, item embeddings identical to the model's, user
// embeddings that reproduce its scores; --users selection; raw ids of an
// imported dataset; errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "test_util.h"

extern "C" {
#include "../src/cli/commands.h"
#include "shardrec/checkpoint.h"
#include "shardrec/config.h"
#include "shardrec/dataset.h"
#include "shardrec/error.h"
#include "shardrec/h5io.h"
#include "shardrec/model.h"
#include "shardrec/two_tower.h"
}

namespace {

std::string bin() { return SHARDREC_BINARY; }

// An export file read back whole.
struct Exported {
  int64_t d = 0, n_items = 0, n_users = 0;
  std::string model, score, dataset, created_by;
  std::vector<float> items, users;  // (n_items, d), (n_users, d)
  std::vector<int64_t> item_ids, user_ids;
  std::vector<uint8_t> split;
  std::string split_names;
  bool has_raw_ids = false;
  std::vector<std::string> item_raw, user_raw;  // string raw ids, when present
};

std::vector<int64_t> read_int64s(sr_h5file *f, const char *obj) {
  void *data = nullptr;
  int64_t n = 0;
  EXPECT_EQ(sr_h5_read_array(f, obj, SR_H5_INT64, -1, &data, &n), SR_OK) << sr_error_message();
  std::vector<int64_t> v((int64_t *)data, (int64_t *)data + n);
  free(data);
  return v;
}

std::vector<std::string> read_strings(sr_h5file *f, const char *obj) {
  char *data = nullptr;
  int64_t n = 0;
  int width = 0;
  EXPECT_EQ(sr_h5_read_strings(f, obj, &data, &n, &width), SR_OK) << sr_error_message();
  std::vector<std::string> v;
  for (int64_t i = 0; i < n; i++) v.push_back(std::string(data + i * width, strnlen(data + i * width, width)));
  free(data);
  return v;
}

std::string read_attr(sr_h5file *f, const char *obj, const char *name) {
  char buf[512];
  EXPECT_EQ(sr_h5_read_attr_string(f, obj, name, buf, sizeof buf), SR_OK) << sr_error_message();
  return buf;
}

std::vector<float> read_matrix(sr_h5file *f, const char *obj, int64_t rows, int64_t cols) {
  std::vector<float> v((size_t)(rows * cols) + 1);
  const int64_t shape[2] = {rows, cols};
  EXPECT_EQ(sr_h5_read_tensor(f, obj, v.data(), 2, shape), SR_OK) << sr_error_message();
  v.resize((size_t)(rows * cols));
  return v;
}

Exported read_export(const std::string &path) {
  Exported e;
  sr_h5file f;
  EXPECT_EQ(sr_h5_open(&f, path.c_str()), SR_OK) << sr_error_message();
  EXPECT_EQ(sr_h5_read_attr_int64(&f, "/", "d", &e.d), SR_OK) << sr_error_message();
  e.model = read_attr(&f, "/", "model");
  e.score = read_attr(&f, "/", "score");
  e.dataset = read_attr(&f, "/", "dataset");
  e.created_by = read_attr(&f, "/", "created_by");
  e.item_ids = read_int64s(&f, "/items/ids");
  e.user_ids = read_int64s(&f, "/users/ids");
  e.n_items = (int64_t)e.item_ids.size();
  e.n_users = (int64_t)e.user_ids.size();
  e.items = read_matrix(&f, "/items/embeddings", e.n_items, e.d);
  e.users = read_matrix(&f, "/users/embeddings", e.n_users, e.d);
  void *split = nullptr;
  EXPECT_EQ(sr_h5_read_array(&f, "/users/split", SR_H5_UINT8, e.n_users, &split, nullptr), SR_OK)
      << sr_error_message();
  e.split.assign((uint8_t *)split, (uint8_t *)split + e.n_users);
  free(split);
  e.split_names = read_attr(&f, "/users/split", "names");
  e.has_raw_ids = sr_h5_exists(&f, "/items/raw_ids") || sr_h5_exists(&f, "/users/raw_ids");
  if (e.has_raw_ids) {
    e.item_raw = read_strings(&f, "/items/raw_ids");
    e.user_raw = read_strings(&f, "/users/raw_ids");
  }
  sr_h5_close(&f);
  return e;
}

double dot(const float *a, const float *b, int64_t d) {
  double s = 0;
  for (int64_t k = 0; k < d; k++) s += (double)a[k] * b[k];
  return s;
}

// Two-tower runs trained once per test process (ctest runs each test in its
// own): a synthetic dataset with item features, its query tower reading the
// user id too (so exported ids must be the original numbering).
class ExportCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new srtest::TempDir();
    auto synth = srtest::run_command(bin() + " data synth -o " + data() + " --users 300 --items 80 --heldout 30");
    ASSERT_EQ(synth.exit_code, 0) << synth.output;
    srtest::write_file(tmp_->file("tt.yaml"), "run: {out_dir: " + tmp_->path() + ", name: tt, log_level: warn}\n" +
                                                  "data: {path: " + data() + "}\n" +
                                                  "model: {type: twotower, query_features: [history, user_id],\n"
                                                  "        feature_dim: 4, tower_hidden: [8], embedding_dim: 6}\n"
                                                  "train: {epochs: 1, batch_size: 64, max_steps: 4}\n");
    auto train = srtest::run_command(bin() + " train " + tmp_->file("tt.yaml"));
    ASSERT_EQ(train.exit_code, 0) << train.output;
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  static std::string data() { return tmp_->file("d.h5"); }
  static std::string model() { return tmp_->file("tt/model.h5"); }
  static srtest::TempDir *tmp_;
};
srtest::TempDir *ExportCli::tmp_ = nullptr;

// Default export (--users all), in batches of 7 users to cross batch edges.
TEST_F(ExportCli, ItemsAndAllUsersMatchTheModel) {
  const std::string out = tmp_->file("all.h5");
  auto run = srtest::run_command(bin() + " export " + model() + " -o " + out + " --batch 7");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  Exported e = read_export(out);
  srtest::Loaded l(model(), data());
  ASSERT_NE(l.model, nullptr);
  const sr_dataset &d = l.data;

  EXPECT_EQ(e.model, "twotower");
  EXPECT_EQ(e.score, "dot product of L2-normalised embeddings (cosine)");
  EXPECT_EQ(e.dataset, data());  // from the checkpoint's config
  EXPECT_EQ(e.created_by, std::string("shardrec ") + SHARDREC_VERSION);
  EXPECT_EQ(e.split_names, "train,valid,test");
  EXPECT_FALSE(e.has_raw_ids);  // synthetic data has no /ids
  ASSERT_EQ(e.d, 6);
  ASSERT_EQ(e.d, sr_two_tower_dim(l.model));
  ASSERT_EQ(e.n_items, d.n_items);
  for (int64_t i = 0; i < e.n_items; i++) ASSERT_EQ(e.item_ids[i], i);

  // Users: training rows, then valid and test rows, with their original ids.
  std::vector<int64_t> ids;
  std::vector<uint8_t> split;
  const int64_t *split_ids[3] = {d.train_user_ids, d.valid.user_ids, d.test.user_ids};
  const int64_t split_rows[3] = {d.train.n_rows, d.valid.n_users, d.test.n_users};
  for (int s = 0; s < 3; s++) {
    ids.insert(ids.end(), split_ids[s], split_ids[s] + split_rows[s]);
    split.insert(split.end(), (size_t)split_rows[s], (uint8_t)s);
  }
  ASSERT_EQ(e.n_users, 300);  // strong protocol: every user once
  EXPECT_EQ(e.user_ids, ids);
  EXPECT_EQ(e.split, split);

  for (int64_t r = 0; r < e.n_items; r++)
    EXPECT_NEAR(dot(&e.items[r * e.d], &e.items[r * e.d], e.d), 1.0, 1e-5) << "item " << r;
  for (int64_t r = 0; r < e.n_users; r++)
    EXPECT_NEAR(dot(&e.users[r * e.d], &e.users[r * e.d], e.d), 1.0, 1e-5) << "user row " << r;

  std::vector<float> items((size_t)(e.n_items * e.d));
  sr_two_tower_embed_items(l.model, items.data());
  EXPECT_EQ(e.items, items);  // the same computation: bit for bit

  // Each split scored whole in-process (other batches than the export's).
  l.model->ops->begin_eval(l.model);
  const sr_csr *histories[3] = {&d.train, &d.valid.foldin, &d.test.foldin};
  int64_t row = 0;
  for (int s = 0; s < 3; s++) {
    std::vector<float> scores((size_t)(histories[s]->n_rows * e.n_items));
    l.model->ops->score(l.model, histories[s], split_ids[s], scores.data());
    for (int64_t r = 0; r < histories[s]->n_rows; r++, row++)
      for (int64_t i = 0; i < e.n_items; i++)
        ASSERT_NEAR(dot(&e.users[row * e.d], &e.items[i * e.d], e.d), scores[(size_t)(r * e.n_items + i)], 1e-5)
            << "split " << s << " row " << r << " item " << i;
  }
}

// --users test with an explicit --data: exactly the test users, in split order.
TEST_F(ExportCli, TestUsersOnly) {
  const std::string all = tmp_->file("all2.h5"), test = tmp_->file("test.h5");
  ASSERT_EQ(srtest::run_command(bin() + " export " + model() + " -o " + all).exit_code, 0);
  auto run = srtest::run_command(bin() + " export " + model() + " --data " + data() + " --users test -o " + test);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  Exported a = read_export(all), t = read_export(test);
  sr_dataset d;
  sr_dataset_init(&d);
  ASSERT_EQ(sr_dataset_read(data().c_str(), &d), SR_OK) << sr_error_message();
  ASSERT_EQ(t.n_users, 30);
  EXPECT_EQ(t.user_ids, std::vector<int64_t>(d.test.user_ids, d.test.user_ids + d.test.n_users));
  EXPECT_EQ(t.split, std::vector<uint8_t>(30, 2));
  EXPECT_EQ(t.items, a.items);
  // The same rows as the test part (the last 30 rows) of the full export.
  const int64_t first = a.n_users - 30;
  for (int64_t r = 0; r < 30; r++) {
    EXPECT_EQ(a.user_ids[first + r], t.user_ids[r]);
    for (int64_t k = 0; k < t.d; k++)
      EXPECT_NEAR(a.users[(first + r) * a.d + k], t.users[r * t.d + k], 1e-6) << "row " << r;
  }
  sr_dataset_free(&d);
}

// `inspect` reads a two-tower checkpoint's tensors as stored: it needs no
// dataset (the model, which needs the features, is not rebuilt).
TEST_F(ExportCli, InspectNeedsNoDataset) {
  const std::string moved = data() + ".away";
  ASSERT_EQ(std::rename(data().c_str(), moved.c_str()), 0);
  auto run = srtest::run_command(bin() + " inspect " + model());
  ASSERT_EQ(std::rename(moved.c_str(), data().c_str()), 0);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("query.history.table"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("item.mlp.1.weight"), std::string::npos) << run.output;
}

TEST_F(ExportCli, Errors) {
  const std::string out = tmp_->file("bad.h5");
  // A Mult-VAE checkpoint, written in-process over the dataset's items.
  const std::string vae = tmp_->file("vae.h5");
  {
    sr_config cfg;
    sr_config_defaults(&cfg);
    cfg.model.type = SR_MODEL_MULTVAE;
    cfg.model.n_hidden = 1;
    cfg.model.hidden[0] = 8;
    cfg.model.latent_dim = 4;
    snprintf(cfg.data.path, sizeof cfg.data.path, "%s", data().c_str());
    sr_dataset corpus = srtest::item_corpus(80);
    sr_model *m = nullptr;
    ASSERT_EQ(sr_model_create(&cfg, &corpus, &m), SR_OK) << sr_error_message();
    ASSERT_EQ(sr_checkpoint_write(vae.c_str(), m, &cfg), SR_OK) << sr_error_message();
    sr_model_destroy(m);
  }
  auto multvae = srtest::run_command(bin() + " export " + vae + " -o " + out);
  EXPECT_EQ(multvae.exit_code, 1);
  EXPECT_NE(multvae.output.find("export needs a two-tower checkpoint (this one is multvae)"), std::string::npos)
      << multvae.output;

  auto no_ckpt = srtest::run_command(bin() + " export " + tmp_->file("nope.h5") + " -o " + out);
  EXPECT_EQ(no_ckpt.exit_code, 1);
  EXPECT_NE(no_ckpt.output.find("nope.h5"), std::string::npos) << no_ckpt.output;

  auto no_data =
      srtest::run_command(bin() + " export " + model() + " --data " + tmp_->file("gone.h5") + " -o " + out);
  EXPECT_EQ(no_data.exit_code, 1);
  EXPECT_NE(no_data.output.find("gone.h5"), std::string::npos) << no_data.output;
  EXPECT_NE(srtest::run_command("test -e " + out).exit_code, 0) << "no output file after a failure";

  auto no_output = srtest::run_command(bin() + " export " + model());
  EXPECT_EQ(no_output.exit_code, SR_CLI_EXIT_USAGE);
  EXPECT_NE(no_output.output.find("missing -o"), std::string::npos) << no_output.output;
  EXPECT_EQ(srtest::run_command(bin() + " export " + model() + " -o " + out + " --users some").exit_code,
            SR_CLI_EXIT_USAGE);
  EXPECT_EQ(srtest::run_command(bin() + " export " + model() + " -o " + out + " --batch 0").exit_code,
            SR_CLI_EXIT_USAGE);
}

// An imported dataset with string ids: the raw ids map every exported row back
// to the source log (each training user's items are items that user had).
TEST(ExportRawIds, MapBackToTheSource) {
  srtest::TempDir tmp;
  std::map<std::string, std::set<std::string>> log;  // raw user -> raw items
  std::string csv = "user,item\n";
  for (int u = 0; u < 40; u++)
    for (int k = 0; k < 6; k++) {
      // user u clicks items (3u + 5k) mod 25: 6 distinct items, every item used.
      std::string user = "usr-" + std::to_string(u), item = "song" + std::to_string((3 * u + 5 * k) % 25);
      log[user].insert(item);
      csv += user + "," + item + "\n";
    }
  srtest::write_file(tmp.file("log.csv"), csv);
  const std::string data = tmp.file("imp.h5"), out = tmp.file("emb.h5");
  auto import = srtest::run_command(bin() + " data import --format csv --header --columns user=user,item=item" +
                                    " --string-ids --heldout-users 5 -o " + data + " " + tmp.file("log.csv"));
  ASSERT_EQ(import.exit_code, 0) << import.output;
  srtest::write_file(tmp.file("c.yaml"), "run: {out_dir: " + tmp.path() + ", name: r, log_level: warn}\n" +
                                             "data: {path: " + data + "}\n" +
                                             "model: {type: twotower, item_features: [item_id], feature_dim: 4,\n"
                                             "        tower_hidden: [8], embedding_dim: 4}\n"
                                             "ssl: {enabled: false}\n"
                                             "train: {epochs: 1, batch_size: 32, max_steps: 2}\n");
  auto train = srtest::run_command(bin() + " train " + tmp.file("c.yaml"));
  ASSERT_EQ(train.exit_code, 0) << train.output;
  auto run = srtest::run_command(bin() + " export " + tmp.file("r/model.h5") + " -o " + out);
  ASSERT_EQ(run.exit_code, 0) << run.output;

  Exported e = read_export(out);
  ASSERT_TRUE(e.has_raw_ids);
  ASSERT_EQ(e.n_users, 40);
  ASSERT_EQ((int64_t)e.item_raw.size(), e.n_items);
  ASSERT_EQ((int64_t)e.user_raw.size(), e.n_users);
  std::set<std::string> users_seen;
  for (int64_t r = 0; r < e.n_users; r++) users_seen.insert(e.user_raw[r]);
  EXPECT_EQ(users_seen.size(), log.size());  // every source user exactly once
  sr_dataset d;
  sr_dataset_init(&d);
  ASSERT_EQ(sr_dataset_read(data.c_str(), &d), SR_OK) << sr_error_message();
  for (int64_t r = 0; r < d.train.n_rows; r++) {  // export rows [0, n_train) are the training rows
    const std::set<std::string> &had = log.at(e.user_raw[r]);
    for (int64_t k = d.train.indptr[r]; k < d.train.indptr[r + 1]; k++)
      EXPECT_TRUE(had.count(e.item_raw[d.train.indices[k]]))
          << e.user_raw[r] << " never had item " << e.item_raw[d.train.indices[k]];
  }
  sr_dataset_free(&d);
}

}  // namespace

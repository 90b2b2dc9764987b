// test_configs_twotower.cpp — the two-tower configs: they load and validate,
// and each trains (two steps, through the real binary) on data shaped like
// its own: configs/ml1m-twotower.yaml on an ML-1M-format fixture imported with
// the exact command of its header, configs/synth-twotower.yaml on a tiny
// `shardrec data synth` file. Every feature a config names must reach the
// saved model as an embedding table of the right vocabulary.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

extern "C" {
#include "shardrec/config.h"
#include "shardrec/error.h"
}

namespace {

const std::string kBinary = SHARDREC_BINARY;

std::string config_path(const std::string &name) { return std::string(SHARDREC_SOURCE_DIR) + "/configs/" + name; }

bool contains(const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; }

sr_config load(const std::string &name) {
  sr_config c;
  sr_config_defaults(&c);
  EXPECT_EQ(sr_config_load_file(&c, config_path(name).c_str()), SR_OK) << name << ": " << sr_error_message();
  EXPECT_EQ(sr_config_validate(&c), SR_OK) << name << ": " << sr_error_message();
  return c;
}

// The header line "#   <prefix>..." as a command (without "#   "), or "".
std::string header_command(const std::string &text, const std::string &prefix) {
  size_t at = text.find("#   " + prefix);
  if (at == std::string::npos) return "";
  size_t end = text.find('\n', at);
  return text.substr(at + 4, end - at - 4);
}

// Trains `config` for two steps on `data`, writing under dir/runs; returns the
// `shardrec inspect` listing of the saved model.
std::string train_two_steps(const std::string &config, const std::string &data, const std::string &dir) {
  const std::string run_dir = dir + "/runs/" + config.substr(0, config.find('.'));
  auto tr = srtest::run_command(kBinary + " train " + config_path(config) + " --set data.path=" + data +
                                " --set train.max_steps=2 --set run.out_dir=" + dir + "/runs");
  EXPECT_EQ(tr.exit_code, 0) << tr.output;
  EXPECT_TRUE(contains(tr.output, "trained 2 steps")) << tr.output;
  auto inspect = srtest::run_command(kBinary + " inspect " + run_dir + "/model.h5");
  EXPECT_EQ(inspect.exit_code, 0) << inspect.output;
  return inspect.output;
}

// The shape ("V x E") of embedding table NAME ("query.gender") in an inspect
// listing, whose rows read "NAME.table   V x E   l2 mean min max"; "" if absent.
std::string table_shape(const std::string &listing, const std::string &name) {
  size_t at = listing.find("\n" + name + ".table ");
  if (at == std::string::npos) return "";
  std::istringstream row(listing.substr(at + 1, listing.find('\n', at + 1) - at - 1));
  std::string table, rows, times, cols;
  row >> table >> rows >> times >> cols;
  return rows + " " + times + " " + cols;
}

std::vector<std::string> names(const char (*list)[SR_FEATURE_NAME_MAX], int n) {
  return std::vector<std::string>(list, list + n);
}

}  // namespace

TEST(TwoTowerConfigs, LoadValidateAndSayHowToMakeTheirData) {
  for (const char *name : {"ml1m-twotower.yaml", "synth-twotower.yaml"}) {
    sr_config c = load(name);
    std::string text = srtest::read_file(config_path(name));
    EXPECT_EQ(c.model.type, SR_MODEL_TWOTOWER) << name;
    EXPECT_STREQ(c.train.select_metric, "recall@50") << name;
    EXPECT_EQ(c.eval.n_metrics, 12) << name;  // recall, ndcg, mrr @ 10, 20, 50, 100
    EXPECT_EQ(c.train.lr, 5e-3) << name;
    EXPECT_FALSE(c.loss.logq_scaled) << name;
    EXPECT_FALSE(c.ssl.enabled) << name;  // measured no gain (docs/two_tower.md, issue 17)
    EXPECT_EQ(c.ssl.masking, SR_MASK_CFM) << name;
    EXPECT_EQ(c.eval.n_slices, 1) << name;
    EXPECT_TRUE(contains(text, "shardrec train configs/" + std::string(name))) << name;
  }
  std::string ml1m = srtest::read_file(config_path("ml1m-twotower.yaml"));
  EXPECT_TRUE(contains(header_command(ml1m, "shardrec data import -o data/ml-1m.h5 "), "--protocol weak")) << ml1m;
  std::string synth = srtest::read_file(config_path("synth-twotower.yaml"));
  EXPECT_NE(header_command(synth, "build/shardrec data synth -o data/synth.h5 "), "") << synth;
}

// The header's import command, run as written (paths relative to a directory
// holding ml-1m/), then two training steps: every configured feature is found.
TEST(TwoTowerConfigs, Ml1mImportsAndTrainsOnAnMl1mShapedFixture) {
  srtest::TempDir tmp;
  ASSERT_EQ(mkdir(tmp.file("ml-1m").c_str(), 0777), 0);
  ASSERT_EQ(mkdir(tmp.file("data").c_str(), 0777), 0);
  srtest::write_file(tmp.file("ml-1m/ratings.dat"), srtest::movielens_ratings_dat());
  srtest::write_file(tmp.file("ml-1m/movies.dat"), srtest::movielens_movies_dat());
  srtest::write_file(tmp.file("ml-1m/users.dat"), srtest::movielens_users_dat());
  sr_config c = load("ml1m-twotower.yaml");
  std::string command = header_command(srtest::read_file(config_path("ml1m-twotower.yaml")), "shardrec data import ");
  ASSERT_NE(command, "");
  auto imp = srtest::run_command("cd " + tmp.path() + " && " + kBinary + command.substr(strlen("shardrec")));
  ASSERT_EQ(imp.exit_code, 0) << command << "\n" << imp.output;
  EXPECT_TRUE(contains(imp.output, "protocol weak")) << imp.output;

  std::string listing = train_two_steps("ml1m-twotower.yaml", tmp.path() + "/" + c.data.path, tmp.path());
  EXPECT_EQ(names(c.model.query_features, c.model.n_query_features),
            (std::vector<std::string>{"history", "user_id", "gender", "age", "occupation", "zip3"}));
  EXPECT_EQ(names(c.model.item_features, c.model.n_item_features),
            (std::vector<std::string>{"item_id", "genres", "year_bucket"}));
  // Every feature has its table. Vocabularies of the fixture (test_util.h),
  // whose every value survives the import's filters (130 users and all 150
  // movies kept): F/M, ML-1M's 7 age codes (u % 7), 21 occupations (u % 21),
  // 18 genres (i % 18), release years 1930 + (7 i mod 70) in 7 decades (zip3
  // is not counted by hand); history and item_id both over the items.
  const std::string E = " x " + std::to_string(c.model.feature_dim);
  for (int i = 0; i < c.model.n_query_features; i++)
    EXPECT_NE(table_shape(listing, std::string("query.") + c.model.query_features[i]), "")
        << c.model.query_features[i] << "\n"
        << listing;
  for (int i = 0; i < c.model.n_item_features; i++)
    EXPECT_NE(table_shape(listing, std::string("item.") + c.model.item_features[i]), "")
        << c.model.item_features[i] << "\n"
        << listing;
  EXPECT_EQ(table_shape(listing, "query.gender"), "2" + E);
  EXPECT_EQ(table_shape(listing, "query.age"), "7" + E);
  EXPECT_EQ(table_shape(listing, "query.occupation"), "21" + E);
  EXPECT_EQ(table_shape(listing, "item.genres"), "18" + E);
  EXPECT_EQ(table_shape(listing, "item.year_bucket"), "7" + E);
  EXPECT_EQ(table_shape(listing, "item.item_id"), table_shape(listing, "query.history"));
}

TEST(TwoTowerConfigs, SynthTrainsOnATinySyntheticFile) {
  srtest::TempDir tmp;
  const std::string data = tmp.file("synth.h5");
  auto gen = srtest::run_command(kBinary + " data synth -o " + data + " --users 300 --items 100 --heldout 30");
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  std::string listing = train_two_steps("synth-twotower.yaml", data, tmp.path());
  // item_features [item_id, all]: item_id and every generator feature.
  for (const char *table : {"query.history", "item.item_id", "item.cluster", "item.tags", "item.pop_bucket"})
    EXPECT_NE(table_shape(listing, table), "") << table << "\n" << listing;
}

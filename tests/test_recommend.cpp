// test_recommend.cpp — `shardrec recommend` against a brute-force ranking of
// every item by the model's own scores (recommend.h), for each model type.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "test_util.h"

extern "C" {
#include "shardrec/checkpoint.h"
#include "shardrec/error.h"
#include "shardrec/model.h"
#include "shardrec/recommend.h"
}

namespace {

std::string bin() { return SHARDREC_BINARY; }

bool contains(const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; }

// One line of the TSV: user, rank, item, score.
struct Rec {
  std::string user, item;
  int rank;
  double score;
};

std::vector<Rec> read_tsv(const std::string &path) {
  std::istringstream in(srtest::read_file(path));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "user\trank\titem\tscore");
  std::vector<Rec> recs;
  while (std::getline(in, line)) {
    Rec r;
    std::istringstream f(line);
    std::string rank, score;
    std::getline(f, r.user, '\t');
    std::getline(f, rank, '\t');
    std::getline(f, r.item, '\t');
    std::getline(f, score, '\t');
    r.rank = std::stoi(rank);
    r.score = std::stod(score);
    recs.push_back(r);
  }
  return recs;
}

// Every user's known items, gathered from the splits independently of
// sr_recommend_select: training row, fold-in and held-out rows.
std::map<int64_t, std::set<int32_t>> known_items(const sr_dataset &d) {
  std::map<int64_t, std::set<int32_t>> known;
  auto add = [&](const sr_csr &m, const int64_t *ids) {
    for (int64_t r = 0; r < m.n_rows; r++)
      for (int64_t k = m.indptr[r]; k < m.indptr[r + 1]; k++) known[ids[r]].insert(m.indices[k]);
  };
  add(d.train, d.train_user_ids);
  add(d.valid.foldin, d.valid.user_ids);
  add(d.valid.heldout, d.valid.user_ids);
  add(d.test.foldin, d.test.user_ids);
  add(d.test.heldout, d.test.user_ids);
  return known;
}

// The k best items outside `known`, scores[] the model's scores of every
// item: a full sort, best first, ties to the lower item.
std::vector<int32_t> brute_force(const std::vector<float> &scores, const std::set<int32_t> &known, int k) {
  std::vector<int32_t> items;
  for (int32_t i = 0; i < (int32_t)scores.size(); i++)
    if (!known.count(i)) items.push_back(i);
  std::sort(items.begin(), items.end(),
            [&](int32_t a, int32_t b) { return scores[a] != scores[b] ? scores[a] > scores[b] : a < b; });
  if ((int)items.size() > k) items.resize(k);
  return items;
}

class RecommendCli : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new srtest::TempDir();
    auto synth = srtest::run_command(bin() + " data synth -o " + data() + " --users 300 --items 80 --heldout 30");
    ASSERT_EQ(synth.exit_code, 0) << synth.output;
    srtest::train_every_model_type(bin(), *tmp_, data(),
                                   "hidden: [12], latent_dim: 4, query_features: [history, user_id],"
                                   " feature_dim: 4, tower_hidden: [8], embedding_dim: 6",
                                   "epochs: 1, batch_size: 64, max_steps: 4");
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  static std::string data() { return tmp_->file("d.h5"); }
  static std::string model(const std::string &type) { return tmp_->file(type + "/model.h5"); }
  static srtest::TempDir *tmp_;
};
srtest::TempDir *RecommendCli::tmp_ = nullptr;

// --users all (default): every user, scored from all their known items, the
// top 10 of the others; batches of 7 users cross batch edges.
TEST_P(RecommendCli, AllUsersMatchABruteForceRanking) {
  const std::string out = tmp_->file(GetParam() + "-all.tsv");
  auto run = srtest::run_command(bin() + " recommend " + model(GetParam()) + " -k 10 --batch 7 -o " + out);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::vector<Rec> recs = read_tsv(out);

  srtest::Loaded l(model(GetParam()), data());
  ASSERT_NE(l.model, nullptr);
  sr_model *m = l.model;
  const sr_dataset &d = l.data;
  if (m->ops->begin_eval) m->ops->begin_eval(m);
  auto known = known_items(d);
  ASSERT_EQ((int64_t)known.size(), d.n_users);  // strong protocol: every user in one split

  size_t at = 0;
  int64_t users_with_recs = 0;
  for (const auto &[user, items] : known) {  // the TSV lists users in increasing order
    sr_csr row = srtest::csr_from_rows({std::vector<int32_t>(items.begin(), items.end())}, d.n_items);
    std::vector<float> scores((size_t)d.n_items);
    m->ops->score(m, &row, &user, scores.data());
    sr_csr_free(&row);
    std::vector<int32_t> expected = brute_force(scores, items, 10);
    for (size_t i = 0; i < expected.size(); i++, at++) {
      ASSERT_LT(at, recs.size());
      ASSERT_EQ(recs[at].user, std::to_string(user));
      EXPECT_EQ(recs[at].rank, (int)i + 1);
      EXPECT_EQ(recs[at].item, std::to_string(expected[i])) << "user " << user << " rank " << i + 1;
      EXPECT_NEAR(recs[at].score, scores[expected[i]], 1e-6 * (1 + std::fabs(scores[expected[i]])));
    }
    users_with_recs += !expected.empty();
  }
  EXPECT_EQ(at, recs.size());
  EXPECT_GT(users_with_recs, 0);
}

// --users test: the test fold-in rows, as evaluation feeds them; the same
// lists in HDF5 (/recs/items, /recs/scores) as in the TSV.
TEST_P(RecommendCli, TestUsersFromTheirFoldInRows) {
  const std::string tsv = tmp_->file(GetParam() + "-test.tsv"), h5 = tmp_->file(GetParam() + "-test.h5");
  ASSERT_EQ(srtest::run_command(bin() + " recommend " + model(GetParam()) + " --users test -k 5 -o " + tsv).exit_code,
            0);
  auto run = srtest::run_command(bin() + " recommend " + model(GetParam()) + " --users test -k 5 -o " + h5);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::vector<Rec> recs = read_tsv(tsv);

  srtest::Loaded l(model(GetParam()), data());
  ASSERT_NE(l.model, nullptr);
  sr_model *m = l.model;
  const sr_dataset &d = l.data;
  if (m->ops->begin_eval) m->ops->begin_eval(m);
  std::vector<float> scores((size_t)(d.test.n_users * d.n_items));
  m->ops->score(m, &d.test.foldin, d.test.user_ids, scores.data());

  sr_h5file f;
  ASSERT_EQ(sr_h5_open(&f, h5.c_str()), SR_OK) << sr_error_message();
  void *ids, *items, *h5_scores;
  int64_t n;
  ASSERT_EQ(sr_h5_read_array(&f, "/users/ids", SR_H5_INT64, -1, &ids, &n), SR_OK) << sr_error_message();
  ASSERT_EQ(n, d.test.n_users);
  int ndim;
  int64_t shape[2];
  ASSERT_EQ(sr_h5_shape(&f, "/recs/items", &ndim, shape, 2), SR_OK);
  ASSERT_EQ(shape[0], n);
  ASSERT_EQ(shape[1], 5);
  std::vector<float> h5s((size_t)(n * 5));
  ASSERT_EQ(sr_h5_read_tensor(&f, "/recs/scores", h5s.data(), 2, shape), SR_OK) << sr_error_message();
  (void)items, (void)h5_scores;
  sr_h5_close(&f);

  size_t at = 0;
  for (int64_t r = 0; r < d.test.n_users; r++) {
    EXPECT_EQ(((int64_t *)ids)[r], d.test.user_ids[r]);
    std::set<int32_t> seen(d.test.foldin.indices + d.test.foldin.indptr[r],
                           d.test.foldin.indices + d.test.foldin.indptr[r + 1]);
    std::vector<float> row(scores.begin() + r * d.n_items, scores.begin() + (r + 1) * d.n_items);
    std::vector<int32_t> expected = brute_force(row, seen, 5);
    for (size_t i = 0; i < expected.size(); i++, at++) {
      ASSERT_LT(at, recs.size());
      EXPECT_EQ(recs[at].user, std::to_string(d.test.user_ids[r]));
      EXPECT_EQ(recs[at].item, std::to_string(expected[i]));
      EXPECT_FLOAT_EQ(h5s[(size_t)(r * 5 + (int64_t)i)], row[expected[i]]);
    }
  }
  EXPECT_EQ(at, recs.size());
  free(ids);
}

INSTANTIATE_TEST_SUITE_P(EveryModel, RecommendCli, ::testing::Values("multvae", "multdae", "twotower"));

// A users file of raw ids (an imported dataset): those users, in file order,
// with raw item ids; a user the dataset lacks is named with file and line.
TEST(RecommendUsersFile, RawIdsInFileOrder) {
  srtest::TempDir tmp;
  std::string csv = "user,item\n";
  for (int u = 0; u < 40; u++)
    for (int k = 0; k < 6; k++)
      csv += "usr-" + std::to_string(u) + ",song" + std::to_string((3 * u + 5 * k) % 25) + "\n";
  srtest::write_file(tmp.file("log.csv"), csv);
  const std::string data = tmp.file("imp.h5");
  auto import = srtest::run_command(bin() + " data import --format csv --header --columns user=user,item=item" +
                                    " --string-ids --heldout-users 5 -o " + data + " " + tmp.file("log.csv"));
  ASSERT_EQ(import.exit_code, 0) << import.output;
  srtest::write_file(tmp.file("c.yaml"), "run: {out_dir: " + tmp.path() + ", name: r, log_level: warn}\n" +
                                             "data: {path: " + data + "}\n" +
                                             "model: {hidden: [8], latent_dim: 4}\n"
                                             "train: {epochs: 1, batch_size: 16, max_steps: 2}\n");
  ASSERT_EQ(srtest::run_command(bin() + " train " + tmp.file("c.yaml")).exit_code, 0);
  srtest::write_file(tmp.file("users.txt"), "usr-7\n\nusr-3\n");
  const std::string out = tmp.file("r.tsv");
  auto run = srtest::run_command(bin() + " recommend " + tmp.file("r/model.h5") + " --users " +
                                 tmp.file("users.txt") + " -k 3 -o " + out);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::vector<Rec> recs = read_tsv(out);
  ASSERT_EQ(recs.size(), 6u);
  EXPECT_EQ(recs[0].user, "usr-7");
  EXPECT_EQ(recs[3].user, "usr-3");
  std::set<std::string> had3;
  for (int k = 0; k < 6; k++) had3.insert("song" + std::to_string((3 * 3 + 5 * k) % 25));
  for (int i = 3; i < 6; i++) {
    EXPECT_EQ(recs[i].item.rfind("song", 0), 0u) << recs[i].item;
    EXPECT_FALSE(had3.count(recs[i].item)) << "usr-3 already has " << recs[i].item;
  }

  srtest::write_file(tmp.file("bad.txt"), "usr-1\nnobody\n");
  auto bad = srtest::run_command(bin() + " recommend " + tmp.file("r/model.h5") + " --users " + tmp.file("bad.txt") +
                                 " -o " + out);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(contains(bad.output, tmp.file("bad.txt") + ":2: no user 'nobody' in " + data + " (/ids/users)"))
      << bad.output;
  auto ext = srtest::run_command(bin() + " recommend " + tmp.file("r/model.h5") + " -o " + tmp.file("r.csv"));
  EXPECT_EQ(ext.exit_code, 2);
  EXPECT_TRUE(contains(ext.output, "must end in .tsv or .h5")) << ext.output;
  // The default -k 100 over 25 items: every item a user lacks, best first.
  auto every = srtest::run_command(bin() + " recommend " + tmp.file("r/model.h5") + " --users " +
                                   tmp.file("users.txt") + " -o " + out);
  ASSERT_EQ(every.exit_code, 0) << every.output;
  EXPECT_EQ(read_tsv(out).size(), 2 * (25 - had3.size()));  // every user has as many items (5)
}

}  // namespace

// test_ease.cpp — EASE (ease.h) on one process: B against a dense
// computation written out here (X^T X from the rows, Gauss-Jordan inverse
// in long double, B = I - P diag(1/diag(P))), scores = x B through the
// evaluation path, the checkpoint round trip, and the memory refusal.
// P ranks against 1: tests/mpi/test_data_parallel.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "test_util.h"

extern "C" {
#include "shardrec/checkpoint.h"
#include "shardrec/config.h"
#include "shardrec/dist.h"
#include "shardrec/error.h"
#include "shardrec/evaluate.h"
#include "shardrec/log.h"
#include "shardrec/synth.h"
#include "shardrec/sysmem.h"
#include "shardrec/train.h"
}

namespace {

const sr_dataset &dataset() {
  static sr_dataset d = srtest::synthetic_dataset(300, 40, 50, 8);
  return d;
}

sr_config ease_config(double lambda) {
  sr_config cfg;
  sr_config_defaults(&cfg);
  snprintf(cfg.data.path, sizeof cfg.data.path, "in-memory");
  cfg.model.type = SR_MODEL_EASE;
  cfg.model.ease_lambda = lambda;
  cfg.train.eval_batch_size = 17;
  return cfg;
}

sr_model *fit(const sr_config &cfg, sr_train_result *res, int *rc = nullptr, const sr_dataset &d = dataset()) {
  sr_log_set_level(SR_LOG_ERROR);
  static sr_dist self;  // the model keeps a pointer to the ranks it was built over
  sr_dist_self(&self);
  sr_model *m = nullptr;
  int code = sr_train(&cfg, &self, &d, nullptr, &m, res);
  if (rc)
    *rc = code;
  else
    EXPECT_EQ(code, 0) << sr_error_message();
  return m;
}

// B by the definition, densely: G = X^T X + lambda I from the binary rows,
// P = G^-1 by Gauss-Jordan elimination with partial pivoting.
std::vector<double> dense_ease(const sr_csr &x, int64_t I, double lambda) {
  std::vector<long double> G((size_t)(I * I), 0.0L), P((size_t)(I * I), 0.0L);
  for (int64_t r = 0; r < x.n_rows; r++)
    for (int64_t a = x.indptr[r]; a < x.indptr[r + 1]; a++)
      for (int64_t b = x.indptr[r]; b < x.indptr[r + 1]; b++) G[(size_t)(x.indices[a] * I + x.indices[b])] += 1;
  for (int64_t i = 0; i < I; i++) {
    G[(size_t)(i * I + i)] += lambda;
    P[(size_t)(i * I + i)] = 1;
  }
  for (int64_t c = 0; c < I; c++) {
    int64_t pivot = c;
    for (int64_t r = c + 1; r < I; r++)
      if (std::fabs(G[(size_t)(r * I + c)]) > std::fabs(G[(size_t)(pivot * I + c)])) pivot = r;
    for (int64_t k = 0; k < I; k++) {
      std::swap(G[(size_t)(c * I + k)], G[(size_t)(pivot * I + k)]);
      std::swap(P[(size_t)(c * I + k)], P[(size_t)(pivot * I + k)]);
    }
    const long double d = G[(size_t)(c * I + c)];
    for (int64_t k = 0; k < I; k++) {
      G[(size_t)(c * I + k)] /= d;
      P[(size_t)(c * I + k)] /= d;
    }
    for (int64_t r = 0; r < I; r++) {
      if (r == c) continue;
      const long double f = G[(size_t)(r * I + c)];
      for (int64_t k = 0; k < I; k++) {
        G[(size_t)(r * I + k)] -= f * G[(size_t)(c * I + k)];
        P[(size_t)(r * I + k)] -= f * P[(size_t)(c * I + k)];
      }
    }
  }
  std::vector<double> B((size_t)(I * I));
  for (int64_t i = 0; i < I; i++)
    for (int64_t j = 0; j < I; j++)
      B[(size_t)(i * I + j)] = i == j ? 0.0 : (double)(-P[(size_t)(i * I + j)] / P[(size_t)(j * I + j)]);
  return B;
}

double max_abs_diff(const float *a, const std::vector<double> &b) {
  double worst = 0;
  for (size_t i = 0; i < b.size(); i++) worst = std::max(worst, std::fabs((double)a[i] - b[i]));
  return worst;
}

}  // namespace

TEST(Ease, WeightsMatchADenseComputationByDefinition) {
  const sr_dataset &d = dataset();
  for (double lambda : {1.0, 50.0}) {
    sr_train_result res;
    sr_model *m = fit(ease_config(lambda), &res);
    ASSERT_TRUE(m);
    ASSERT_EQ(m->params.count, 1);
    EXPECT_STREQ(m->params.items[0].name, "ease.B");
    const std::vector<double> B = dense_ease(d.train, d.n_items, lambda);
    double largest = 0;
    for (double v : B) largest = std::max(largest, std::fabs(v));
    EXPECT_GT(largest, 1e-3);  // a non-trivial B
    EXPECT_LT(max_abs_diff(m->params.items[0].value, B), 1e-6 * (1 + largest)) << "lambda " << lambda;
    for (int64_t i = 0; i < d.n_items; i++) EXPECT_EQ(m->params.items[0].value[i * d.n_items + i], 0.0f);
    EXPECT_EQ(res.stop_reason, std::string("fitted"));
    EXPECT_EQ(res.steps, 0);
    EXPECT_EQ(res.best_epoch, 1);
    sr_model_destroy(m);
  }
}

// Evaluation goes through the common path with scores = fold-in row x B:
// on test users the metrics equal those of the same scores computed here,
// and EASE beats the popularity baseline on data with planted structure.
TEST(Ease, ScoresAreFoldInTimesBThroughTheEvaluationPath) {
  const sr_dataset &d = dataset();
  sr_train_result res;
  sr_model *m = fit(ease_config(10.0), &res);
  ASSERT_TRUE(m);
  const int64_t I = d.n_items;
  const sr_csr &in = d.test.foldin;
  std::vector<float> scores((size_t)(in.n_rows * I));
  m->ops->score(m, &in, d.test.user_ids, scores.data());
  for (int64_t r = 0; r < in.n_rows; r++)
    for (int64_t j = 0; j < I; j++) {
      double expected = 0;
      for (int64_t k = in.indptr[r]; k < in.indptr[r + 1]; k++)
        expected += m->params.items[0].value[in.indices[k] * I + j];
      ASSERT_NEAR(scores[(size_t)(r * I + j)], expected, 1e-5 * (1 + std::fabs(expected))) << r << "," << j;
    }
  sr_metrics again = res.test;
  sr_metrics_reset(&again);
  sr_evaluate_rows(m, &d.test, 0, d.test.n_users, 1000, &again);  // other batches, the same metrics
  for (int i = 0; i < res.test.n; i++) EXPECT_NEAR(sr_metrics_mean(&again, i), sr_metrics_mean(&res.test, i), 1e-12);
  const int ndcg = sr_metrics_find(&res.test, "ndcg@100");
  EXPECT_GT(sr_metrics_mean(&res.test, ndcg), sr_metrics_mean(&res.test_popularity, ndcg));
  sr_model_destroy(m);
}

// The weak protocol (the same users in training and evaluation): B is fitted
// on every user's training row, a test row's fold-in is its training and
// validation items, and Recall@20 computed here from x B (fold-in items
// excluded, hits / min(20, |held-out|)) is what the evaluation path reports.
TEST(Ease, WeakProtocolFitsEveryTrainingRowAndRanksTheFoldInTimesB) {
  sr_synth_opts o;
  sr_synth_opts_default(&o);
  o.n_users = 300;
  o.n_items = 40;
  o.mean_items_per_user = 10;
  o.with_item_features = 0;
  sr_csr full;
  sr_feature *no_features = nullptr;
  int n_features = 0;
  ASSERT_EQ(sr_synth_generate(&o, &full, &no_features, &n_features), 0) << sr_error_message();
  sr_split_opts so;
  sr_split_opts_default(&so);
  sr_dataset d;
  ASSERT_EQ(sr_split_weak(&full, SR_HOLDOUT_RANDOM, nullptr, nullptr, 0, &so, &d, nullptr), 0) << sr_error_message();
  sr_csr_free(&full);
  free(no_features);
  ASSERT_EQ(d.protocol, SR_PROTOCOL_WEAK);
  ASSERT_GT(d.test.n_users, 100);

  sr_train_result res;
  sr_model *m = fit(ease_config(10.0), &res, nullptr, d);
  ASSERT_TRUE(m);
  const int64_t I = d.n_items;
  const std::vector<double> B = dense_ease(d.train, I, 10.0);
  EXPECT_LT(max_abs_diff(m->params.items[0].value, B), 1e-6);

  const sr_csr &in = d.test.foldin;
  const sr_csr &out = d.test.heldout;
  double recall_sum = 0;
  for (int64_t r = 0; r < in.n_rows; r++) {
    std::vector<double> s((size_t)I, 0.0);
    std::vector<bool> seen((size_t)I, false);
    for (int64_t k = in.indptr[r]; k < in.indptr[r + 1]; k++) {
      seen[(size_t)in.indices[k]] = true;
      for (int64_t j = 0; j < I; j++) s[(size_t)j] += B[(size_t)(in.indices[k] * I + j)];
    }
    std::vector<int64_t> order;
    for (int64_t j = 0; j < I; j++)
      if (!seen[(size_t)j]) order.push_back(j);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return s[(size_t)a] > s[(size_t)b]; });
    const int64_t n_out = out.indptr[r + 1] - out.indptr[r];
    int hits = 0;
    for (size_t rank = 0; rank < 20 && rank < order.size(); rank++)
      for (int64_t k = out.indptr[r]; k < out.indptr[r + 1]; k++) hits += out.indices[k] == order[rank];
    recall_sum += (double)hits / (double)std::min<int64_t>(20, n_out);
  }
  const int recall = sr_metrics_find(&res.test, "recall@20");
  ASSERT_GE(recall, 0);
  EXPECT_NEAR(sr_metrics_mean(&res.test, recall), recall_sum / (double)in.n_rows, 1e-6);
  EXPECT_GT(sr_metrics_mean(&res.test, recall), sr_metrics_mean(&res.test_popularity, recall));
  sr_model_destroy(m);
  sr_dataset_free(&d);
}

TEST(Ease, CheckpointRoundTrip) {
  srtest::TempDir tmp;
  sr_train_result res;
  const sr_config cfg = ease_config(10.0);
  sr_model *m = fit(cfg, &res);
  ASSERT_TRUE(m);
  const std::string path = tmp.file("ease.h5");
  ASSERT_EQ(sr_checkpoint_write(path.c_str(), m, &cfg), 0) << sr_error_message();
  sr_config stored;
  sr_model *back = nullptr;
  ASSERT_EQ(sr_checkpoint_read(path.c_str(), nullptr, &stored, &back), 0) << sr_error_message();
  EXPECT_EQ(stored.model.type, SR_MODEL_EASE);
  EXPECT_EQ(stored.model.ease_lambda, 10.0);
  ASSERT_EQ(back->params.total, m->params.total);
  EXPECT_EQ(memcmp(back->params.values, m->params.values, (size_t)m->params.total * sizeof(float)), 0);
  sr_model_destroy(back);
  sr_model_destroy(m);
}

// A node that cannot hold B and the Gram matrix: refused before the fit,
// with the memory needed.
TEST(Ease, RefusesWhatTheNodeCannotHoldNamingTheMemory) {
  setenv(SR_SYSMEM_ENV, "2k", 1);
  sr_train_result res;
  int rc = 0;
  sr_model *m = fit(ease_config(10.0), &res, &rc);
  unsetenv(SR_SYSMEM_ENV);
  EXPECT_EQ(m, nullptr);
  EXPECT_EQ(rc, SR_ENOMEM);
  const std::string why = sr_error_message();
  EXPECT_NE(why.find("model.type ease over 40 items needs"), std::string::npos) << why;
  EXPECT_NE(why.find("40 x 40 matrix B"), std::string::npos) << why;
}

TEST(Ease, ConfigChecks) {
  sr_config cfg = ease_config(10.0);
  EXPECT_EQ(sr_config_validate(&cfg), SR_OK) << sr_error_message();
  cfg.dist.item_parallel = 2;
  EXPECT_EQ(sr_config_validate(&cfg), SR_ECONFIG);
  EXPECT_EQ(sr_config_set(&cfg, "model.ease_lambda=0"), SR_ECONFIG);
  sr_config resume = ease_config(10.0);
  snprintf(resume.checkpoint.resume, sizeof resume.checkpoint.resume, "auto");
  sr_train_result res;
  int rc = 0;
  EXPECT_EQ(fit(resume, &res, &rc), nullptr);
  EXPECT_EQ(rc, SR_ECONFIG);
}

// The paper configs (next to the Mult-VAE ones): the published lambda, the
// import command of the same split, the published figures.
TEST(Ease, PaperConfigsLoadWithThePublishedLambda) {
  const struct {
    const char *name;
    double lambda;
    const char *figures;
  } configs[] = {{"ml20m-ease", 500, "Recall@20 0.391   Recall@50 0.521   NDCG@100 0.420"},
                 {"netflix-ease", 1000, "Recall@20 0.362   Recall@50 0.445   NDCG@100 0.393"},
                 {"msd-ease", 200, "Recall@20 0.333   Recall@50 0.428   NDCG@100 0.389"}};
  for (const auto &c : configs) {
    const std::string path = std::string(SHARDREC_SOURCE_DIR) + "/configs/" + c.name + ".yaml";
    sr_config cfg;
    sr_config_defaults(&cfg);
    ASSERT_EQ(sr_config_load_file(&cfg, path.c_str()), SR_OK) << sr_error_message();
    EXPECT_EQ(sr_config_validate(&cfg), SR_OK) << c.name << ": " << sr_error_message();
    EXPECT_EQ(cfg.model.type, SR_MODEL_EASE) << c.name;
    EXPECT_EQ(cfg.model.ease_lambda, c.lambda) << c.name;
    const std::string text = srtest::read_file(path);
    EXPECT_NE(text.find("#   shardrec data import -o " + std::string(cfg.data.path) + " --heldout-users "),
              std::string::npos)
        << c.name;
    EXPECT_NE(text.find(c.figures), std::string::npos) << c.name;
  }
}

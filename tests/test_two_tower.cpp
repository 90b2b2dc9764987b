// test_two_tower.cpp — the two-tower model: every parameter's gradient
// (dense weights, default embeddings, touched table rows) against central
// differences of the whole loss (both towers, logQ, SSL views with masking
// and value dropout), for each main loss; feature configuration errors;
// evaluation scores; training on synthetic data beats popularity.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "test_util.h"

extern "C" {
#include "shardrec/config.h"
#include "shardrec/dist.h"
#include "shardrec/error.h"
#include "shardrec/log.h"
#include "shardrec/model.h"
#include "shardrec/train.h"
#include "shardrec/two_tower.h"
}

namespace {

const sr_dataset &dataset() {
  static sr_dataset d = srtest::synthetic_dataset(80, 40, 10, 6, true);
  return d;
}

sr_config small_config() {
  sr_config cfg;
  sr_config_defaults(&cfg);
  cfg.model.type = SR_MODEL_TWOTOWER;
  cfg.model.feature_dim = 3;
  cfg.model.n_tower_hidden = 1;
  cfg.model.tower_hidden[0] = 5;
  cfg.model.embedding_dim = 4;
  cfg.train.batch_size = 8;
  cfg.ssl.batch_size = 6;
  cfg.ssl.weight = 0.5;         // large enough for the SSL term to show in the check
  cfg.ssl.value_dropout = 0.3;  // some tags dropped in the views
  cfg.loss.temperature = 0.5;   // moderate curvature for finite differences
  cfg.run.seed = 17;
  cfg.model.history_dropout = 0;  // on by default; the regularisers have their own checks
  return cfg;
}

// The first B pairs of the training CSR (in entry order) as a batch.
struct PairBatch {
  std::vector<int64_t> rows, users, ids, positions;
  std::vector<int32_t> targets;
  sr_csr x{};
  sr_batch b{};
  sr_dist self{};
  PairBatch(const sr_dataset &d, int64_t B, uint64_t step) {
    for (int64_t r = 0; r < d.train.n_rows && (int64_t)targets.size() < B; r++)
      for (int64_t e = d.train.indptr[r]; e < d.train.indptr[r + 1] && (int64_t)targets.size() < B; e++) {
        rows.push_back(r);
        users.push_back(d.train_user_ids[r]);
        targets.push_back(d.train.indices[e]);
        ids.push_back(e);
        positions.push_back((int64_t)positions.size());
      }
    sr_csr_gather_rows(&d.train, rows.data(), (int64_t)rows.size(), &x);
    sr_dist_self(&self);
    b.rows = &x;
    b.targets = targets.data();
    b.user_ids = users.data();
    b.sample_ids = ids.data();
    b.positions = positions.data();
    b.global_batch = (int64_t)targets.size();
    b.step = step;
    b.dist = &self;
  }
  ~PairBatch() { sr_csr_free(&x); }
};

// Loss of one step; the whole analytic gradient (dense parameters and
// tables, laid out like the value arena) into *grads when non-NULL.
double loss_and_grad(sr_model *m, const sr_batch &b, std::vector<float> *grads = nullptr) {
  sr_params_zero_grad(&m->params);
  sr_step_stats st{};
  EXPECT_EQ(m->ops->forward_backward(m, &b, &st), SR_OK) << sr_error_message();
  std::vector<float> all((size_t)m->params.total);
  sr_two_tower_gradient(m, all.data());  // also empties the table lists for the next call
  if (grads) *grads = all;
  return st.loss;
}

void check_full_gradient(sr_config cfg) {
  sr_model *m = nullptr;
  ASSERT_EQ(sr_model_create(&cfg, &dataset(), &m), SR_OK) << sr_error_message();
  PairBatch pb(dataset(), 8, 4);
  // Earlier steps shape the logQ estimate (a step's batch is seen once, so
  // the repeated evaluations below all see the same estimate).
  for (uint64_t s = 0; s < 4; s++) {
    PairBatch early(dataset(), 8, s);
    loss_and_grad(m, early.b);
  }
  sr_params *ps = &m->params;
  std::vector<float> analytic;
  loss_and_grad(m, pb.b, &analytic);
  const float h = 1e-3f;
  int checked = 0, nonzero = 0;
  for (int p = 0; p < ps->count; p++) {
    sr_param *prm = &ps->items[p];
    for (int64_t j = 0; j < prm->numel; j++) {
      double an = analytic[prm->offset + j];
      // Table rows the batch does not touch have no gradient; sample a few.
      if (an == 0.0 && prm->kind == SR_PARAM_EMBEDDING && prm->ndim == 2 && j % 7 != 0) continue;
      float saved = prm->value[j];
      prm->value[j] = saved + h;
      double up = loss_and_grad(m, pb.b);
      prm->value[j] = saved - h;
      double down = loss_and_grad(m, pb.b);
      prm->value[j] = saved;
      double fd = (up - down) / (2.0 * h);
      double err = std::fabs(fd - an) / std::max(2e-2, std::fabs(fd) + std::fabs(an));
      EXPECT_LT(err, 3e-2) << prm->name << "[" << j << "] fd " << fd << " analytic " << an;
      checked++;
      nonzero += an != 0.0;
    }
  }
  EXPECT_GT(checked, 300);
  EXPECT_GT(nonzero, 200);
  sr_model_destroy(m);
}

}  // namespace

TEST(TwoTower, SoftmaxWithStreamingLogQAndCfmSslMatchesFiniteDifferences) { check_full_gradient(small_config()); }

TEST(TwoTower, StaticLogQAndRfmMatchFiniteDifferences) {
  sr_config cfg = small_config();
  cfg.loss.logq = SR_LOGQ_STATIC;
  cfg.ssl.masking = SR_MASK_RFM;
  cfg.ssl.temperature = 0.8;  // its own tau
  check_full_gradient(cfg);
}

TEST(TwoTower, FocalLossMatchesFiniteDifferences) {
  sr_config cfg = small_config();
  cfg.loss.type = SR_LOSS_FOCAL;
  check_full_gradient(cfg);
}

TEST(TwoTower, AucLossMatchesFiniteDifferences) {
  sr_config cfg = small_config();
  cfg.loss.type = SR_LOSS_AUC;
  cfg.ssl.enabled = 0;
  check_full_gradient(cfg);
}

TEST(TwoTower, UserIdQueryFeatureAndNoHiddenLayerMatchFiniteDifferences) {
  sr_config cfg = small_config();
  cfg.model.n_query_features = 2;
  snprintf(cfg.model.query_features[1], sizeof cfg.model.query_features[1], "user_id");
  cfg.model.n_tower_hidden = 0;
  check_full_gradient(cfg);
}

// The regularisers of issue 18: history dropout (a mask over the query's
// history values), tower dropout after the hidden ReLUs of every training
// pass (both towers, SSL views) and the L2 penalty on the rows the pairs look
// up; their draws are keyed by the step, so the repeated evaluations of the
// finite differences see the same masks.
TEST(TwoTower, HistoryDropoutTowerDropoutAndEmbeddingL2MatchFiniteDifferences) {
  sr_config cfg = small_config();
  cfg.model.history_dropout = 0.3;
  cfg.model.tower_dropout = 0.2;
  // Wide enough that no row loses every active unit: its output would be
  // the bias alone (0 at first), whose L2 normalisation is clamped.
  cfg.model.tower_hidden[0] = 16;
  cfg.loss.embedding_l2 = 2.0;  // large enough to show next to the loss
  check_full_gradient(cfg);
  cfg.model.n_tower_hidden = 2;  // a mask on each hidden layer
  cfg.model.tower_hidden[1] = 12;
  check_full_gradient(cfg);
}

// Mixed negative sampling (M uniform items, their own log p) with accidental
// hits removed, on top of SSL.
TEST(TwoTower, UniformNegativesAndAccidentalHitRemovalMatchFiniteDifferences) {
  sr_config cfg = small_config();
  cfg.loss.uniform_negatives = 12;  // of 40 items: several repeat a batch item
  cfg.loss.remove_accidental_hits = 1;
  check_full_gradient(cfg);
  cfg.loss.type = SR_LOSS_FOCAL;
  cfg.loss.logq = SR_LOGQ_STATIC;
  check_full_gradient(cfg);
}

// Each switch changes the training loss (none is silently ignored), the L2
// term is reported, and the regularisers are training-only: evaluation
// scores of the same parameters do not depend on them.
TEST(TwoTower, RegularisersChangeTrainingOnlyAndNegativesChangeTheLoss) {
  auto step = [](const sr_config &cfg, std::vector<float> *scores) {
    sr_model *m = nullptr;
    EXPECT_EQ(sr_model_create(&cfg, &dataset(), &m), SR_OK) << sr_error_message();
    PairBatch pb(dataset(), 8, 3);
    sr_step_stats st{};
    EXPECT_EQ(m->ops->forward_backward(m, &pb.b, &st), SR_OK);
    const sr_dataset &d = dataset();
    scores->assign((size_t)(d.valid.foldin.n_rows * d.n_items), 0.0f);
    m->ops->begin_eval(m);
    m->ops->score(m, &d.valid.foldin, d.valid.user_ids, scores->data());
    sr_model_destroy(m);
    return st;
  };
  const sr_config base = small_config();
  std::vector<float> base_scores, scores;
  const sr_step_stats plain = step(base, &base_scores);
  EXPECT_EQ(plain.n_terms, 2);
  for (int which = 0; which < 5; which++) {
    sr_config cfg = base;
    if (which == 0) cfg.model.history_dropout = 0.5;
    if (which == 1) cfg.model.tower_dropout = 0.5;
    if (which == 2) cfg.loss.embedding_l2 = 1.0;
    if (which == 3) cfg.loss.uniform_negatives = 10;
    if (which == 4) cfg.loss.remove_accidental_hits = 1, cfg.loss.uniform_negatives = 30;
    const sr_step_stats st = step(cfg, &scores);
    EXPECT_NE(st.terms[0] + (which == 2 ? st.terms[2] : 0.0), plain.terms[0]) << "switch " << which;
    EXPECT_EQ(scores, base_scores) << "switch " << which;
    if (which == 2) {
      ASSERT_EQ(st.n_terms, 3);
      EXPECT_STREQ(st.term_names[2], "l2");
      EXPECT_GT(st.terms[2], 0.0);
      EXPECT_EQ(st.terms[0], plain.terms[0]);  // the penalty is a separate term
    }
  }
  // Removing accidental hits takes candidates out of a softmax: the loss can only fall.
  sr_config hits = base, kept = base;
  hits.loss.uniform_negatives = kept.loss.uniform_negatives = 30;
  hits.loss.remove_accidental_hits = 1;
  EXPECT_LT(step(hits, &scores).terms[0], step(kept, &scores).terms[0]);
}

TEST(TwoTower, AccidentalHitRemovalNeedsASoftmaxLoss) {
  sr_config cfg = small_config();
  cfg.loss.remove_accidental_hits = 1;
  cfg.loss.type = SR_LOSS_AUC;
  sr_model *m = nullptr;
  EXPECT_EQ(sr_model_create(&cfg, &dataset(), &m), SR_ECONFIG);
  EXPECT_EQ(std::string(sr_error_message()),
            "loss.remove_accidental_hits: applies to the softmax and focal losses only, not auc");
}

// Multi-Similarity's mining is a non-differentiable selection that a
// perturbation can flip, so its gradient is checked on fixed pairs in
// test_contrastive.cpp; here: it trains through the model (finite, and the
// tables get gradients).
TEST(TwoTower, MultiSimilarityRunsThroughTheModel) {
  sr_config cfg = small_config();
  cfg.loss.type = SR_LOSS_MULTISIM;
  sr_model *m = nullptr;
  ASSERT_EQ(sr_model_create(&cfg, &dataset(), &m), SR_OK);
  PairBatch pb(dataset(), 8, 0);
  std::vector<float> grads;
  double loss = loss_and_grad(m, pb.b, &grads);
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_GT(sr_params_grad_sq_norm(&m->params), 0.0);
  // The tables (the sparse tail, after the dense prefix) get gradients too.
  double table_sq = 0.0;
  for (size_t j = (size_t)m->params.dense_total; j < grads.size(); j++) table_sq += (double)grads[j] * grads[j];
  EXPECT_GT(table_sq, 0.0);
  sr_model_destroy(m);
}

// ssl.temperature 0 means loss.temperature; another value changes only the SSL term.
TEST(TwoTower, SslTemperatureDefaultsToTheLossTemperature) {
  auto terms = [](double ssl_tau) {
    sr_config cfg = small_config();
    cfg.ssl.temperature = ssl_tau;
    sr_model *m = nullptr;
    EXPECT_EQ(sr_model_create(&cfg, &dataset(), &m), SR_OK);
    PairBatch pb(dataset(), 8, 0);
    sr_step_stats st{};
    EXPECT_EQ(m->ops->forward_backward(m, &pb.b, &st), SR_OK);
    sr_model_destroy(m);
    return std::vector<double>{st.terms[0], st.terms[1]};
  };
  const double tau = small_config().loss.temperature;
  EXPECT_EQ(terms(0.0), terms(tau));
  std::vector<double> other = terms(0.8);
  EXPECT_EQ(other[0], terms(0.0)[0]);
  EXPECT_NE(other[1], terms(0.0)[1]);
}

TEST(TwoTower, UnknownFeatureNamesTheKeyAndTheAvailableOnes) {
  sr_config cfg = small_config();
  cfg.model.n_item_features = 2;
  snprintf(cfg.model.item_features[0], sizeof cfg.model.item_features[0], "item_id");
  snprintf(cfg.model.item_features[1], sizeof cfg.model.item_features[1], "genre");
  sr_model *m = nullptr;
  EXPECT_EQ(sr_model_create(&cfg, &dataset(), &m), SR_ECONFIG);
  EXPECT_EQ(std::string(sr_error_message()),
            "model.item_features[1]: no item feature 'genre' in the dataset (available: item_id, all, cluster, tags, "
            "pop_bucket)");
  // A name too long for its parameter names ("item.NAME.default" < 64 bytes).
  snprintf(cfg.model.item_features[1], sizeof cfg.model.item_features[1], "%s", std::string(50, 'g').c_str());
  EXPECT_EQ(sr_model_create(&cfg, &dataset(), &m), SR_ECONFIG);
  EXPECT_NE(std::string(sr_error_message()).find("longer than 49 characters"), std::string::npos)
      << sr_error_message();
  cfg.model.n_item_features = 1;  // item_id only: nothing to mask
  EXPECT_EQ(sr_model_create(&cfg, &dataset(), &m), SR_ECONFIG);
  EXPECT_NE(std::string(sr_error_message()).find("ssl.enabled"), std::string::npos) << sr_error_message();
}

// Parameters are dense first, tables last (the trainer relies on it), and
// "all" expands to every item feature.
TEST(TwoTower, RegistersDenseParametersBeforeTables) {
  sr_config cfg = small_config();
  sr_model *m = nullptr;
  ASSERT_EQ(sr_model_create(&cfg, &dataset(), &m), SR_OK);
  for (int i = 0; i < m->params.count; i++) {
    std::string name = m->params.items[i].name;
    bool table = name.size() > 6 && name.compare(name.size() - 6, 6, ".table") == 0;
    EXPECT_EQ(table, i >= m->params.n_dense) << name;
    EXPECT_EQ(table, m->params.items[i].grad == nullptr) << name << ": tables have no dense gradient buffer";
  }
  for (const char *name : {"item.item_id.table", "item.cluster.table", "item.tags.table", "item.pop_bucket.table",
                           "query.history.table", "item.mlp.1.weight", "query.tags.default"}) {
    bool expected = std::string(name) != "query.tags.default";
    EXPECT_EQ(sr_params_find(&m->params, name) != nullptr, expected) << name;
  }
  EXPECT_EQ(sr_params_find(&m->params, "item.tags.table")->shape[0], 16);
  sr_model_destroy(m);
}

// Scores are dot products of the exported embeddings; the user's items enter
// only through the history feature.
TEST(TwoTower, ScoresAreUserTimesItemEmbeddings) {
  sr_config cfg = small_config();
  sr_model *m = nullptr;
  const sr_dataset &d = dataset();
  ASSERT_EQ(sr_model_create(&cfg, &d, &m), SR_OK);
  const int64_t I = d.n_items, D = sr_two_tower_dim(m), R = 3;
  sr_csr rows;
  sr_csr_slice_rows(&d.valid.foldin, 0, R, &rows);
  std::vector<float> scores(R * I), users(R * D), items(I * D);
  m->ops->begin_eval(m);
  m->ops->score(m, &rows, d.valid.user_ids, scores.data());
  sr_two_tower_embed_users(m, &rows, d.valid.user_ids, users.data());
  sr_two_tower_embed_items(m, items.data());
  for (int64_t r = 0; r < R; r++) {
    double norm = 0;
    for (int64_t k = 0; k < D; k++) norm += users[r * D + k] * users[r * D + k];
    EXPECT_NEAR(norm, 1.0, 1e-5);
    for (int64_t i = 0; i < I; i++) {
      double dot = 0;
      for (int64_t k = 0; k < D; k++) dot += users[r * D + k] * items[i * D + k];
      EXPECT_NEAR(scores[r * I + i], dot, 1e-5);
    }
  }
  sr_csr_free(&rows);
  sr_model_destroy(m);
}

// A query tower wider than the item tower (2 features of E against 1), users
// embedded after the items with fewer rows than the items' pass: the towers'
// evaluation buffers must not be shared (an overflow, caught by
// -DSHARDREC_SANITIZE=address), and embeddings do not depend on call order.
TEST(TwoTower, EmbeddingsDoNotDependOnTheOrderOfTowerCalls) {
  sr_config cfg = small_config();
  cfg.model.n_query_features = 2;
  snprintf(cfg.model.query_features[1], sizeof cfg.model.query_features[1], "user_id");
  cfg.model.n_item_features = 1;  // item_id
  cfg.ssl.enabled = 0;            // its masking needs two item features
  const sr_dataset &d = dataset();
  sr_model *first_users = nullptr, *first_items = nullptr;
  ASSERT_EQ(sr_model_create(&cfg, &d, &first_users), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_model_create(&cfg, &d, &first_items), SR_OK) << sr_error_message();
  // R in (I / 2, I]: R rows of 2E floats need more than the I rows of E.
  const int64_t I = d.n_items, D = sr_two_tower_dim(first_users), R = 30;
  ASSERT_EQ(I, 40);
  sr_csr rows;
  sr_csr_slice_rows(&d.train, 0, R, &rows);
  std::vector<float> users_a(R * D), items_a(I * D), users_b(R * D), items_b(I * D);
  sr_two_tower_embed_users(first_users, &rows, d.train_user_ids, users_a.data());
  sr_two_tower_embed_items(first_users, items_a.data());
  sr_two_tower_embed_items(first_items, items_b.data());
  sr_two_tower_embed_users(first_items, &rows, d.train_user_ids, users_b.data());
  EXPECT_EQ(users_a, users_b);
  EXPECT_EQ(items_a, items_b);
  sr_csr_free(&rows);
  sr_model_destroy(first_users);
  sr_model_destroy(first_items);
}

// Cold-start items (dataset.h cold_items) have no trained id embedding: the
// item tower gives them item_id's learned default, so two cold items with
// the same features get the same embedding, while two warm ones differ by
// their ids. Only a model with item features beyond the id ranks them by
// something learned (what evaluation reports, metrics.h).
TEST(TwoTower, ColdItemsAreEmbeddedByTheirFeaturesAlone) {
  sr_dataset d = srtest::synthetic_dataset(80, 40, 10, 6, true);
  // Two pairs of items with the same cluster: the first pair becomes cold.
  const sr_csr &cluster = d.item_features[0].values;
  ASSERT_STREQ(d.item_features[0].name, "cluster");
  std::vector<std::pair<int32_t, int32_t>> pairs;
  std::map<int32_t, int32_t> first_of;
  for (int32_t i = 0; i < d.n_items && pairs.size() < 2; i++) {
    auto it = first_of.emplace(cluster.indices[i], i);
    if (!it.second) {
      pairs.push_back({it.first->second, i});
      first_of.erase(it.first);
    }
  }
  ASSERT_EQ(pairs.size(), 2u);
  free(d.cold_items);
  d.cold_items = (int32_t *)malloc(2 * sizeof *d.cold_items);
  d.cold_items[0] = std::min(pairs[0].first, pairs[0].second);
  d.cold_items[1] = std::max(pairs[0].first, pairs[0].second);
  d.n_cold_items = 2;
  sr_config cfg = small_config();
  cfg.ssl.enabled = 0;
  cfg.model.n_item_features = 2;
  snprintf(cfg.model.item_features[0], sizeof cfg.model.item_features[0], "item_id");
  snprintf(cfg.model.item_features[1], sizeof cfg.model.item_features[1], "cluster");
  sr_model *m = nullptr;
  ASSERT_EQ(sr_model_create(&cfg, &d, &m), SR_OK) << sr_error_message();
  EXPECT_TRUE(m->ranks_unseen_items);
  const int64_t D = sr_two_tower_dim(m);
  std::vector<float> items((size_t)(d.n_items * D));
  sr_two_tower_embed_items(m, items.data());
  auto row = [&](int32_t i) { return std::vector<float>(items.begin() + i * D, items.begin() + (i + 1) * D); };
  EXPECT_EQ(row(pairs[0].first), row(pairs[0].second)) << "cold items: features only";
  EXPECT_NE(row(pairs[1].first), row(pairs[1].second)) << "warm items: their ids too";
  sr_model_destroy(m);
  // Without item features there is nothing to rank cold items by.
  cfg.model.n_item_features = 1;
  ASSERT_EQ(sr_model_create(&cfg, &d, &m), SR_OK) << sr_error_message();
  EXPECT_FALSE(m->ranks_unseen_items);
  sr_model_destroy(m);
  cfg.model.type = SR_MODEL_MULTVAE;
  ASSERT_EQ(sr_model_create(&cfg, &d, &m), SR_OK) << sr_error_message();
  EXPECT_FALSE(m->ranks_unseen_items);
  sr_model_destroy(m);
  sr_dataset_free(&d);
}

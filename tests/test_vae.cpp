// test_vae.cpp — Mult-VAE and Mult-DAE: finite-difference checks of the full
// losses' gradients, beta annealing, evaluation-mode determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "test_util.h"

extern "C" {
#include "shardrec/config.h"
#include "shardrec/model.h"
#include "shardrec/rng.h"
#include "shardrec/vae.h"
}

namespace {

// A small random binary batch: R rows over I items, 2..5 clicks each.
sr_csr random_batch(int64_t R, int64_t I, uint64_t seed) {
  std::vector<int64_t> indptr{0};
  std::vector<int32_t> indices;
  sr_rng r;
  sr_rng_init(&r, seed, SR_RNG_SYNTH, 0, 0);
  for (int64_t u = 0; u < R; u++) {
    std::vector<int> row;
    int want = 2 + (int)sr_rng_below(&r, 4);
    for (int i = 0; i < I && (int)row.size() < want; i++)
      if (sr_rng_uniform(&r) < 0.35f) row.push_back(i);
    if (row.empty()) row.push_back((int)u % (int)I);
    indices.insert(indices.end(), row.begin(), row.end());
    indptr.push_back((int64_t)indices.size());
  }
  sr_csr m;
  sr_csr_alloc(&m, R, I, (int64_t)indices.size(), 0);
  std::copy(indptr.begin(), indptr.end(), m.indptr);
  std::copy(indices.begin(), indices.end(), m.indices);
  return m;
}

sr_config small_config(sr_model_type type) {
  sr_config cfg;
  sr_config_defaults(&cfg);
  cfg.model.type = type;
  cfg.model.n_hidden = 1;
  cfg.model.hidden[0] = 6;
  cfg.model.latent_dim = 3;
  cfg.model.dropout = 0.5;
  cfg.model.anneal_cap = 0.2;
  cfg.model.total_anneal_steps = 10;  // beta = 0.2 at step 5: the KL term matters
  cfg.model.l2_reg = 0.5;             // large enough for the penalty to show in the check
  cfg.train.batch_size = 4;
  cfg.run.seed = 11;
  return cfg;
}

// Training step `step` on x's rows, with their sample ids, in a global batch
// of global_batch rows.
sr_batch training_batch(const sr_csr *x, const int64_t *ids, int64_t global_batch, uint64_t step) {
  sr_batch b = {};
  b.rows = x;
  b.sample_ids = ids;
  b.global_batch = global_batch;
  b.step = step;
  return b;
}

// Total loss of the model on the batch (data term + parameter penalty); also
// leaves the analytic gradient in the registry.
double loss_and_grad(sr_model *m, const sr_batch &b) {
  sr_params_zero_grad(&m->params);
  sr_step_stats st;
  EXPECT_EQ(m->ops->forward_backward(m, &b, &st), 0);
  return st.loss + m->ops->add_param_penalty(m);
}

// Central differences on every parameter element; the same step and sample
// ids redraw the same dropout masks and noise, so the loss is a deterministic
// function of the parameters.
void check_full_gradient(sr_model_type type) {
  sr_config cfg = small_config(type);
  const int64_t I = 9, R = 4;
  sr_model *m = nullptr;
  sr_dataset corpus = srtest::item_corpus(I);
  ASSERT_EQ(sr_model_create(&cfg, &corpus, &m), 0);
  sr_csr x = random_batch(R, I, 5);
  int64_t ids[R] = {40, 41, 7, 1000003};
  const sr_batch b = training_batch(&x, ids, 5, 5);  // a global batch larger than ours: norm is 5
  sr_params *ps = &m->params;
  loss_and_grad(m, b);
  std::vector<float> analytic(ps->grads, ps->grads + ps->total);
  const float h = 1e-2f;
  int checked = 0;
  double worst = 0;
  for (int p = 0; p < ps->count; p++) {
    sr_param *prm = &ps->items[p];
    for (int64_t j = 0; j < prm->numel; j++) {
      float saved = prm->value[j];
      prm->value[j] = saved + h;
      double up = loss_and_grad(m, b);
      prm->value[j] = saved - h;
      double down = loss_and_grad(m, b);
      prm->value[j] = saved;
      double fd = (up - down) / (2.0 * h), an = analytic[prm->offset + j];
      double err = std::fabs(fd - an) / std::max(1e-2, std::fabs(fd) + std::fabs(an));
      worst = std::max(worst, err);
      EXPECT_LT(err, 2e-2) << prm->name << "[" << j << "] fd " << fd << " analytic " << an;
      checked++;
    }
  }
  EXPECT_GT(checked, 100);
  testing::Test::RecordProperty("worst_relative_error", std::to_string(worst));
  sr_csr_free(&x);
  sr_model_destroy(m);
}

}  // namespace

TEST(MultVae, FullLossGradientMatchesFiniteDifferences) { check_full_gradient(SR_MODEL_MULTVAE); }
TEST(MultDae, FullLossGradientMatchesFiniteDifferences) { check_full_gradient(SR_MODEL_MULTDAE); }

// The first layer's touched rows (params.h) are the items of the batch, and
// every other row of its gradient is zero: the contract that lets the
// reducer send the touched rows only. With dist.exchange_touched_rows off the
// layer declares none.
TEST(MultVae, FirstLayerMarksTheBatchItemsAsTouchedRows) {
  for (sr_model_type type : {SR_MODEL_MULTVAE, SR_MODEL_MULTDAE}) {
    sr_config cfg = small_config(type);
    const int64_t I = 30, R = 4;
    sr_model *m = nullptr;
    sr_dataset corpus = srtest::item_corpus(I);
    ASSERT_EQ(sr_model_create(&cfg, &corpus, &m), 0);
    sr_csr x = random_batch(R, I, 8);
    int64_t ids[R] = {3, 4, 5, 6};
    const sr_batch b = training_batch(&x, ids, R, 2);
    sr_step_stats st;
    ASSERT_EQ(m->ops->forward_backward(m, &b, &st), 0);  // the penalty comes after the reduction
    const sr_param *w = sr_params_find(&m->params, "encoder.0.weight");
    ASSERT_NE(w->touched_rows, nullptr);
    std::vector<int> in_batch(I, 0);
    for (int64_t k = 0; k < x.nnz; k++) in_batch[(size_t)x.indices[k]] = 1;
    int untouched = 0;
    for (int64_t row = 0; row < I; row++) {
      EXPECT_EQ(w->touched_rows[row], in_batch[(size_t)row]) << "row " << row;
      if (in_batch[(size_t)row]) continue;
      untouched++;
      for (int64_t j = 0; j < w->shape[1]; j++) EXPECT_EQ(w->grad[row * w->shape[1] + j], 0.0f) << "row " << row;
    }
    EXPECT_GT(untouched, 5);  // the batch leaves rows out: the check above means something
    for (int i = 0; i < m->params.count; i++) {
      if (&m->params.items[i] == w) continue;
      EXPECT_EQ(m->params.items[i].touched_rows, nullptr) << m->params.items[i].name;
    }
    sr_csr_free(&x);
    sr_model_destroy(m);
    cfg.dist.exchange_touched_rows = 0;
    ASSERT_EQ(sr_model_create(&cfg, &corpus, &m), 0);
    EXPECT_EQ(sr_params_find(&m->params, "encoder.0.weight")->touched_rows, nullptr);
    sr_model_destroy(m);
  }
}

TEST(MultVae, BetaAnnealingFollowsThePaper) {
  // beta = min(cap, updates / total): 0 at the first update, linear, then capped.
  EXPECT_EQ(sr_vae_beta(0.2, 200000, 0), 0.0);
  EXPECT_DOUBLE_EQ(sr_vae_beta(0.2, 200000, 20000), 0.1);
  EXPECT_DOUBLE_EQ(sr_vae_beta(0.2, 200000, 40000), 0.2);
  EXPECT_DOUBLE_EQ(sr_vae_beta(0.2, 200000, 1000000), 0.2);
}

TEST(MultVae, ArchitectureFollowsTheConfig) {
  sr_config cfg;
  sr_config_defaults(&cfg);  // the paper's [I -> 600 -> 200 -> 600 -> I]
  sr_model *m = nullptr;
  sr_dataset corpus = srtest::item_corpus(50);
  ASSERT_EQ(sr_model_create(&cfg, &corpus, &m), 0);
  sr_param *w0 = sr_params_find(&m->params, "encoder.0.weight");
  sr_param *w1 = sr_params_find(&m->params, "encoder.1.weight");
  sr_param *d1 = sr_params_find(&m->params, "decoder.1.weight");
  ASSERT_TRUE(w0 && w1 && d1);
  EXPECT_EQ(w0->shape[0], 50);
  EXPECT_EQ(w0->shape[1], 600);
  EXPECT_EQ(w1->shape[1], 400);  // [mu | logvar]
  EXPECT_EQ(d1->shape[0], 600);
  EXPECT_EQ(d1->shape[1], 50);
  EXPECT_EQ(m->params.count, 8);
  sr_model_destroy(m);
}

TEST(MultVae, ScoringIsDeterministicAndIgnoresDropout) {
  sr_config cfg = small_config(SR_MODEL_MULTVAE);
  sr_model *m = nullptr;
  sr_dataset corpus = srtest::item_corpus(9);
  ASSERT_EQ(sr_model_create(&cfg, &corpus, &m), 0);
  sr_csr x = random_batch(3, 9, 8);
  std::vector<float> a(27), b(27);
  m->ops->score(m, &x, nullptr, a.data());
  m->ops->score(m, &x, nullptr, b.data());
  EXPECT_EQ(a, b);
  // Row scores do not depend on the other rows of the batch (no batch statistics).
  int64_t one = 1;
  sr_csr row;
  sr_csr_gather_rows(&x, &one, 1, &row);
  std::vector<float> c(9);
  m->ops->score(m, &row, nullptr, c.data());
  for (int i = 0; i < 9; i++) EXPECT_FLOAT_EQ(c[i], a[9 + i]);
  sr_csr_free(&row);
  sr_csr_free(&x);
  sr_model_destroy(m);
}

// test_train_controls.cpp — training controls on one process: learning-rate
// schedules (values by hand, the rate the trainer uses), early stopping
// (stop reason, metrics.jsonl record, checkpointed patience) and gradient
// clipping by global norm (the norm against one computed here from the
// model's own backward pass). Distributed equivalence: tests/mpi.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "test_util.h"

extern "C" {
#include "shardrec/config.h"
#include "shardrec/dist.h"
#include "shardrec/error.h"
#include "shardrec/grad_reduce.h"
#include "shardrec/log.h"
#include "shardrec/model.h"
#include "shardrec/rng.h"
#include "shardrec/schedule.h"
#include "shardrec/train.h"
}

namespace {

const sr_dataset &dataset() {
  static sr_dataset d = srtest::synthetic_dataset(700, 120, 100, 12, true);
  return d;
}

struct Trained {
  int rc;
  std::vector<float> params;
  sr_train_result result;
};

Trained train(const sr_config &cfg, const char *run_dir = nullptr) {
  sr_log_set_level(SR_LOG_ERROR);
  sr_dist self;
  sr_dist_self(&self);
  Trained t;
  sr_model *m = nullptr;
  t.rc = sr_train(&cfg, &self, &dataset(), run_dir, &m, &t.result);
  EXPECT_EQ(t.rc, 0) << sr_error_message();
  if (m) t.params.assign(m->params.values, m->params.values + m->params.total);
  sr_model_destroy(m);
  return t;
}

sr_config schedule_config(sr_lr_schedule_kind kind, int64_t warmup) {
  sr_config cfg;
  sr_config_defaults(&cfg);
  cfg.train.lr = 0.01;
  cfg.train.lr_schedule = kind;
  cfg.train.warmup_steps = warmup;
  return cfg;
}

int validate_yaml(const std::string &yaml) {
  sr_config cfg;
  sr_config_defaults(&cfg);
  sr_error_clear();
  const std::string text = "data: {path: in-memory}\n" + yaml;
  if (sr_config_load_string(&cfg, text.c_str(), "cfg.yaml") != SR_OK) return -1;
  return sr_config_validate(&cfg);
}

}  // namespace

// Values worked out by hand: warm-up W = 4 of a run of T = 14 steps, so the
// decay spans 10 steps (p = (s - 4) / 10).
TEST(LrSchedule, ValuesByHand) {
  sr_config c = schedule_config(SR_LR_CONSTANT, 4);
  EXPECT_DOUBLE_EQ(sr_lr_at(&c, 0, 14), 0.0025);  // 0.01 * 1/4
  EXPECT_DOUBLE_EQ(sr_lr_at(&c, 3, 14), 0.01);    // 0.01 * 4/4
  EXPECT_DOUBLE_EQ(sr_lr_at(&c, 13, 14), 0.01);
  c = schedule_config(SR_LR_LINEAR, 4);
  EXPECT_DOUBLE_EQ(sr_lr_at(&c, 1, 14), 0.005);
  EXPECT_DOUBLE_EQ(sr_lr_at(&c, 4, 14), 0.01);    // p = 0
  EXPECT_DOUBLE_EQ(sr_lr_at(&c, 9, 14), 0.005);   // p = 1/2
  EXPECT_DOUBLE_EQ(sr_lr_at(&c, 13, 14), 0.001);  // p = 9/10
  EXPECT_DOUBLE_EQ(sr_lr_at(&c, 20, 14), 0.0);    // past the plan: p stays 1
  c = schedule_config(SR_LR_COSINE, 4);
  EXPECT_DOUBLE_EQ(sr_lr_at(&c, 4, 14), 0.01);
  EXPECT_NEAR(sr_lr_at(&c, 9, 14), 0.005, 1e-15);                                   // cos(pi/2) = 0
  EXPECT_NEAR(sr_lr_at(&c, 6, 14), 0.01 * (1 + std::cos(M_PI * 0.2)) / 2, 1e-15);   // 0.0090451
  EXPECT_NEAR(sr_lr_at(&c, 13, 14), 0.01 * (1 + std::cos(M_PI * 0.9)) / 2, 1e-15);  // 0.0002447
  c = schedule_config(SR_LR_STEP, 2);
  c.train.n_lr_milestones = 2;
  c.train.lr_milestones[0] = 5;
  c.train.lr_milestones[1] = 8;
  c.train.lr_factor = 0.5;
  EXPECT_DOUBLE_EQ(sr_lr_at(&c, 0, 14), 0.005);  // warm-up
  EXPECT_DOUBLE_EQ(sr_lr_at(&c, 4, 14), 0.01);
  EXPECT_DOUBLE_EQ(sr_lr_at(&c, 5, 14), 0.005);  // first milestone
  EXPECT_DOUBLE_EQ(sr_lr_at(&c, 7, 14), 0.005);
  EXPECT_DOUBLE_EQ(sr_lr_at(&c, 8, 14), 0.0025);
  EXPECT_DOUBLE_EQ(sr_lr_at(&c, 100, 14), 0.0025);
}

TEST(LrSchedule, ConfigChecks) {
  EXPECT_EQ(validate_yaml("train: {lr_schedule: cosine, warmup_steps: 100}"), SR_OK);
  EXPECT_EQ(validate_yaml("train: {lr_schedule: step, lr_milestones: [10, 20], lr_factor: 0.5}"), SR_OK);
  EXPECT_EQ(validate_yaml("train: {lr_schedule: step}"), SR_ECONFIG);
  EXPECT_NE(std::string(sr_error_message()).find("train.lr_milestones"), std::string::npos);
  EXPECT_EQ(validate_yaml("train: {lr_schedule: step, lr_milestones: [20, 20]}"), SR_ECONFIG);
  EXPECT_NE(std::string(sr_error_message()).find("train.lr_milestones[1]"), std::string::npos);
  EXPECT_EQ(validate_yaml("train: {lr_schedule: cosine, lr_milestones: [20]}"), SR_ECONFIG);
  EXPECT_EQ(validate_yaml("train: {lr_schedule: exponential}"), -1);
  EXPECT_EQ(validate_yaml("train: {clip_grad_norm: -1}"), -1);
  EXPECT_EQ(validate_yaml("train: {patience: -2}"), -1);
}

// The trainer uses the schedule: a cosine run differs from a constant one,
// and from one whose plan (train.epochs) is longer; max_steps cuts the run
// without changing its schedule.
TEST(LrSchedule, TrainerFollowsThePlanNotTheLimits) {
  sr_config cfg = srtest::equivalence_config(SR_MODEL_MULTVAE);
  cfg.train.epochs = 2;  // 12 planned steps; max_steps 9 stops earlier
  Trained constant = train(cfg);
  cfg.train.lr_schedule = SR_LR_COSINE;
  cfg.train.warmup_steps = 3;
  Trained cosine = train(cfg);
  sr_config longer = cfg;
  longer.train.epochs = 4;
  Trained cosine_longer = train(longer);
  ASSERT_FALSE(constant.params.empty());
  EXPECT_GT(srtest::max_relative_diff(cosine.params, constant.params), 1e-4);
  EXPECT_GT(srtest::max_relative_diff(cosine.params, cosine_longer.params), 1e-6);
  EXPECT_EQ(cosine.result.steps, 9);
  EXPECT_EQ(cosine.result.stop_reason, std::string("max_steps"));
}

namespace {

// Patience 2 with a minimum improvement no metric can reach: the first
// validation is the best, the next two do not improve, training stops.
sr_config never_improving(int patience) {
  sr_config cfg = srtest::equivalence_config(SR_MODEL_MULTVAE);
  cfg.train.max_steps = 0;
  cfg.train.epochs = 10;
  cfg.train.patience = patience;
  cfg.train.min_delta = 1.0;
  return cfg;
}

int count(const std::string &text, const std::string &what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) n++;
  return n;
}

}  // namespace

TEST(EarlyStopping, StopsAfterPatienceValidationsRecordsWhyAndStaysStoppedOnResume) {
  srtest::TempDir tmp;
  sr_config cfg = never_improving(2);
  snprintf(cfg.checkpoint.dir, sizeof cfg.checkpoint.dir, "%s", tmp.file("ckpt").c_str());
  Trained stopped = train(cfg, tmp.path().c_str());
  EXPECT_EQ(stopped.result.epochs_completed, 3);
  EXPECT_GE(stopped.result.best_epoch, 1);  // selection keeps the highest value, improved by any margin
  EXPECT_EQ(stopped.result.steps, 18);      // 6 steps per epoch
  EXPECT_EQ(stopped.result.stop_reason, std::string("early_stopping"));
  const std::string jsonl = srtest::read_file(tmp.file("metrics.jsonl"));
  EXPECT_EQ(count(jsonl, "\"type\":\"valid\""), 3);
  const size_t stop = jsonl.find("\"type\":\"stop\"");
  ASSERT_NE(stop, std::string::npos) << jsonl;
  const std::string stop_record = jsonl.substr(stop, jsonl.find('\n', stop) - stop);
  for (const char *field : {"\"epoch\":3", "\"step\":18", "\"reason\":\"early_stopping\""})
    EXPECT_NE(stop_record.find(field), std::string::npos) << field << " in " << stop_record;
  // The count is in the checkpoint: the resumed run does not train further.
  snprintf(cfg.checkpoint.resume, sizeof cfg.checkpoint.resume, "auto");
  Trained resumed = train(cfg, tmp.path().c_str());
  EXPECT_EQ(resumed.result.steps, 18);
  EXPECT_EQ(resumed.result.stop_reason, std::string("early_stopping"));
  EXPECT_EQ(resumed.result.best_epoch, stopped.result.best_epoch);
  EXPECT_EQ(srtest::max_relative_diff(resumed.params, stopped.params), 0.0);
  // Without patience the same run trains every epoch, and says so.
  sr_config all = never_improving(0);
  all.train.epochs = 4;
  Trained full = train(all);
  EXPECT_EQ(full.result.epochs_completed, 4);
  EXPECT_EQ(full.result.stop_reason, std::string("epochs"));
}

// The rule worked out from a run's own validation curve: a run without
// patience records train.select_metric per epoch; with patience 2 the same
// run must stop at the first epoch that ends two validations in a row that
// do not beat the best so far (on this data: epoch 9 of 10, after 7
// improving epochs), or train every epoch if there is none.
TEST(EarlyStopping, StopsWhereTheValidationCurveSays) {
  srtest::TempDir tmp;
  const int N = 10;
  sr_config cfg = never_improving(0);
  cfg.train.min_delta = 0.0;
  cfg.train.epochs = N;
  cfg.train.lr = 1e-2;
  train(cfg, tmp.path().c_str());
  std::vector<double> curve;
  const std::string jsonl = srtest::read_file(tmp.file("metrics.jsonl"));
  for (size_t at = jsonl.find("\"type\":\"valid\""); at != std::string::npos;
       at = jsonl.find("\"type\":\"valid\"", at + 1))
    curve.push_back(std::stod(jsonl.substr(jsonl.find("\"ndcg@100\":", at) + 11)));
  ASSERT_EQ(curve.size(), (size_t)N);
  int expected_stop = N, since_best = 0;
  double best = -1;
  for (int e = 0; e < N; e++) {
    if (curve[(size_t)e] > best) {
      best = curve[(size_t)e];
      since_best = 0;
    } else if (++since_best == 2) {
      expected_stop = e + 1;
      break;
    }
  }
  cfg.train.patience = 2;
  Trained early = train(cfg);
  EXPECT_EQ(early.result.epochs_completed, expected_stop);
  EXPECT_EQ(early.result.stop_reason, std::string(expected_stop < N ? "early_stopping" : "epochs"));
}

namespace {

// The global-batch gradient norm of the first step, computed here as one
// process does: the trainer's first global batch (the epoch-1 shuffle of
// the training rows), the model's own forward/backward and parameter
// penalty, then the sum of squares of every gradient.
double first_step_norm(const sr_config &cfg) {
  const sr_dataset &d = dataset();
  sr_model *m = nullptr;
  EXPECT_EQ(sr_model_create(&cfg, &d, &m), 0) << sr_error_message();
  const int64_t n_train = d.train.n_rows, B = cfg.train.batch_size;
  std::vector<int64_t> order((size_t)n_train), users((size_t)B), positions((size_t)B);
  sr_rng shuffle;
  sr_rng_init(&shuffle, (uint64_t)cfg.run.seed, SR_RNG_SHUFFLE, 1, 0);
  sr_rng_permutation(&shuffle, order.data(), n_train);
  for (int64_t i = 0; i < B; i++) {
    users[(size_t)i] = d.train_user_ids[order[(size_t)i]];
    positions[(size_t)i] = i;
  }
  sr_csr rows;
  sr_csr_gather_rows(&d.train, order.data(), B, &rows);
  sr_dist self;
  sr_dist_self(&self);
  sr_batch batch = {};
  batch.rows = &rows;
  batch.user_ids = users.data();
  batch.sample_ids = order.data();
  batch.positions = positions.data();
  batch.global_batch = B;
  batch.step = 0;
  batch.dist = &self;
  sr_step_stats st = {};
  EXPECT_EQ(m->ops->forward_backward(m, &batch, &st), 0) << sr_error_message();
  m->ops->add_param_penalty(m);
  double sq = 0;
  for (int64_t j = 0; j < m->params.total; j++) sq += (double)m->params.grads[j] * m->params.grads[j];
  sr_csr_free(&rows);
  sr_model_destroy(m);
  return std::sqrt(sq);
}

}  // namespace

TEST(GradClipping, NormIsTheSingleProcessGradientNormAndClippingChangesTheUpdate) {
  for (sr_model_type type : {SR_MODEL_MULTVAE, SR_MODEL_MULTDAE}) {
    sr_config cfg = srtest::equivalence_config(type);
    cfg.train.max_steps = 1;
    cfg.train.clip_grad_norm = 1e9;  // never clips, but the norm is computed and reported
    Trained one = train(cfg);
    const double expected = first_step_norm(cfg);
    EXPECT_GT(expected, 0.0);
    EXPECT_NEAR(one.result.grad_norm, expected, 1e-6 * expected) << sr_model_type_names[type];
    // A limit above every step's norm changes nothing, bit for bit.
    sr_config plain = srtest::equivalence_config(type), loose = plain;
    loose.train.clip_grad_norm = 1e9;
    Trained unclipped = train(plain), loose_run = train(loose);
    EXPECT_EQ(loose_run.params, unclipped.params);
    // A limit below them rescales every update (Adam is not invariant to a
    // per-step rescaling of the gradient).
    sr_config tight = plain;
    tight.train.clip_grad_norm = expected / 10;
    Trained clipped = train(tight);
    EXPECT_GT(clipped.result.grad_norm, tight.train.clip_grad_norm);
    EXPECT_GT(srtest::max_relative_diff(clipped.params, unclipped.params), 1e-5);
  }
}

// The reducer's part of the norm on one process: every element once.
TEST(GradClipping, OwnedSquaredNormOfAReducerByHand) {
  sr_params ps;
  sr_params_init(&ps);
  const int64_t w_shape[2] = {2, 3}, b_shape[1] = {2};
  sr_params_add(&ps, "w", SR_PARAM_WEIGHT, 2, w_shape);
  sr_params_add(&ps, "b", SR_PARAM_BIAS, 1, b_shape);
  sr_params_finalize(&ps);
  const float g[8] = {1, -2, 3, 0, 0.5f, -1, 2, 4};  // sum of squares 35.25
  for (int j = 0; j < 8; j++) (j < 6 ? ps.items[0].grad[j] : ps.items[1].grad[j - 6]) = g[j];
  sr_dist self;
  sr_dist_self(&self);
  for (int shard : {0, 1}) {
    sr_grad_reducer r;
    sr_grad_reducer_init(&r, &self, &ps, 4 * sizeof(float), 0, shard);  // buckets of at most 4 floats
    EXPECT_DOUBLE_EQ(sr_grad_reducer_owned_sq_norm(&r, 1), 35.25);
    sr_grad_reducer_scale(&r, 0.5f);
    EXPECT_DOUBLE_EQ(sr_grad_reducer_owned_sq_norm(&r, 1), 35.25 / 4);
    sr_grad_reducer_scale(&r, 2.0f);
    sr_grad_reducer_free(&r);
  }
  sr_params_free(&ps);
}

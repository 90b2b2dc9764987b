// test_contrastive.cpp — retrieval losses: hand-computed values, finite-difference
// gradients (through L2 normalisation too), the query-block split property that
// cross-device negatives rely on, and the streaming frequency estimator.
#include <gtest/gtest.h>

#include <cmath>
#include <utility>
#include <vector>

#include "kernel_check.h"

extern "C" {
#include "shardrec/contrastive.h"
#include "shardrec/nn.h"
}

using kcheck::Vec;

namespace {

// Random queries, items, positives and log p for the gradient checks.
struct Batch {
  int64_t Bq, N, D;
  Vec q, x, log_p;
  std::vector<int64_t> pos;
  Batch(int64_t bq, int64_t n, int64_t d, std::vector<int64_t> positives, uint64_t stream)
      : Bq(bq), N(n), D(d), pos(std::move(positives)) {
    q = kcheck::uniform((size_t)(Bq * D), -1.0f, 1.0f, stream);
    x = kcheck::uniform((size_t)(N * D), -1.0f, 1.0f, stream + 1);
    log_p = kcheck::uniform((size_t)N, -5.0f, -1.0f, stream + 2);
  }
};

// A loss with the common signature, bound to its extra parameters.
using Loss = std::function<double(float *dq, float *dx, const Batch &b)>;

// Gradients are WRITTEN: the buffers start as garbage. Then finite
// differences w.r.t. every query and item element (value-only calls).
void expect_loss_gradients(const char *what, Batch b, const Loss &loss) {
  Vec dq(b.q.size(), 7.0f), dx(b.x.size(), -7.0f);
  loss(dq.data(), dx.data(), b);
  auto value = [&] { return loss(nullptr, nullptr, b); };
  SCOPED_TRACE(what);
  kcheck::expect_gradient("dq", b.q, dq, value);
  kcheck::expect_gradient("dx", b.x, dx, value);
}

}  // namespace

// ---- batch softmax -------------------------------------------------------------------

TEST(BatchSoftmax, HandComputedTwoByTwo) {
  // q = {(1,0), (0,1)}, x = {(1,0), (0.6,0.8)}, pos = {0,1}, tau = 0.5, norm = 2,
  // p = {1/2, 1/4}. Scores s = {{1, 0.6}, {0, 0.8}}; logits (s - log p)/tau:
  //   l00 = 2 + 2 ln2, l01 = 1.2 + 4 ln2, l10 = 2 ln2, l11 = 1.6 + 4 ln2.
  // Row 0: ln(1 + e^{l01-l00}) = ln(1 + 4 e^{-0.8}) = ln 2.7973158 = 1.0286603,
  //   P01 = 1.7973158 / 2.7973158 = 0.6425144.
  // Row 1: ln(1 + e^{l10-l11}) = ln(1 + e^{-1.6}/4) = ln 1.0504741 = 0.0492416,
  //   P10 = 0.0504741 / 1.0504741 = 0.0480489.
  // loss = (1.0286603 + 0.0492416) / 2 = 0.5389510.
  // G = (P - I) / (norm tau) = {{-0.6425144, 0.6425144}, {0.0480489, -0.0480489}};
  // dq = G x = {(-0.2570058, 0.5140116), (0.0192196, -0.0384391)},
  // dx = G^T q = {(-0.6425144, 0.0480489), (0.6425144, -0.0480489)}.
  const Vec q = {1, 0, 0, 1}, x = {1, 0, 0.6f, 0.8f};
  const std::vector<int64_t> pos = {0, 1};
  const Vec log_p = {std::log(0.5f), std::log(0.25f)};
  Vec dq(4, 9.0f), dx(4, 9.0f);
  EXPECT_NEAR(
      sr_batch_softmax_loss(dq.data(), dx.data(), q.data(), x.data(), pos.data(), log_p.data(), 2, 2, 2, 0.5f, 2.0f),
      0.5389510, 1e-6);
  kcheck::expect_all_near(dq, Vec{-0.2570058f, 0.5140116f, 0.0192196f, -0.0384391f}, 1e-6f, "dq");
  kcheck::expect_all_near(dx, Vec{-0.6425144f, 0.0480489f, 0.6425144f, -0.0480489f}, 1e-6f, "dx");
  // Without correction: logits 2 s = {{2, 1.2}, {0, 1.6}}:
  //   (ln(1 + e^{-0.8}) + ln(1 + e^{-1.6})) / 2 = (0.3711007 + 0.1839007) / 2 = 0.2775007.
  // (Subtracting log p after the division, s/tau - log p, would give 0.3686596.)
  EXPECT_NEAR(sr_batch_softmax_loss(nullptr, nullptr, q.data(), x.data(), pos.data(), nullptr, 2, 2, 2, 0.5f, 2.0f),
              0.2775007, 1e-6);
}

TEST(BatchSoftmax, GradientsWithAndWithoutLogQ) {
  // norm 5 differs from Bq: the division is by the global batch. Query 2 and
  // query 0 share no positive; item 1 is nobody's positive.
  const Batch b(3, 5, 4, {2, 0, 4}, 100);
  for (bool logq : {false, true})
    expect_loss_gradients(logq ? "logQ" : "plain", b, [logq](float *dq, float *dx, const Batch &t) {
      return sr_batch_softmax_loss(dq, dx, t.q.data(), t.x.data(), t.pos.data(), logq ? t.log_p.data() : nullptr,
                                   t.Bq, t.N, t.D, 0.5f, 5.0f);
    });
}

TEST(BatchSoftmax, GradientThroughL2Normalisation) {
  // Raw tower outputs u (Bq, D), v (N, D) -> L2-normalise -> loss at tau 0.2.
  const int64_t Bq = 3, N = 4, D = 5;
  const float eps = 1e-6f, tau = 0.2f;
  const std::vector<int64_t> pos = {1, 3, 0};
  Vec u = kcheck::uniform((size_t)(Bq * D), -1.0f, 1.0f, 110), v = kcheck::uniform((size_t)(N * D), -1.0f, 1.0f, 111);
  const Vec log_p = kcheck::uniform((size_t)N, -4.0f, -2.0f, 112);
  Vec qn(u.size()), xn(v.size()), qnorm(Bq), xnorm(N);
  auto forward = [&](float *dq, float *dx) {
    sr_l2norm_forward(qn.data(), qnorm.data(), u.data(), Bq, D, eps);
    sr_l2norm_forward(xn.data(), xnorm.data(), v.data(), N, D, eps);
    return sr_batch_softmax_loss(dq, dx, qn.data(), xn.data(), pos.data(), log_p.data(), Bq, N, D, tau, 3.0f);
  };
  Vec dq(u.size()), dx(v.size()), du(u.size(), 0.0f), dv(v.size(), 0.0f);
  forward(dq.data(), dx.data());
  sr_l2norm_backward(du.data(), dq.data(), qn.data(), qnorm.data(), Bq, D, eps);
  sr_l2norm_backward(dv.data(), dx.data(), xn.data(), xnorm.data(), N, D, eps);
  auto value = [&] { return forward(nullptr, nullptr); };
  kcheck::expect_gradient("du", u, du, value);
  kcheck::expect_gradient("dv", v, dv, value);
}

TEST(BatchSoftmax, QueryBlocksSumToTheSingleBlockGradient) {
  // 6 queries against 6 gathered items, split into P = 3 blocks of 2 queries
  // ("ranks"), each normalised by the global 6: the block losses and item
  // gradients sum to the single-block ones, the query gradients are its rows.
  const int64_t B = 6, D = 4, P = 3, per = B / P;
  const Batch b(B, B, D, {1, 0, 3, 2, 5, 4}, 120);
  const float tau = 0.3f, norm = (float)B;
  Vec dq(b.q.size()), dx(b.x.size());
  const double loss = sr_batch_softmax_loss(dq.data(), dx.data(), b.q.data(), b.x.data(), b.pos.data(),
                                            b.log_p.data(), B, B, D, tau, norm);
  double block_loss = 0.0;
  Vec dq_blocks(b.q.size()), dx_sum(b.x.size(), 0.0f), dx_block(b.x.size());
  for (int64_t p = 0; p < P; p++) {
    block_loss += sr_batch_softmax_loss(dq_blocks.data() + p * per * D, dx_block.data(), b.q.data() + p * per * D,
                                        b.x.data(), b.pos.data() + p * per, b.log_p.data(), per, B, D, tau, norm);
    for (size_t i = 0; i < dx_sum.size(); i++) dx_sum[i] += dx_block[i];
  }
  EXPECT_NEAR(block_loss, loss, 1e-6);
  kcheck::expect_all_near(dq_blocks, dq, 1e-6f, "dq");
  kcheck::expect_all_near(dx_sum, dx, 1e-6f, "dx summed over blocks");

  // A rank without queries contributes nothing (dx written as zeros).
  Vec dx_empty(b.x.size(), 3.0f);
  EXPECT_EQ(sr_batch_softmax_loss(nullptr, dx_empty.data(), b.q.data(), b.x.data(), b.pos.data(), nullptr, 0, B, D,
                                  tau, norm),
            0.0);
  EXPECT_EQ(dx_empty, Vec(b.x.size(), 0.0f));
}

// Enough items that the kernel works through its queries in several cache
// blocks (about 4 MiB of scores each): the result equals one call per query.
TEST(BatchSoftmax, CacheBlocksOfQueriesMatchOneCallPerQuery) {
  const int64_t B = 600, N = 5000, D = 8;
  std::vector<int64_t> pos((size_t)B);
  for (int64_t i = 0; i < B; i++) pos[i] = (i * 37) % N;
  const Batch b(B, N, D, pos, 130);
  const float tau = 0.2f, norm = (float)B;
  Vec dq(b.q.size()), dx(b.x.size());
  const double loss = sr_batch_softmax_loss(dq.data(), dx.data(), b.q.data(), b.x.data(), b.pos.data(),
                                            b.log_p.data(), B, N, D, tau, norm);
  double row_loss = 0.0;
  Vec dq_rows(b.q.size()), dx_sum(b.x.size(), 0.0f), dx_row(b.x.size());
  for (int64_t i = 0; i < B; i++) {
    row_loss += sr_batch_softmax_loss(dq_rows.data() + i * D, dx_row.data(), b.q.data() + i * D, b.x.data(),
                                      b.pos.data() + i, b.log_p.data(), 1, N, D, tau, norm);
    for (size_t k = 0; k < dx_sum.size(); k++) dx_sum[k] += dx_row[k];
  }
  EXPECT_NEAR(row_loss, loss, 1e-6 * std::fabs(loss));
  kcheck::expect_all_near(dq_rows, dq, 1e-6f, "dq");
  kcheck::expect_all_near(dx_sum, dx, 1e-6f, "dx");
}

// Accidental hits: query 0's positive item (id 7) is also candidate 2, query
// 1's (id 9) nowhere else. Removing hits equals the softmax without
// candidate 2 for query 0, changes nothing for query 1, and candidate 2 gets
// no gradient from query 0.
TEST(BatchSoftmax, AccidentalHitsLeaveTheQuerysSoftmax) {
  const int64_t D = 3, N = 4;
  const Vec q = kcheck::uniform(2 * D, -1.0f, 1.0f, 41), x = kcheck::uniform(N * D, -1.0f, 1.0f, 42);
  const Vec log_p = {-1.0f, -2.0f, -1.5f, -3.0f};
  const std::vector<int64_t> pos = {0, 1}, ids = {7, 9, 7, 4};
  const double with_removal = sr_focal_softmax_loss(nullptr, nullptr, q.data(), x.data(), pos.data(), log_p.data(),
                                                    ids.data(), 2, N, D, 0.5f, 0.0f, 2.0f);
  // Query 0 without candidate 2, query 1 with every candidate.
  Vec x0 = {x[0], x[1], x[2], x[3], x[4], x[5], x[9], x[10], x[11]}, log_p0 = {log_p[0], log_p[1], log_p[3]};
  const int64_t pos0 = 0, pos1 = 1;
  const double q0 =
      sr_batch_softmax_loss(nullptr, nullptr, q.data(), x0.data(), &pos0, log_p0.data(), 1, 3, D, 0.5f, 1.0f);
  const double q1 =
      sr_batch_softmax_loss(nullptr, nullptr, q.data() + D, x.data(), &pos1, log_p.data(), 1, N, D, 0.5f, 1.0f);
  EXPECT_NEAR(with_removal, (q0 + q1) / 2.0, 1e-6);
  const double kept =
      sr_batch_softmax_loss(nullptr, nullptr, q.data(), x.data(), pos.data(), log_p.data(), 2, N, D, 0.5f, 2.0f);
  EXPECT_LT(with_removal, kept);
  // Candidate 2 gets its gradient from query 1 only (for which it is an ordinary negative).
  Vec dx(N * D), dx1(N * D);
  sr_focal_softmax_loss(nullptr, dx.data(), q.data(), x.data(), pos.data(), log_p.data(), ids.data(), 2, N, D, 0.5f,
                        0.0f, 2.0f);
  sr_batch_softmax_loss(nullptr, dx1.data(), q.data() + D, x.data(), &pos1, log_p.data(), 1, N, D, 0.5f, 2.0f);
  for (int64_t k = 0; k < D; k++) EXPECT_FLOAT_EQ(dx[2 * D + k], dx1[2 * D + k]);
}

TEST(BatchSoftmax, AccidentalHitRemovalMatchesFiniteDifferences) {
  for (float gamma : {0.0f, 2.0f}) {
    Batch t(3, 6, 4, {0, 5, 2}, 51);
    const std::vector<int64_t> ids = {3, 8, 3, 1, 8, 8};  // query 0: hit at 2; query 1 (id 8): hits at 1 and 4
    expect_loss_gradients("hits removed", t, [&](float *dq, float *dx, const Batch &b) {
      return sr_focal_softmax_loss(dq, dx, b.q.data(), b.x.data(), b.pos.data(), b.log_p.data(), ids.data(), b.Bq,
                                   b.N, b.D, 0.5f, gamma, 3.0f);
    });
  }
}

// ---- InfoNCE ----------------------------------------------------------------------------

TEST(InfoNce, GradientsAndDiagonalPositives) {
  const int64_t M = 4, D = 3;
  const Batch b(M, M, D, {0, 1, 2, 3}, 130);
  expect_loss_gradients("infonce", b, [](float *dz, float *dz2, const Batch &t) {
    return sr_infonce_loss(dz, dz2, t.q.data(), t.x.data(), t.Bq, t.D, 0.5f, 6.0f);
  });
  // The same as the batch softmax with pos[i] = i and no correction.
  Vec dz(b.q.size()), dz2(b.x.size()), dq(b.q.size()), dx(b.x.size());
  const double infonce = sr_infonce_loss(dz.data(), dz2.data(), b.q.data(), b.x.data(), M, D, 0.5f, 6.0f);
  const double softmax =
      sr_batch_softmax_loss(dq.data(), dx.data(), b.q.data(), b.x.data(), b.pos.data(), nullptr, M, M, D, 0.5f, 6.0f);
  EXPECT_NEAR(infonce, softmax, 1e-7);
  kcheck::expect_all_near(dz, dq, 1e-6f, "dz");
  kcheck::expect_all_near(dz2, dx, 1e-6f, "dz2");
}

// ---- focal softmax ------------------------------------------------------------------------

TEST(FocalSoftmax, HandValueAndGradients) {
  // One query (1,0), items (1,0), (0,1), pos 0, tau 1: logits (1, 0),
  // p = e / (e + 1) = 0.7310586, -log p = ln(1 + e^-1) = 0.3132617;
  // gamma 2: (1 - p)^2 (-log p) = 0.2689414^2 * 0.3132617 = 0.0226582.
  const Vec q = {1, 0}, x = {1, 0, 0, 1};
  const std::vector<int64_t> pos = {0};
  EXPECT_NEAR(sr_focal_softmax_loss(nullptr, nullptr, q.data(), x.data(), pos.data(), nullptr, nullptr, 1, 2, 2, 1.0f,
                                    2.0f, 1.0f),
              0.0226582, 1e-6);
  // gamma 0 is the plain batch softmax: -log p.
  EXPECT_NEAR(sr_focal_softmax_loss(nullptr, nullptr, q.data(), x.data(), pos.data(), nullptr, nullptr, 1, 2, 2, 1.0f,
                                    0.0f, 1.0f),
              0.3132617, 1e-6);

  // The gradient includes the weight's derivative (gamma < 1 exercises the
  // (1-p)^(gamma-1) factor).
  const Batch b(3, 5, 4, {4, 1, 0}, 140);
  for (float gamma : {0.5f, 2.0f})
    expect_loss_gradients(gamma < 1 ? "gamma 0.5" : "gamma 2", b, [gamma](float *dq, float *dx, const Batch &t) {
      return sr_focal_softmax_loss(dq, dx, t.q.data(), t.x.data(), t.pos.data(), t.log_p.data(), nullptr, t.Bq, t.N,
                                   t.D, 0.5f, gamma, 4.0f);
    });
}

// ---- AUC ------------------------------------------------------------------------------------

TEST(AucLoss, HandValueAndGradients) {
  // D = 1: q = 1, items 0.5, 0.1, -0.3, pos 0: pairs (0.5 - 0.1), (0.5 + 0.3).
  // tau 1:   (ln(1 + e^-0.4) + ln(1 + e^-0.8)) / 2 = (0.5130153 + 0.3711007) / 2 = 0.4420580.
  // tau 0.5: (ln(1 + e^-0.8) + ln(1 + e^-1.6)) / 2 = (0.3711007 + 0.1839007) / 2 = 0.2775007.
  const Vec q = {1}, x = {0.5f, 0.1f, -0.3f};
  const std::vector<int64_t> pos = {0};
  EXPECT_NEAR(sr_auc_loss(nullptr, nullptr, q.data(), x.data(), pos.data(), 1, 3, 1, 1.0f, 1.0f), 0.4420580, 1e-6);
  EXPECT_NEAR(sr_auc_loss(nullptr, nullptr, q.data(), x.data(), pos.data(), 1, 3, 1, 0.5f, 1.0f), 0.2775007, 1e-6);

  const Batch b(3, 5, 4, {2, 2, 0}, 150);
  expect_loss_gradients("auc", b, [](float *dq, float *dx, const Batch &t) {
    return sr_auc_loss(dq, dx, t.q.data(), t.x.data(), t.pos.data(), t.Bq, t.N, t.D, 0.5f, 4.0f);
  });
}

// ---- Multi-Similarity ------------------------------------------------------------------------

TEST(MsLoss, MiningAndHandValue) {
  // D = 1: both queries are 1, so the scores are the items 0.8, 0.75, 0.3, 0.95.
  // Query 0 (pos 0, S_p = 0.8): negatives kept if > 0.7: 0.75, 0.95 (not 0.3);
  //   positive kept since 0.8 < max_neg + eps = 1.05.
  //   term = (1/2) ln(1 + e^{-2 (0.8 - 0.5)}) + (1/40) ln(1 + e^{40 (0.25)} + e^{40 (0.45)})
  //        = 0.5 * 0.4374880 + 18.0003354 / 40 = 0.2187440 + 0.4500084 = 0.6687524.
  // Query 1 (pos 3, S_p = 0.95): max_neg = 0.8, 0.95 < 0.9 fails: positive dropped;
  //   no negative > 0.85: term 0.   loss = 0.6687524 / 2 = 0.3343762.
  sr_ms_params p;
  sr_ms_params_default(&p);
  EXPECT_EQ(p.alpha, 2.0f);
  EXPECT_EQ(p.beta, 40.0f);
  EXPECT_EQ(p.lambda, 0.5f);
  EXPECT_EQ(p.epsilon, 0.1f);
  const Vec q = {1, 1}, x = {0.8f, 0.75f, 0.3f, 0.95f};
  const std::vector<int64_t> pos = {0, 3};
  Vec scores(8);
  sr_scores_forward(scores.data(), q.data(), x.data(), 2, 4, 1);
  std::vector<uint8_t> selected(8);
  sr_ms_mine(selected.data(), scores.data(), pos.data(), 2, 4, p.epsilon);
  EXPECT_EQ(selected, (std::vector<uint8_t>{1, 1, 0, 1, 0, 0, 0, 0}));
  Vec dq(2), dx(4);
  EXPECT_NEAR(sr_ms_loss(dq.data(), dx.data(), q.data(), x.data(), pos.data(), nullptr, 2, 4, 1, &p, 2.0f), 0.3343762,
              1e-6);
  // The unselected item 0.3 gets no gradient, nor does query 1, whose row
  // has no selected pair.
  EXPECT_EQ(dx[2], 0.0f);
  EXPECT_NE(dq[0], 0.0f);
  EXPECT_EQ(dq[1], 0.0f);
}

TEST(MsLoss, GradientsWithFixedMining) {
  // beta 10 keeps the finite differences well conditioned; epsilon 0.05 makes
  // the mining keep some pairs and drop others.
  const sr_ms_params p = {2.0f, 10.0f, 0.3f, 0.05f};
  const Batch b(4, 6, 3, {0, 3, 5, 1}, 160);
  Vec scores((size_t)(b.Bq * b.N));
  sr_scores_forward(scores.data(), b.q.data(), b.x.data(), b.Bq, b.N, b.D);
  std::vector<uint8_t> selected(scores.size());
  sr_ms_mine(selected.data(), scores.data(), b.pos.data(), b.Bq, b.N, p.epsilon);
  int64_t kept = 0;
  for (uint8_t s : selected) kept += s;
  ASSERT_GT(kept, 0);
  ASSERT_LT(kept, (int64_t)selected.size());

  // Mining inside the loss (NULL) agrees with the given mining result.
  Vec dq_mined(b.q.size()), dx_mined(b.x.size()), dq(b.q.size()), dx(b.x.size());
  const double mined = sr_ms_loss(dq_mined.data(), dx_mined.data(), b.q.data(), b.x.data(), b.pos.data(), nullptr,
                                  b.Bq, b.N, b.D, &p, 5.0f);
  const double fixed = sr_ms_loss(dq.data(), dx.data(), b.q.data(), b.x.data(), b.pos.data(), selected.data(), b.Bq,
                                  b.N, b.D, &p, 5.0f);
  EXPECT_NEAR(mined, fixed, 1e-7);
  kcheck::expect_all_near(dq_mined, dq, 1e-6f, "dq");
  kcheck::expect_all_near(dx_mined, dx, 1e-6f, "dx");

  // The selection is constant under the perturbation: a fixed mask.
  expect_loss_gradients("ms", b, [&](float *gq, float *gx, const Batch &t) {
    return sr_ms_loss(gq, gx, t.q.data(), t.x.data(), t.pos.data(), selected.data(), t.Bq, t.N, t.D, &p, 5.0f);
  });
}

// ---- streaming frequency estimator ---------------------------------------------------------------

TEST(FreqEstimator, HandWorkedSequence) {
  // alpha 0.5, prior gap 10, items 0..2.
  //   step 0: {0, 1}     first sightings: A0 = A1 = 0, B unchanged (10).
  //   step 2: {0}        B0 = 0.5*10 + 0.5*(2-0) = 6, A0 = 2.
  //   step 3: {0, 1, 0}  B0 = 0.5*6 + 0.5*1 = 3.5, A0 = 3; B1 = 0.5*10 + 0.5*3 = 6.5;
  //                      the repeat of 0: gap 0, B0 = 0.5*3.5 = 1.75.
  //   item 2 never seen: B2 = 10.
  sr_freq_estimator fe;
  sr_freq_init(&fe, 3, 0.5f, 10.0f);
  const std::vector<int64_t> s0 = {0, 1}, s2 = {0}, s3 = {0, 1, 0}, all = {0, 1, 2};
  Vec log_p(3);
  sr_freq_log_prob(log_p.data(), &fe, all.data(), 3);
  kcheck::expect_all_near(log_p, Vec(3, -std::log(10.0f)), 1e-6f, "prior");
  sr_freq_update(&fe, s0.data(), 2, 0);
  sr_freq_update(&fe, s2.data(), 1, 2);
  sr_freq_update(&fe, s3.data(), 3, 3);
  EXPECT_EQ(fe.last_step[0], 3);
  EXPECT_EQ(fe.last_step[1], 3);
  EXPECT_EQ(fe.last_step[2], -1);
  sr_freq_log_prob(log_p.data(), &fe, all.data(), 3);
  kcheck::expect_all_near(log_p, Vec{-std::log(1.75f), -std::log(6.5f), -std::log(10.0f)}, 1e-6f, "log p");
  sr_freq_free(&fe);
}

TEST(FreqEstimator, IndependentOfHowTheGlobalBatchIsSplit) {
  // The same global id sequence fed whole, or in the per-rank chunks of 3
  // ranks (in rank order) at each step, gives the same state.
  const int64_t n_items = 20, per_step = 12, steps = 15;
  sr_freq_estimator whole, chunked;
  sr_freq_init(&whole, n_items, 0.1f, 20.0f);
  sr_freq_init(&chunked, n_items, 0.1f, 20.0f);
  for (int64_t t = 0; t < steps; t++) {
    const Vec u = kcheck::uniform((size_t)per_step, 0.0f, 1.0f, 170 + (uint64_t)t);
    std::vector<int64_t> ids((size_t)per_step);
    // Skewed towards small ids so items repeat within a batch.
    for (int64_t k = 0; k < per_step; k++) ids[k] = (int64_t)(u[k] * u[k] * n_items);
    sr_freq_update(&whole, ids.data(), per_step, t);
    for (int64_t r = 0; r < 3; r++) sr_freq_update(&chunked, ids.data() + r * 4, 4, t);
  }
  EXPECT_EQ(std::vector<int64_t>(whole.last_step, whole.last_step + n_items),
            std::vector<int64_t>(chunked.last_step, chunked.last_step + n_items));
  EXPECT_EQ(Vec(whole.gap, whole.gap + n_items), Vec(chunked.gap, chunked.gap + n_items));
  // Frequent items have short gaps: item 0 is seen more often than item 19.
  EXPECT_LT(whole.gap[0], whole.gap[n_items - 1]);
  sr_freq_free(&whole);
  sr_freq_free(&chunked);
}

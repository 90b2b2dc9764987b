// test_feature_mask.cpp — mutual information between item features (hand
// values: identical features, independent features, a multi-valued case) and
// the CFM / RFM splits.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "kernel_check.h"

extern "C" {
#include "shardrec/error.h"
#include "shardrec/feature_mask.h"
}

using kcheck::CsrRows;

namespace {

using Rows = std::vector<std::vector<int32_t>>;

// Single-valued feature: item i has the one value values[i].
Rows single(const std::vector<int32_t> &values) {
  Rows rows;
  for (int32_t v : values) rows.push_back({v});
  return rows;
}

// MI matrix of the given features (n_cols each) over the same items.
std::vector<double> mi_matrix(const std::vector<Rows> &features, int64_t cols) {
  std::vector<CsrRows> owned;
  std::vector<sr_csr> views;
  for (const Rows &f : features) owned.emplace_back(f, cols);
  for (const CsrRows &f : owned) views.push_back(*f.get());
  std::vector<double> mi(features.size() * features.size(), -1.0);
  EXPECT_EQ(sr_feature_mutual_information(mi.data(), views.data(), (int)views.size()), SR_OK);
  return mi;
}

std::vector<uint8_t> cfm(const std::vector<double> &mi, int F, int seed_feature) {
  std::vector<uint8_t> in_a((size_t)F, 9);
  sr_cfm_split(in_a.data(), mi.data(), F, seed_feature);
  return in_a;
}

}  // namespace

// ---- mutual information ---------------------------------------------------------------

TEST(MutualInformation, IdenticalFeaturesGiveTheEntropy) {
  // Values {0,0,1,2,2,2,1,0}: frequencies 3/8, 2/8, 3/8,
  // H = -(2 * 0.375 ln 0.375 + 0.25 ln 0.25) = 1.0821955 nats.
  // A relabelled copy (0->5, 1->3, 2->0) carries the same information.
  const std::vector<int32_t> v = {0, 0, 1, 2, 2, 2, 1, 0};
  std::vector<int32_t> relabelled;
  for (int32_t x : v) relabelled.push_back(x == 0 ? 5 : x == 1 ? 3 : 0);
  const std::vector<double> mi = mi_matrix({single(v), single(relabelled)}, 6);
  for (double m : mi) EXPECT_NEAR(m, 1.0821955, 1e-6);
}

TEST(MutualInformation, IndependentFeaturesGiveZero) {
  // 12 items: a = i mod 2, b = (i / 2) mod 3: every (a, b) combination twice.
  std::vector<int32_t> a, b;
  for (int32_t i = 0; i < 12; i++) {
    a.push_back(i % 2);
    b.push_back((i / 2) % 3);
  }
  const std::vector<double> mi = mi_matrix({single(a), single(b)}, 3);
  EXPECT_NEAR(mi[1], 0.0, 1e-12);
  EXPECT_NEAR(mi[2], 0.0, 1e-12);
  EXPECT_NEAR(mi[0], std::log(2.0), 1e-9);  // H(a), two equally likely values
  EXPECT_NEAR(mi[3], std::log(3.0), 1e-9);  // H(b)
}

TEST(MutualInformation, MultiValuedJointAsDocumented) {
  // Item 0: a = {0, 1}, b = {0}; item 1: a = {1}, b = {1}; item 2: a = {0},
  // b = {} (missing b: does not count for the pair). T = 2 items.
  // Pair masses: (0,0) 1/2, (1,0) 1/2 (item 0 split over its 2 pairs), (1,1) 1.
  // Marginals: m_a = {1/2, 3/2}, m_b = {1, 1}.
  // MI = (1/T) sum m_uv ln(m_uv T / (m_u m_v))
  //    = (1/2) [0.5 ln(1 / 0.5) + 0.5 ln(1 / 1.5) + 1 ln(2 / 1.5)] = 0.2157616.
  const Rows a = {{0, 1}, {1}, {0}}, b = {{0}, {1}, {}};
  const std::vector<double> mi = mi_matrix({a, b}, 2);
  EXPECT_NEAR(mi[1], 0.2157616, 1e-6);
  EXPECT_EQ(mi[1], mi[2]);  // symmetric
}

TEST(MutualInformation, MatrixIsSymmetricAndBounded) {
  // Three single-valued features over 30 items with partial dependence.
  std::vector<int32_t> f0, f1, f2;
  const kcheck::Vec u = kcheck::uniform(60, 0.0f, 1.0f, 1);
  for (int32_t i = 0; i < 30; i++) {
    f0.push_back(i % 4);
    f1.push_back(u[i] < 0.7f ? i % 4 / 2 : (int32_t)(u[30 + i] * 2));  // mostly a function of f0
    f2.push_back((int32_t)(u[30 + i] * 3));
  }
  const std::vector<double> mi = mi_matrix({single(f0), single(f1), single(f2)}, 4);
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) {
      EXPECT_EQ(mi[a * 3 + b], mi[b * 3 + a]);
      EXPECT_GE(mi[a * 3 + b], 0.0);
      // Single-valued: MI(a, b) <= min(H(a), H(b)) = min(MI(a, a), MI(b, b)).
      EXPECT_LE(mi[a * 3 + b], std::min(mi[a * 4], mi[b * 4]) + 1e-12);
    }
  EXPECT_GT(mi[1], mi[2]);  // f1 depends on f0 more than f2 does
}

TEST(MutualInformation, RejectsFeaturesOfDifferentCorpora) {
  CsrRows a(single({0, 1, 0}), 2), b(single({1, 0}), 2);
  const sr_csr views[2] = {*a.get(), *b.get()};
  double mi[4];
  sr_error_clear();
  EXPECT_EQ(sr_feature_mutual_information(mi, views, 2), SR_EINVAL);
  EXPECT_NE(std::string(sr_error_message()).find("item feature 1 has 2 items, feature 0 has 3"), std::string::npos)
      << sr_error_message();
  sr_error_clear();
}

// ---- splits ----------------------------------------------------------------------------------

TEST(FeatureSplit, CfmTakesTheHighestMiWithTiesToTheLowerIndex) {
  // F = 5, seed 2: floor(5/2) = 2 more features. MI to the seed: f0 0.5,
  // f1 0.2, f3 0.5, f4 0.7 (and a large self-MI that must not count twice):
  // f4 first, then the 0.5 tie goes to f0. F_a = {0, 2, 4}.
  std::vector<double> mi(25, 0.0);
  const double to_seed[5] = {0.5, 0.2, 3.0, 0.5, 0.7};
  for (int f = 0; f < 5; f++) mi[2 * 5 + f] = mi[f * 5 + 2] = to_seed[f];
  EXPECT_EQ(cfm(mi, 5, 2), (std::vector<uint8_t>{1, 0, 1, 0, 1}));
  // Seed 1 (all its MIs 0 except to f2, 0.2): f2, then the tie f0 (lower index).
  EXPECT_EQ(cfm(mi, 5, 1), (std::vector<uint8_t>{1, 1, 1, 0, 0}));
  // F = 2: the rule puts both features in F_a. F = 1: the seed alone.
  const std::vector<double> mi2 = {1.0, 0.3, 0.3, 1.0};
  EXPECT_EQ(cfm(mi2, 2, 1), (std::vector<uint8_t>{1, 1}));
  EXPECT_EQ(cfm({1.0}, 1, 0), (std::vector<uint8_t>{1}));
}

TEST(FeatureSplit, RfmAndCfmSeedAreKeyedBySeedAndStep) {
  const int F = 7;
  std::set<std::vector<uint8_t>> splits;
  std::vector<int> seed_counts(F, 0);
  for (uint64_t step = 0; step < 70; step++) {
    std::vector<uint8_t> in_a(F, 9), again(F, 9);
    sr_rfm_split(in_a.data(), F, 5, step);
    sr_rfm_split(again.data(), F, 5, step);
    EXPECT_EQ(in_a, again) << "step " << step;
    int size = 0;
    for (uint8_t x : in_a) {
      EXPECT_TRUE(x == 0 || x == 1);
      size += x;
    }
    EXPECT_EQ(size, F / 2 + 1);  // the same size as CFM's F_a
    splits.insert(in_a);
    const int s = sr_cfm_seed_feature(5, step, F);
    ASSERT_TRUE(s >= 0 && s < F);
    EXPECT_EQ(sr_cfm_seed_feature(5, step, F), s);
    seed_counts[s]++;
  }
  // 35 possible subsets of 4 out of 7: 70 steps see many of them.
  EXPECT_GT(splits.size(), 15u);
  // Every feature is drawn as the CFM seed at least once in 70 steps
  // (each misses all 70 with probability (6/7)^70 < 2e-5).
  for (int f = 0; f < F; f++) EXPECT_GT(seed_counts[f], 0) << "feature " << f;
  // Another run seed gives another split sequence.
  std::vector<uint8_t> a(F), b(F);
  int differ = 0;
  for (uint64_t step = 0; step < 10; step++) {
    sr_rfm_split(a.data(), F, 5, step);
    sr_rfm_split(b.data(), F, 6, step);
    differ += a != b;
  }
  EXPECT_GT(differ, 0);
}

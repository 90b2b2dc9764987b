// test_metrics.cpp — ranking metrics (methods.md §1): parsing, top-K selection,
// hand-computed per-user values, batch accumulation, formatting, popularity.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "test_util.h"

extern "C" {
#include <jansson.h>

#include "shardrec/csr.h"
#include "shardrec/error.h"
#include "shardrec/metrics.h"
#include "shardrec/rng.h"
}

namespace {

// A binary CSR matrix from sorted rows, checked valid; the caller frees it.
sr_csr make_csr(const std::vector<std::vector<int32_t>> &rows, int64_t n_cols) {
  sr_csr m = srtest::csr_from_rows(rows, n_cols);
  EXPECT_EQ(sr_csr_validate(&m, "test matrix"), SR_OK) << sr_error_message();
  return m;
}

sr_metrics make_metrics(const std::vector<const char *> &names) {
  sr_metrics m;
  EXPECT_EQ(sr_metrics_init(&m, names.data(), (int)names.size()), SR_OK) << sr_error_message();
  return m;
}

double metric_mean(const sr_metrics &m, const char *name) {
  int i = sr_metrics_find(&m, name);
  EXPECT_GE(i, 0) << name;
  return i < 0 ? NAN : sr_metrics_mean(&m, i);
}

// 1 / log2(r + 1): the discount of 1-based rank r.
double disc(int r) { return 1.0 / std::log2(r + 1.0); }

// Reference ranking by a full sort: score descending, ties to the lower index.
std::vector<int32_t> full_sort_ranking(const std::vector<float> &scores) {
  std::vector<int32_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return scores[a] != scores[b] ? scores[a] > scores[b] : a < b; });
  return order;
}

}  // namespace

// ---- names ------------------------------------------------------------------------

TEST(EvalNames, ParseIsCaseInsensitiveAndNamesAreCanonical) {
  struct Case {
    const char *in;
    sr_metric_kind kind;
    int k;
    const char *canonical;
  } cases[] = {
      {"recall@20", SR_METRIC_RECALL, 20, "recall@20"},
      {"Recall_Plain@50", SR_METRIC_RECALL_PLAIN, 50, "recall_plain@50"},
      {"NDCG@100", SR_METRIC_NDCG, 100, "ndcg@100"},
      {"mRr@1", SR_METRIC_MRR, 1, "mrr@1"},
      {"ndcg@007", SR_METRIC_NDCG, 7, "ndcg@7"},
  };
  for (const Case &c : cases) {
    sr_metric_spec spec;
    ASSERT_EQ(sr_metric_parse(c.in, &spec), SR_OK) << c.in << ": " << sr_error_message();
    EXPECT_EQ(spec.kind, c.kind) << c.in;
    EXPECT_EQ(spec.k, c.k) << c.in;
    char buf[32];
    sr_metric_name(&spec, buf, sizeof buf);
    EXPECT_STREQ(buf, c.canonical);
  }
}

TEST(EvalNames, BadNamesAreRejectedWithTheNameAndTheValidForms) {
  const char *bad[] = {"",          "recall",          "recall@",   "recall@0",           "recall@-5",
                       "recall@+5", "recall@ 5",       "recall@5x", "precision@10",       "@10",
                       "ndcg@10@2", "recall_plainx@3", "recal@3",   "recall@99999999999", " ndcg@10"};
  for (const char *name : bad) {
    sr_error_clear();
    sr_metric_spec spec;
    EXPECT_EQ(sr_metric_parse(name, &spec), SR_EINVAL) << "'" << name << "' was accepted";
    std::string msg = sr_error_message();
    EXPECT_NE(msg.find("'" + std::string(name) + "'"), std::string::npos) << msg;
    for (const char *form : {"recall@K", "recall_plain@K", "ndcg@K", "mrr@K"})
      EXPECT_NE(msg.find(form), std::string::npos) << msg;
  }
  sr_error_clear();
}

TEST(EvalNames, InitFindAndMaxK) {
  sr_metrics m = make_metrics({"recall@20", "recall@50", "NDCG@100", "mrr@10"});
  EXPECT_EQ(m.n, 4);
  EXPECT_EQ(m.n_users, 0);
  EXPECT_EQ(sr_metrics_max_k(&m), 100);
  EXPECT_EQ(sr_metrics_find(&m, "recall@50"), 1);
  EXPECT_EQ(sr_metrics_find(&m, "ndcg@100"), 2);
  EXPECT_EQ(sr_metrics_find(&m, "MRR@10"), 3);
  // Absent or malformed names are "not found" without recording an error.
  sr_error_clear();
  EXPECT_EQ(sr_metrics_find(&m, "recall@30"), -1);
  EXPECT_EQ(sr_metrics_find(&m, "recall_plain@20"), -1);
  EXPECT_EQ(sr_metrics_find(&m, "bogus"), -1);
  EXPECT_STREQ(sr_error_message(), "");

  m.sum[0] = 3.0;
  m.n_users = 7;
  sr_metrics_reset(&m);
  EXPECT_EQ(m.sum[0], 0.0);
  EXPECT_EQ(m.n_users, 0);
  EXPECT_EQ(sr_metrics_mean(&m, 0), 0.0);  // no users: defined as 0
  EXPECT_EQ(m.n, 4);
}

TEST(EvalNames, InitRejectsBadListsWithContext) {
  sr_metrics m;
  const char *dup[] = {"ndcg@10", "recall@5", "NDCG@10"};
  EXPECT_EQ(sr_metrics_init(&m, dup, 3), SR_EINVAL);
  EXPECT_NE(std::strstr(sr_error_message(), "twice"), nullptr) << sr_error_message();
  EXPECT_NE(std::strstr(sr_error_message(), "NDCG@10"), nullptr) << sr_error_message();

  const char *bad[] = {"recall@20", "hits@3"};
  EXPECT_EQ(sr_metrics_init(&m, bad, 2), SR_EINVAL);
  EXPECT_NE(std::strstr(sr_error_message(), "'hits@3'"), nullptr) << sr_error_message();

  EXPECT_EQ(sr_metrics_init(&m, bad, 0), SR_EINVAL);
  std::vector<const char *> many(SR_MAX_METRICS + 1, "recall@1");
  EXPECT_EQ(sr_metrics_init(&m, many.data(), (int)many.size()), SR_EINVAL);
  sr_error_clear();
}

// ---- top-K ------------------------------------------------------------------------

TEST(EvalTopk, TiesGoToTheLowerIndex) {
  // Scores 2 at items 1, 2, 4; score 1 at items 0, 3.
  const float scores[] = {1, 2, 2, 1, 2};
  int32_t top[5];
  sr_topk(top, scores, 5, 3);
  EXPECT_EQ(std::vector<int32_t>(top, top + 3), (std::vector<int32_t>{1, 2, 4}));
  sr_topk(top, scores, 5, 5);
  EXPECT_EQ(std::vector<int32_t>(top, top + 5), (std::vector<int32_t>{1, 2, 4, 0, 3}));
  const float flat[] = {7, 7, 7, 7, 7, 7};
  sr_topk(top, flat, 6, 4);
  EXPECT_EQ(std::vector<int32_t>(top, top + 4), (std::vector<int32_t>{0, 1, 2, 3}));
}

TEST(EvalTopk, MinusInfinityAndNaNRankLastDeterministically) {
  const float scores[] = {-INFINITY, 1.0f, NAN, -INFINITY, 0.0f, -5.0f};
  int32_t top[6];
  sr_topk(top, scores, 6, 6);
  // Finite by score, then the -inf entries by index, then NaN.
  EXPECT_EQ(std::vector<int32_t>(top, top + 6), (std::vector<int32_t>{1, 4, 5, 0, 3, 2}));
  sr_topk(top, scores, 6, 2);
  EXPECT_EQ(std::vector<int32_t>(top, top + 2), (std::vector<int32_t>{1, 4}));
}

TEST(EvalTopk, MatchesAFullSortOnRandomData) {
  const int64_t C = 20000;
  std::vector<float> scores(C);
  sr_rng r;
  sr_rng_init(&r, 11, SR_RNG_SYNTH, 0, 0);
  // Few distinct values force many ties; some -inf mimic excluded fold-in items.
  for (float &s : scores) s = sr_rng_below(&r, 10) == 0 ? -INFINITY : (float)sr_rng_below(&r, 500) * 0.25f;
  std::vector<int32_t> want = full_sort_ranking(scores);
  for (int k : {1, 2, 20, 100, 1000, (int)C}) {
    std::vector<int32_t> top(k);
    sr_topk(top.data(), scores.data(), C, k);
    EXPECT_TRUE(std::equal(top.begin(), top.end(), want.begin())) << "k = " << k;
  }
  // Distinct continuous scores as well.
  for (float &s : scores) s = sr_rng_normal(&r);
  want = full_sort_ranking(scores);
  std::vector<int32_t> top(100);
  sr_topk(top.data(), scores.data(), C, 100);
  EXPECT_TRUE(std::equal(top.begin(), top.end(), want.begin()));
}

// ---- per-user values ---------------------------------------------------------------

TEST(EvalValue, HeldOutLargerThanKNormalisesByK) {
  // Ranking 0,1,2,3,4,5,6,7; held-out {0,1,2,5} (|H| = 4).
  const int32_t top[] = {0, 1, 2, 3, 4, 5, 6, 7};
  const int32_t held[] = {0, 1, 2, 5};
  auto value = [&](sr_metric_kind kind, int k) {
    sr_metric_spec spec = {kind, k};
    return sr_metric_value(&spec, top, 8, held, 4);
  };
  // K = 2: top {0,1}, 2 hits. recall = 2 / min(2,4) = 1; recall_plain = 2 / 4 = 0.5.
  EXPECT_DOUBLE_EQ(value(SR_METRIC_RECALL, 2), 1.0);
  EXPECT_DOUBLE_EQ(value(SR_METRIC_RECALL_PLAIN, 2), 0.5);
  // NDCG@2: DCG = 1/log2 2 + 1/log2 3 = IDCG over min(2,4) = 2 ranks -> 1.
  EXPECT_DOUBLE_EQ(value(SR_METRIC_NDCG, 2), 1.0);
  // K = 5: hits 0,1,2 (item 5 is at rank 6). recall = 3 / min(5,4) = 0.75 = recall_plain.
  EXPECT_DOUBLE_EQ(value(SR_METRIC_RECALL, 5), 0.75);
  EXPECT_DOUBLE_EQ(value(SR_METRIC_RECALL_PLAIN, 5), 0.75);
  // NDCG@5 = (1 + 1/log2 3 + 1/log2 4) / (1 + 1/log2 3 + 1/log2 4 + 1/log2 5)
  //        = 2.1309298 / 2.5616063 = 0.8318725.
  EXPECT_DOUBLE_EQ(value(SR_METRIC_NDCG, 5), (disc(1) + disc(2) + disc(3)) / (disc(1) + disc(2) + disc(3) + disc(4)));
  EXPECT_NEAR(value(SR_METRIC_NDCG, 5), 0.8318725, 1e-7);
  // K = 3: recall = 3/3 = 1 but recall_plain = 3/4.
  EXPECT_DOUBLE_EQ(value(SR_METRIC_RECALL, 3), 1.0);
  EXPECT_DOUBLE_EQ(value(SR_METRIC_RECALL_PLAIN, 3), 0.75);
  EXPECT_DOUBLE_EQ(value(SR_METRIC_MRR, 3), 1.0);  // first hit at rank 1
}

TEST(EvalValue, ShortTopListAndMrrPosition) {
  const int32_t held[] = {3, 9};
  // Only 3 ranked items although K = 10: the rest counts as misses.
  const int32_t top[] = {4, 9, 3};
  sr_metric_spec recall = {SR_METRIC_RECALL, 10}, mrr = {SR_METRIC_MRR, 10}, mrr1 = {SR_METRIC_MRR, 1};
  EXPECT_DOUBLE_EQ(sr_metric_value(&recall, top, 3, held, 2), 1.0);  // 2 hits / min(10,2)
  EXPECT_DOUBLE_EQ(sr_metric_value(&mrr, top, 3, held, 2), 0.5);     // first hit (9) at rank 2
  EXPECT_DOUBLE_EQ(sr_metric_value(&mrr1, top, 3, held, 2), 0.0);    // rank 2 is outside the top 1
  EXPECT_DOUBLE_EQ(sr_metric_value(&recall, top, 1, held, 2), 0.0);  // only item 4 is ranked
}

// ---- batches ------------------------------------------------------------------------

// 6 items, held-out {1,4}, fold-in {0}.
// Scores 0.95 0.3 0.9 0.2 0.8 0.5 (item 0..5); item 0 is excluded, so the ranking is
// 2 (0.9), 4 (0.8), 5 (0.5), 1 (0.3), 3 (0.2), 0 (-inf): held-out items at ranks 2 and 4.
static const std::vector<float> kSixScores = {0.95f, 0.3f, 0.9f, 0.2f, 0.8f, 0.5f};
static const std::vector<const char *> kSixMetrics = {"recall@1", "recall@2", "recall_plain@2", "ndcg@2", "mrr@1",
                                                      "mrr@2",    "recall@4", "ndcg@4",         "ndcg@10"};

TEST(EvalAccumulate, HandComputedUserWithFoldIn) {
  sr_csr foldin = make_csr({{0}}, 6), heldout = make_csr({{1, 4}}, 6);
  std::vector<float> scores = kSixScores;
  sr_metrics m = make_metrics(kSixMetrics);
  sr_metrics_accumulate(&m, scores.data(), 1, 6, &foldin, &heldout);
  EXPECT_EQ(m.n_users, 1);
  EXPECT_EQ(scores[0], -INFINITY);  // fold-in score overwritten
  EXPECT_EQ(scores[2], 0.9f);       // others untouched
  // recall@1: top {2}, 0 hits -> 0.  recall@2: top {2,4}, 1 hit / min(2,2) -> 0.5.
  EXPECT_DOUBLE_EQ(metric_mean(m, "recall@1"), 0.0);
  EXPECT_DOUBLE_EQ(metric_mean(m, "recall@2"), 0.5);
  EXPECT_DOUBLE_EQ(metric_mean(m, "recall_plain@2"), 0.5);  // 1 / |H| = 1/2 (|H| <= K: same)
  // ndcg@2 = (1/log2 3) / (1 + 1/log2 3) = 0.6309298 / 1.6309298 = 0.3868528.
  EXPECT_DOUBLE_EQ(metric_mean(m, "ndcg@2"), disc(2) / (disc(1) + disc(2)));
  EXPECT_NEAR(metric_mean(m, "ndcg@2"), 0.3868528, 1e-7);
  // mrr@1 = 0 (rank 1 is item 2); mrr@2 = 1/2 (item 4 at rank 2).
  EXPECT_DOUBLE_EQ(metric_mean(m, "mrr@1"), 0.0);
  EXPECT_DOUBLE_EQ(metric_mean(m, "mrr@2"), 0.5);
  // recall@4: top {2,4,5,1}, 2 hits / min(4,2) = 1.
  EXPECT_DOUBLE_EQ(metric_mean(m, "recall@4"), 1.0);
  // ndcg@4 = (1/log2 3 + 1/log2 5) / (1 + 1/log2 3) = 1.0616063 / 1.6309298 = 0.6509209.
  EXPECT_DOUBLE_EQ(metric_mean(m, "ndcg@4"), (disc(2) + disc(4)) / (disc(1) + disc(2)));
  EXPECT_NEAR(metric_mean(m, "ndcg@4"), 0.6509209, 1e-7);
  // K = 10 > C = 6: the same two hits, IDCG still over min(10,2) = 2 ranks.
  EXPECT_DOUBLE_EQ(metric_mean(m, "ndcg@10"), metric_mean(m, "ndcg@4"));
  sr_csr_free(&foldin);
  sr_csr_free(&heldout);
}

TEST(EvalAccumulate, FoldInExclusionChangesTheRanking) {
  // Without exclusion item 0 (0.95) leads: ranking 0,2,4,5,1,3.
  sr_csr heldout = make_csr({{1, 4}}, 6);
  std::vector<float> scores = kSixScores;
  sr_metrics m = make_metrics(kSixMetrics);
  sr_metrics_accumulate(&m, scores.data(), 1, 6, nullptr, &heldout);
  EXPECT_EQ(scores[0], 0.95f);
  EXPECT_DOUBLE_EQ(metric_mean(m, "recall@2"), 0.0);  // top {0,2}: no hit (0.5 with exclusion)
  EXPECT_DOUBLE_EQ(metric_mean(m, "mrr@2"), 0.0);
  EXPECT_DOUBLE_EQ(metric_mean(m, "recall@4"), 0.5);  // top {0,2,4,5}: 1 hit / 2
  // ndcg@4: hit at rank 3 -> (1/log2 4) / (1 + 1/log2 3) = 0.5 / 1.6309298 = 0.3065736.
  EXPECT_NEAR(metric_mean(m, "ndcg@4"), 0.3065736, 1e-7);
  sr_csr_free(&heldout);
}

TEST(EvalAccumulate, ExcludedItemNeverCountsAsHit) {
  // A malformed split with item 0 in both fold-in and held-out, and K = C = 4:
  // item 0 fills the list at -inf but was excluded, so only item 3 is a hit.
  sr_csr foldin = make_csr({{0}}, 4), heldout = make_csr({{0, 3}}, 4);
  std::vector<float> scores = {5, 4, 3, 2};
  sr_metrics m = make_metrics({"recall@4", "mrr@4"});
  sr_metrics_accumulate(&m, scores.data(), 1, 4, &foldin, &heldout);
  EXPECT_DOUBLE_EQ(metric_mean(m, "recall@4"), 0.5);     // 1 hit / min(4,2)
  EXPECT_DOUBLE_EQ(metric_mean(m, "mrr@4"), 1.0 / 3.0);  // ranking 1,2,3: item 3 at rank 3
  sr_csr_free(&foldin);
  sr_csr_free(&heldout);
}

TEST(EvalAccumulate, UsersWithoutHeldOutAreSkipped) {
  // Three users over 4 items, the middle one has fold-in but no held-out items.
  sr_csr foldin = make_csr({{}, {1}, {}}, 4), heldout = make_csr({{0}, {}, {2, 3}}, 4);
  std::vector<float> scores = {
      0.1f, 0.4f, 0.3f, 0.2f,  // user 0: ranking 1,2,3,0 -> item 0 at rank 4
      0.9f, 0.8f, 0.7f, 0.6f,  // user 1: skipped
      0.1f, 0.2f, 0.4f, 0.3f,  // user 2: ranking 2,3,1,0 -> hits at ranks 1 and 2
  };
  sr_metrics m = make_metrics({"recall@2", "mrr@4"});
  sr_metrics_accumulate(&m, scores.data(), 3, 4, &foldin, &heldout);
  EXPECT_EQ(m.n_users, 2);
  EXPECT_EQ(scores[4 + 1], -INFINITY);  // the skipped user's fold-in is still excluded
  // recall@2: user 0 -> 0 / min(2,1) = 0; user 2 -> 2 / min(2,2) = 1. Sum 1, mean 0.5.
  EXPECT_DOUBLE_EQ(m.sum[0], 1.0);
  EXPECT_DOUBLE_EQ(metric_mean(m, "recall@2"), 0.5);
  // mrr@4: user 0 -> 1/4; user 2 -> 1/1. Mean (0.25 + 1) / 2 = 0.625.
  EXPECT_DOUBLE_EQ(metric_mean(m, "mrr@4"), 0.625);
  // A second batch adds to the same sums (as ranks' partial sums would).
  std::vector<float> more = {0.1f, 0.4f, 0.3f, 0.2f, 0.9f, 0.8f, 0.7f, 0.6f, 0.1f, 0.2f, 0.4f, 0.3f};
  sr_metrics_accumulate(&m, more.data(), 3, 4, &foldin, &heldout);
  EXPECT_EQ(m.n_users, 4);
  EXPECT_DOUBLE_EQ(metric_mean(m, "mrr@4"), 0.625);
  sr_csr_free(&foldin);
  sr_csr_free(&heldout);
}

// Metric values straight from the definitions in methods.md §1, on a full-sort ranking.
static double reference_value(const char *name, const std::vector<int32_t> &ranking,
                              const std::vector<int32_t> &held) {
  sr_metric_spec spec;
  EXPECT_EQ(sr_metric_parse(name, &spec), SR_OK);
  auto is_held = [&](int32_t i) { return std::find(held.begin(), held.end(), i) != held.end(); };
  int k = std::min<int>(spec.k, (int)ranking.size());
  double hits = 0, dcg = 0, rr = 0, idcg = 0;
  for (int r = 1; r <= k; r++) {
    if (!is_held(ranking[r - 1])) continue;
    hits += 1;
    dcg += disc(r);
    if (rr == 0) rr = 1.0 / r;
  }
  for (int r = 1; r <= std::min<int>(spec.k, (int)held.size()); r++) idcg += disc(r);
  switch (spec.kind) {
    case SR_METRIC_RECALL:
      return hits / std::min<double>(spec.k, (double)held.size());
    case SR_METRIC_RECALL_PLAIN:
      return hits / (double)held.size();
    case SR_METRIC_NDCG:
      return dcg / idcg;
    case SR_METRIC_MRR:
      return rr;
  }
  return NAN;
}

TEST(EvalAccumulate, BatchMeanEqualsMeanOfPerUserReferenceValues) {
  const int64_t R = 40, C = 300;
  const std::vector<const char *> names = {"recall@5", "recall@20", "recall_plain@20",
                                           "ndcg@10",  "ndcg@50",   "mrr@10"};
  sr_rng r;
  sr_rng_init(&r, 5, SR_RNG_SYNTH, 1, 0);
  std::vector<std::vector<int32_t>> fold_rows(R), held_rows(R);
  std::vector<float> scores(R * C);
  for (int64_t u = 0; u < R; u++) {
    for (int32_t i = 0; i < C; i++) {
      uint64_t d = sr_rng_below(&r, 20);  // ~10% fold-in, ~5% held-out, disjoint
      if (d < 2) fold_rows[u].push_back(i);
      if (d == 2 && u % 7 != 3) held_rows[u].push_back(i);  // every 7th user has no held-out
      scores[u * C + i] = (float)sr_rng_below(&r, 64);      // coarse: many ties
    }
  }
  std::vector<double> reference_sum(names.size(), 0.0);
  int64_t evaluated = 0;
  for (int64_t u = 0; u < R; u++) {
    if (held_rows[u].empty()) continue;
    std::vector<float> row(scores.begin() + u * C, scores.begin() + (u + 1) * C);
    std::vector<int32_t> ranking;
    for (int32_t i : full_sort_ranking(row))
      if (!std::binary_search(fold_rows[u].begin(), fold_rows[u].end(), i)) ranking.push_back(i);
    for (size_t j = 0; j < names.size(); j++) reference_sum[j] += reference_value(names[j], ranking, held_rows[u]);
    evaluated++;
  }
  ASSERT_GT(evaluated, 20);

  sr_csr foldin = make_csr(fold_rows, C), heldout = make_csr(held_rows, C);
  sr_metrics m = make_metrics(names);
  sr_metrics_accumulate(&m, scores.data(), R, C, &foldin, &heldout);
  EXPECT_EQ(m.n_users, evaluated);
  for (size_t j = 0; j < names.size(); j++) {
    EXPECT_NEAR(m.sum[j], reference_sum[j], 1e-9) << names[j];
    EXPECT_NEAR(sr_metrics_mean(&m, (int)j), reference_sum[j] / evaluated, 1e-12) << names[j];
  }
  sr_csr_free(&foldin);
  sr_csr_free(&heldout);
}

// ---- report and baseline ------------------------------------------------------------

TEST(EvalFormat, FourDecimalsTwoSpaces) {
  sr_metrics m = make_metrics({"recall@20", "Recall@50", "ndcg@100"});
  m.n_users = 2;
  m.sum[0] = 0.7902;  // means 0.3951, 0.5370, 0.4260
  m.sum[1] = 1.0740;
  m.sum[2] = 0.8520;
  char buf[128];
  sr_metrics_format(&m, buf, sizeof buf);
  EXPECT_STREQ(buf, "recall@20 0.3951  recall@50 0.5370  ndcg@100 0.4260");
  // A short buffer truncates safely.
  char small[12];
  std::memset(small, 'x', sizeof small);
  sr_metrics_format(&m, small, sizeof small);
  EXPECT_STREQ(small, "recall@20 0");
}

TEST(EvalPopularity, CountsTrainingRowsPerItem) {
  // Rows {0,2}, {2}, {1,2}, {}: item 0 in 1 row, item 1 in 1, item 2 in 3, item 3 in none.
  sr_csr train = make_csr({{0, 2}, {2}, {1, 2}, {}}, 4);
  std::vector<float> scores(4, -1.0f);
  sr_popularity_scores(scores.data(), &train);
  EXPECT_EQ(scores, (std::vector<float>{1, 1, 3, 0}));
  // The baseline through the metrics: held-out {2} with nothing folded in is ranked first.
  sr_csr heldout = make_csr({{2}}, 4);
  sr_metrics m = make_metrics({"mrr@4"});
  sr_metrics_accumulate(&m, scores.data(), 1, 4, nullptr, &heldout);
  EXPECT_DOUBLE_EQ(metric_mean(m, "mrr@4"), 1.0);
  sr_csr_free(&train);
  sr_csr_free(&heldout);
}

// ---- popularity slices --------------------------------------------------------------

namespace {

std::vector<int> slices_of(const std::vector<int64_t> &counts, double head, double torso) {
  const double shares[2] = {head, torso};
  std::vector<uint8_t> slice(counts.size(), 255);
  sr_popularity_slices(counts.data(), (int64_t)counts.size(), shares, slice.data());
  return std::vector<int>(slice.begin(), slice.end());
}

constexpr int H = SR_SLICE_HEAD, T = SR_SLICE_TORSO, L = SR_SLICE_TAIL, C = SR_SLICE_COLD;

}  // namespace

// N = 10 interactions; the items in popularity order hold 5, 3, 2 (item ids
// shuffled so that the order is by count, not by id) and one has none.
TEST(EvalSlices, ThresholdsByCumulativeShare) {
  const std::vector<int64_t> counts = {2, 5, 0, 3};
  // Thirds (3.33, 6.67): item 1 has 0 interactions above it (head), item 3
  // has 5 (>= 3.33: torso), item 0 has 8 (>= 6.67: tail), item 2 none (cold).
  EXPECT_EQ(slices_of(counts, 1.0 / 3, 2.0 / 3), (std::vector<int>{L, H, C, T}));
  // An item on a threshold: with shares 0.5 and 0.8, the items above item 3
  // hold exactly 5 = 0.5 N, so it starts the torso; those above item 0 hold
  // exactly 8 = 0.8 N, so it starts the tail.
  EXPECT_EQ(slices_of(counts, 0.5, 0.8), (std::vector<int>{L, H, C, T}));
  // Just past them, each moves up a slice.
  EXPECT_EQ(slices_of(counts, 0.51, 0.81), (std::vector<int>{T, H, C, H}));
}

TEST(EvalSlices, TiedItemsShareASliceAndSlicesMayBeEmpty) {
  // Three items of 3 interactions: none has any above it, so all are head
  // although together they hold 90 % (more than 0.5); the last one (9 above,
  // >= 0.8 N) is tail; the torso is empty.
  EXPECT_EQ(slices_of({3, 1, 3, 3}, 0.5, 0.8), (std::vector<int>{H, L, H, H}));
  // A split whose tail is empty: 4, 4, 2 with shares 0.5 and 0.9: the two
  // 4s are head, the 2 (8 above, < 9) is torso, nothing is tail.
  EXPECT_EQ(slices_of({4, 2, 4}, 0.5, 0.9), (std::vector<int>{H, T, H}));
  // Every item equally popular: all head.
  EXPECT_EQ(slices_of({7, 7, 7}, 1.0 / 3, 2.0 / 3), (std::vector<int>{H, H, H}));
}

// Items 0, 1 head, 2 torso, 3, 4 tail, 5 cold. Scores rank 3, 0, 1, 5, 2, 4.
// User A (nothing folded in) holds out {0, 3, 5}; user B has 3 folded in
// (ranking 0, 1, 5, 2, 4) and holds out {2, 4}. Metrics recall@2, ndcg@4.
TEST(EvalSlices, EachSliceCountsItsHeldOutItemsInTheFullRanking) {
  const std::vector<uint8_t> item_slice = {H, H, T, L, L, C};
  const std::vector<float> one = {0.8f, 0.5f, 0.2f, 0.9f, 0.1f, 0.3f};
  std::vector<float> scores(one);
  scores.insert(scores.end(), one.begin(), one.end());
  sr_csr foldin = make_csr({{}, {3}}, 6), heldout = make_csr({{0, 3, 5}, {2, 4}}, 6);
  sr_metrics m = make_metrics({"recall@2", "ndcg@4"});
  sr_metrics_set_slices(&m, item_slice.data(), 6);
  EXPECT_EQ(m.slice_items[H], 2);
  EXPECT_EQ(m.slice_items[T], 1);
  EXPECT_EQ(m.slice_items[L], 2);
  EXPECT_EQ(m.slice_items[C], 1);
  sr_metrics_accumulate(&m, scores.data(), 2, 6, &foldin, &heldout);
  // Overall: A hits at ranks 1, 2, 4; B at rank 4 (item 2; item 4 is fifth).
  const double a_ndcg = (1 + disc(2) + disc(4)) / (1 + disc(2) + disc(3)), b_ndcg = disc(4) / (1 + disc(2));
  EXPECT_EQ(m.n_users, 2);
  EXPECT_DOUBLE_EQ(metric_mean(m, "recall@2"), (1.0 + 0.0) / 2);
  EXPECT_DOUBLE_EQ(metric_mean(m, "ndcg@4"), (a_ndcg + b_ndcg) / 2);
  // head: A's {0} at rank 2; torso: B's {2} at rank 4; tail: A's {3} at rank 1
  // and B's {4} at rank 5; cold: A's {5} at rank 4.
  EXPECT_EQ(m.slice_users[H], 1);
  EXPECT_EQ(m.slice_users[T], 1);
  EXPECT_EQ(m.slice_users[L], 2);
  EXPECT_EQ(m.slice_users[C], 1);
  EXPECT_DOUBLE_EQ(sr_metrics_slice_mean(&m, H, 0), 1.0);
  EXPECT_DOUBLE_EQ(sr_metrics_slice_mean(&m, H, 1), disc(2));
  EXPECT_DOUBLE_EQ(sr_metrics_slice_mean(&m, T, 0), 0.0);
  EXPECT_DOUBLE_EQ(sr_metrics_slice_mean(&m, T, 1), disc(4));
  EXPECT_DOUBLE_EQ(sr_metrics_slice_mean(&m, L, 0), (1.0 + 0.0) / 2);
  EXPECT_DOUBLE_EQ(sr_metrics_slice_mean(&m, L, 1), (1.0 + 0.0) / 2);
  EXPECT_DOUBLE_EQ(sr_metrics_slice_mean(&m, C, 0), 0.0);
  EXPECT_DOUBLE_EQ(sr_metrics_slice_mean(&m, C, 1), disc(4));
  // The report: a scorer that ranks cold items by what it learned shows their
  // figures; one that cannot says so; reset keeps the slices, not the sums.
  char line[256];
  m.unseen_items_ranked = 1;
  sr_metrics_format_slice(&m, C, line, sizeof line);
  EXPECT_STREQ(line, "cold  1 items  1 users  recall@2 0.0000  ndcg@4 0.4307");
  m.unseen_items_ranked = 0;
  sr_metrics_format_slice(&m, C, line, sizeof line);
  EXPECT_STREQ(line,
               "cold  1 items  1 users  (not scored: this model has no item features to rank items unseen in "
               "training by)");
  // The metrics.jsonl member: each slice's counts and figures, or its note.
  json_t *json = sr_metrics_slices_json(&m);
  ASSERT_TRUE(json_is_object(json));
  char *text = json_dumps(json, JSON_COMPACT | JSON_REAL_PRECISION(6));
  EXPECT_STREQ(text,
               "{\"head\":{\"items\":2,\"users\":1,\"recall@2\":1.0,\"ndcg@4\":0.63093},"
               "\"torso\":{\"items\":1,\"users\":1,\"recall@2\":0.0,\"ndcg@4\":0.430677},"
               "\"tail\":{\"items\":2,\"users\":2,\"recall@2\":0.5,\"ndcg@4\":0.5},"
               "\"cold\":{\"items\":1,\"users\":1,\"note\":\"not scored: this model has no item features to rank "
               "items unseen in training by\"}}");
  EXPECT_DOUBLE_EQ(json_real_value(json_object_get(json_object_get(json, "torso"), "ndcg@4")), disc(4));
  free(text);
  json_decref(json);
  sr_metrics_reset(&m);
  EXPECT_EQ(m.n_slices, SR_N_SLICES);
  EXPECT_EQ(m.slice_users[L], 0);
  sr_metrics_format_slice(&m, L, line, sizeof line);
  EXPECT_STREQ(line, "tail  2 items  0 users  (no held-out item in this slice)");
  sr_csr_free(&foldin);
  sr_csr_free(&heldout);
}

TEST(EvalSlices, WithoutSlicesNothingIsReported) {
  sr_metrics m = make_metrics({"recall@2"});
  EXPECT_EQ(sr_metrics_slices_json(&m), nullptr);
}

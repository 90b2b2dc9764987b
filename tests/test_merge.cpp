// test_merge.cpp — checkpoint merging (model soups): every method on tiny
// registries with hand-computed answers, the greedy soup's strict-improvement
// rule, layout checks; then `shardrec merge` and `shardrec inspect` on small
// trained models.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

extern "C" {
#include "shardrec/checkpoint.h"
#include "shardrec/error.h"
#include "shardrec/h5io.h"
#include "shardrec/merge.h"
#include "shardrec/params.h"
}

namespace {

struct Tensor {
  const char *name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// A finalized parameter registry holding the given tensors, in that order.
class Registry {
 public:
  explicit Registry(const std::vector<Tensor> &tensors) {
    sr_params_init(&ps_);
    for (const Tensor &t : tensors)
      sr_params_add(&ps_, t.name, t.shape.size() > 1 ? SR_PARAM_WEIGHT : SR_PARAM_BIAS, (int)t.shape.size(),
                    t.shape.data());
    sr_params_finalize(&ps_);
    for (size_t i = 0; i < tensors.size(); i++)
      for (size_t j = 0; j < tensors[i].values.size(); j++) ps_.items[i].value[j] = tensors[i].values[j];
  }
  // The layout most tests use: w (2 x 2) then b (2); values are w's 4 then b's 2.
  explicit Registry(const std::vector<float> &six)
      : Registry({{"w", {2, 2}, {six[0], six[1], six[2], six[3]}}, {"b", {2}, {six[4], six[5]}}}) {}
  Registry(const Registry &) = delete;
  Registry &operator=(const Registry &) = delete;
  ~Registry() { sr_params_free(&ps_); }

  sr_params *get() { return &ps_; }
  std::vector<float> values() const {
    std::vector<float> v;
    for (int i = 0; i < ps_.count; i++)
      v.insert(v.end(), ps_.items[i].value, ps_.items[i].value + ps_.items[i].numel);
    return v;
  }

 private:
  sr_params ps_;
};

std::vector<float> add(const std::vector<float> &a, const std::vector<float> &b) {
  std::vector<float> c(a.size());
  for (size_t i = 0; i < a.size(); i++) c[i] = a[i] + b[i];
  return c;
}

sr_merge_opts opts_for(sr_merge_method m) {
  sr_merge_opts o;
  sr_merge_opts_default(&o, m);
  return o;
}

// Merges the registries with `o`; returns the merged values.
std::vector<float> merge(const sr_merge_opts &o, Registry *base, const std::vector<Registry *> &ingr) {
  std::vector<const sr_params *> ps;
  for (Registry *r : ingr) ps.push_back(r->get());
  Registry out(std::vector<float>(6, -99.0f));
  EXPECT_EQ(sr_merge_params(&o, base ? base->get() : nullptr, ps.data(), (int)ps.size(), out.get()), SR_OK)
      << sr_error_message();
  return out.values();
}

const std::vector<float> kOnes = {1, 1, 1, 1, 1, 1};

}  // namespace

TEST(Merge, UniformSoupIsTheMean) {
  Registry a({1, 2, 3, 4, 0.5f, -1}), b({3, 2, 1, 0, 1.5f, 1}), c({-1, -1, -1, -1, 1, 0});
  // w: (1+3-1)/3 = 1, (2+2-1)/3 = 1, (3+1-1)/3 = 1, (4+0-1)/3 = 1;
  // b: (0.5+1.5+1)/3 = 1, (-1+1+0)/3 = 0.
  EXPECT_EQ(merge(opts_for(SR_MERGE_UNIFORM), nullptr, {&a, &b, &c}), std::vector<float>({1, 1, 1, 1, 1, 0}));
}

TEST(Merge, TaskArithmeticAddsScaledTaskVectors) {
  Registry base(kOnes);
  Registry a(add(kOnes, {0, 1, 2, 3, 0.5f, -1})), b(add(kOnes, {2, 1, 0, -1, 1.5f, 1}));
  // Σδ = (2, 2, 2, 2 | 2, 0). Default λ = 1/K = 1/2: θ = 1 + Σδ/2 = (2, 2, 2, 2 | 2, 1).
  EXPECT_EQ(merge(opts_for(SR_MERGE_TASK_ARITHMETIC), &base, {&a, &b}), std::vector<float>({2, 2, 2, 2, 2, 1}));
  // λ = 2: θ = 1 + 2Σδ = (5, 5, 5, 5 | 5, 1).
  sr_merge_opts o = opts_for(SR_MERGE_TASK_ARITHMETIC);
  o.lambda = 2, o.lambda_set = 1;
  EXPECT_EQ(merge(o, &base, {&a, &b}), std::vector<float>({5, 5, 5, 5, 5, 1}));
}

// Parameter order (registry order): w00 w01 w10 w11 b0 b1; θ_0 = 1 everywhere.
// density 0.5 keeps round(0.5 * 6) = 3 entries of each δ_k (over the whole model):
//   δ1 = ( 4, -1, 0.5, -3 |  2, 0.25)  top |δ|: 4, 3, 2           -> t1 = ( 4,  0, 0, -3 |  2, 0)
//   δ2 = (-2,  5, 1,   -1 | -3, 0.5 )  top |δ|: 5, 3, 2           -> t2 = (-2,  5, 0,  0 | -3, 0)
//   δ3 = ( 1, -6, 0,    2 |  1, 1   )  top |δ|: 6, 2, then one of
//        the three 1s: the first in registry order (w00)          -> t3 = ( 1, -6, 0,  2 |  0, 0)
// Elected sign = sign of Σ t; mean over the nonzero t that agree:
//   w00: 4-2+1 = 3 > 0, mean(4, 1) = 2.5        -> 3.5
//   w01: 0+5-6 = -1 < 0, mean(-6) = -6           -> -5   (t1 = 0 does not count)
//   w10: all trimmed                             -> 1
//   w11: -3+0+2 = -1, mean(-3) = -3              -> -2
//   b0:  2-3+0 = -1, mean(-3) = -3               -> -2
//   b1:  all trimmed (δ3's 1 lost the tie)       -> 1
TEST(Merge, TiesTrimsElectsSignAndAveragesTheAgreeingEntries) {
  Registry base(kOnes);
  Registry a(add(kOnes, {4, -1, 0.5f, -3, 2, 0.25f})), b(add(kOnes, {-2, 5, 1, -1, -3, 0.5f})),
      c(add(kOnes, {1, -6, 0, 2, 1, 1}));
  sr_merge_opts o = opts_for(SR_MERGE_TIES);
  o.density = 0.5;
  EXPECT_EQ(merge(o, &base, {&a, &b, &c}), std::vector<float>({3.5f, -5, 1, -2, -2, 1}));
  // λ = 0.5 halves the merged task vector: 1 + 0.5·(2.5, -6, 0, -3 | -3, 0).
  o.lambda = 0.5, o.lambda_set = 1;
  EXPECT_EQ(merge(o, &base, {&a, &b, &c}), std::vector<float>({2.25f, -2, 1, -0.5f, -0.5f, 1}));
  // density 1 trims nothing. w10: δ = (0.5, 1, 0): Σ > 0, mean(0.5, 1) = 0.75
  // (the zero δ3 is no vote) -> 1.75; b1: δ = (0.25, 0.5, 1), mean = 1.75/3.
  o = opts_for(SR_MERGE_TIES);
  o.density = 1.0;
  std::vector<float> all = merge(o, &base, {&a, &b, &c});
  EXPECT_FLOAT_EQ(all[2], 1.75f);
  EXPECT_FLOAT_EQ(all[5], 1.0f + 1.75f / 3.0f);
  // w01: δ = (-1, 5, -6): Σ = -2 < 0, mean(-1, -6) = -3.5 -> -2.5.
  EXPECT_FLOAT_EQ(all[1], -2.5f);
}

// δ1 = (2, 0, 1, -1 | 0, 3), δ2 = (2, 4, -3, 1 | 0, 1), θ_0 = 1.
TEST(Merge, DeltaGuidedWeighsEachParameterByHowFarItMoved) {
  Registry base(kOnes);
  Registry a(add(kOnes, {2, 0, 1, -1, 0, 3})), b(add(kOnes, {2, 4, -3, 1, 0, 1}));
  // γ = 1, w_k = |δ_k| / Σ|δ|:
  //   w00: 1/2, 1/2 -> 2            -> 3
  //   w01: 0, 1 -> 4                -> 5
  //   w10: 1/4, 3/4 -> 0.25 - 2.25  -> -1
  //   w11: 1/2, 1/2 -> 0            -> 1
  //   b0:  all δ zero: uniform weights, 0 (not 0/0 = NaN) -> 1
  //   b1:  3/4, 1/4 -> 2.25 + 0.25  -> 3.5
  EXPECT_EQ(merge(opts_for(SR_MERGE_DELTA), &base, {&a, &b}), std::vector<float>({3, 5, -1, 1, 1, 3.5f}));
  // γ = 2, w_k ∝ δ_k²: w10: 1/10, 9/10 -> 0.1 - 2.7 = -2.6 -> -1.6; b1: 9/10, 1/10 -> 2.8 -> 3.8.
  sr_merge_opts o = opts_for(SR_MERGE_DELTA);
  o.gamma = 2;
  std::vector<float> g2 = merge(o, &base, {&a, &b});
  const float want2[6] = {3, 5, -1.6f, 1, 1, 3.8f};
  for (int i = 0; i < 6; i++) EXPECT_FLOAT_EQ(g2[i], want2[i]) << i;
  // γ = 0: |δ|^0 = 1 for every entry, so the plain mean of the δ; λ = 2 doubles it:
  // w01: 1 + 2·(0 + 4)/2 = 5; w10: 1 + 2·(1 - 3)/2 = -1; b1: 1 + 2·(3 + 1)/2 = 5.
  o.gamma = 0, o.lambda = 2, o.lambda_set = 1;
  EXPECT_EQ(merge(o, &base, {&a, &b}), std::vector<float>({5, 5, -1, 1, 1, 5}));
}

TEST(Merge, DeltaGuidedPerTensorUsesTensorNorms) {
  Registry base(kOnes);
  // w: δ1 = (3, 0, 0, 4), ||δ1|| = 5; δ2 = (1, 1, 1, 1), ||δ2|| = 2 -> weights 5/7, 2/7:
  //    θ_w = 1 + (5/7)δ1 + (2/7)δ2 = 1 + (17/7, 2/7, 2/7, 22/7).
  // b: δ1 = (0, 0), δ2 = (6, -8), norms 0 and 10 -> weights 0, 1: θ_b = (7, -7).
  Registry a(add(kOnes, {3, 0, 0, 4, 0, 0})), b(add(kOnes, {1, 1, 1, 1, 6, -8}));
  std::vector<float> got = merge(opts_for(SR_MERGE_DELTA_TENSOR), &base, {&a, &b});
  const float want[6] = {1 + 17.0f / 7, 1 + 2.0f / 7, 1 + 2.0f / 7, 1 + 22.0f / 7, 7, -7};
  for (int i = 0; i < 6; i++) EXPECT_FLOAT_EQ(got[i], want[i]) << i;
  // γ = 2: weights 25/29, 4/29 on w.
  sr_merge_opts o = opts_for(SR_MERGE_DELTA_TENSOR);
  o.gamma = 2;
  got = merge(o, &base, {&a, &b});
  EXPECT_FLOAT_EQ(got[0], 1 + (25.0f * 3 + 4.0f) / 29);
  EXPECT_FLOAT_EQ(got[3], 1 + (25.0f * 4 + 4.0f) / 29);
}

namespace {

// Validation score of a soup: −||w − (0, 0)||² over the first tensor, w of 2 values.
struct ScoreLog {
  std::vector<std::vector<float>> candidates;
};

double distance_score(void *ctx, const sr_params *candidate) {
  const float *w = candidate->items[0].value;
  static_cast<ScoreLog *>(ctx)->candidates.push_back({w[0], w[1]});
  return -(double)(w[0] * w[0] + w[1] * w[1]);
}

}  // namespace

// Ingredients (w | b), given in the order S, Q, R, P; own scores −||w||²:
//   S = (4, 4 | 100): -32    Q = (0, 2 | 1): -4    R = (1, -5 | 50): -26    P = (2, 0 | 3): -4
// Visiting order: Q, P (equal scores keep the given order), R, S.
//   {Q}            score -4
//   + P: w = (1, 1)            -2  > -4  kept
//   + R: w = (3, -3)/3 = (1,-1) -2 == -2 rejected: the improvement must be strict
//   + S: w = (6, 6)/3 = (2, 2)  -8  < -2 rejected
// Result: mean(Q, P) = (1, 1 | 2).
TEST(Merge, GreedySoupKeepsOnlyStrictImprovements) {
  Registry s({{"w", {2}, {4, 4}}, {"b", {1}, {100}}}), q({{"w", {2}, {0, 2}}, {"b", {1}, {1}}}),
      r({{"w", {2}, {1, -5}}, {"b", {1}, {50}}}), p({{"w", {2}, {2, 0}}, {"b", {1}, {3}}}),
      out({{"w", {2}, {0, 0}}, {"b", {1}, {0}}});
  const sr_params *ingr[4] = {s.get(), q.get(), r.get(), p.get()};
  ScoreLog log;
  double scores[4];
  for (int i = 0; i < 4; i++) scores[i] = distance_score(&log, ingr[i]);
  log.candidates.clear();
  int kept[4];
  double soup_score = 0;
  ASSERT_EQ(sr_merge_greedy(ingr, scores, 4, distance_score, &log, out.get(), kept, &soup_score), SR_OK)
      << sr_error_message();
  EXPECT_EQ(std::vector<int>(kept, kept + 4), std::vector<int>({0, 1, 0, 1}));
  EXPECT_EQ(soup_score, -2.0);
  EXPECT_EQ(log.candidates, std::vector<std::vector<float>>({{1, 1}, {1, -1}, {2, 2}}));
  EXPECT_EQ(out.values(), std::vector<float>({1, 1, 2}));
}

TEST(Merge, IncompatibleLayoutsAreRejectedNamingTheTensor) {
  Registry a(kOnes);
  Registry wider({{"w", {2, 3}, {}}, {"b", {2}, {}}}), no_bias({{"w", {2, 2}, {}}}),
      swapped({{"b", {2}, {}}, {"w", {2, 2}, {}}});
  EXPECT_EQ(sr_merge_compatible(a.get(), a.get(), "a.h5", "b.h5"), SR_OK);
  EXPECT_EQ(sr_merge_compatible(a.get(), wider.get(), "a.h5", "b.h5"), SR_EINVAL);
  EXPECT_STREQ(sr_error_message(), "architectures differ: a.h5: w is 2 x 2, b.h5: 2 x 3");
  EXPECT_EQ(sr_merge_compatible(a.get(), no_bias.get(), "a.h5", "b.h5"), SR_EINVAL);
  EXPECT_STREQ(sr_error_message(), "architectures differ: a.h5 has b (2), b.h5 has no such tensor");
  EXPECT_EQ(sr_merge_compatible(no_bias.get(), a.get(), "a.h5", "b.h5"), SR_EINVAL);
  EXPECT_STREQ(sr_error_message(), "architectures differ: b.h5 has b (2), a.h5 has no such tensor");
  EXPECT_EQ(sr_merge_compatible(a.get(), swapped.get(), "a.h5", "b.h5"), SR_EINVAL);
  EXPECT_STREQ(sr_error_message(), "architectures differ: tensor 0 is w in a.h5 but b in b.h5");
  // sr_merge_params checks the base and the output as well.
  const sr_params *ingr[2] = {a.get(), a.get()};
  sr_merge_opts o = opts_for(SR_MERGE_TIES);
  EXPECT_EQ(sr_merge_params(&o, wider.get(), ingr, 2, a.get()), SR_EINVAL);
  EXPECT_NE(std::string(sr_error_message()).find("ingredient 1: w is 2 x 2, base: 2 x 3"), std::string::npos)
      << sr_error_message();
  EXPECT_EQ(sr_merge_params(&o, nullptr, ingr, 2, a.get()), SR_EINVAL);
  EXPECT_NE(std::string(sr_error_message()).find("needs a base"), std::string::npos) << sr_error_message();
}

TEST(Merge, BadOptionsAndNonFiniteValuesAreErrors) {
  Registry a(kOnes), bad({1, 1, NAN, 1, 1, 1}), out(kOnes);
  const sr_params *ingr[2] = {a.get(), bad.get()};
  sr_merge_opts o = opts_for(SR_MERGE_UNIFORM);
  EXPECT_EQ(sr_merge_params(&o, nullptr, ingr, 2, out.get()), SR_ENUMERIC);
  EXPECT_STREQ(sr_error_message(), "ingredient 2: w has a non-finite value at element 2");
  o = opts_for(SR_MERGE_TIES);
  o.density = 0;
  EXPECT_EQ(sr_merge_opts_validate(&o), SR_EINVAL);
  o = opts_for(SR_MERGE_DELTA);
  o.gamma = -1;
  EXPECT_EQ(sr_merge_opts_validate(&o), SR_EINVAL);
  o = opts_for(SR_MERGE_GREEDY);
  EXPECT_EQ(sr_merge_params(&o, nullptr, ingr, 1, out.get()), SR_EINVAL);
  sr_merge_method m;
  EXPECT_EQ(sr_merge_method_parse("task-arithmetic", &m), SR_OK);
  EXPECT_EQ(m, SR_MERGE_TASK_ARITHMETIC);
  EXPECT_EQ(sr_merge_method_parse("average", &m), SR_EINVAL);
  EXPECT_EQ(sr_merge_lambda(&o, 4), 1.0);
  o = opts_for(SR_MERGE_TASK_ARITHMETIC);
  EXPECT_EQ(sr_merge_lambda(&o, 4), 0.25);
}

// ---- the command line ---------------------------------------------------------------

namespace {

std::vector<std::string> words(const std::string &line) {
  std::istringstream in(line);
  std::vector<std::string> w;
  for (std::string s; in >> s;) w.push_back(s);
  return w;
}

// The line of `output` that starts with `prefix` ("" if none).
std::string line_starting(const std::string &output, const std::string &prefix) {
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) return line;
  return "";
}

// The last n words of a table row (its metric values).
std::vector<std::string> last_words(const std::string &line, size_t n) {
  std::vector<std::string> w = words(line);
  return w.size() < n ? w : std::vector<std::string>(w.end() - (long)n, w.end());
}

// Two Mult-VAE runs of one config (seeds 1 and 2) and a shorter one as base,
// trained once per test process (ctest runs each test in its own).
class MergeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new srtest::TempDir();
    const std::string data = tmp_->file("d.h5");
    auto synth =
        srtest::run_command(bin() + " data synth -o " + data + " --users 600 --items 200 --heldout 60 --no-features");
    ASSERT_EQ(synth.exit_code, 0) << synth.output;
    srtest::write_file(tmp_->file("c.yaml"), "run: {out_dir: " + tmp_->path() +
                                                 ", log_level: warn}\ndata: {path: " + data +
                                                 "}\nmodel: {hidden: [32], latent_dim: 8}\n"
                                                 "train: {epochs: 3, batch_size: 50, eval_every: 3}\n");
    train("s1", "--set run.seed=1");
    train("s2", "--set run.seed=2");
    train("base", "--set run.seed=9 --set train.epochs=1");
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  static void train(const std::string &name, const std::string &overrides) {
    auto run =
        srtest::run_command(bin() + " train " + tmp_->file("c.yaml") + " --set run.name=" + name + " " + overrides);
    ASSERT_EQ(run.exit_code, 0) << run.output;
  }
  static std::string bin() { return SHARDREC_BINARY; }
  static std::string model(const std::string &run) { return tmp_->file(run + "/model.h5"); }
  static std::string ingredients() { return model("s1") + " " + model("s2"); }
  static srtest::TempDir *tmp_;
};
srtest::TempDir *MergeCli::tmp_ = nullptr;

struct Loaded {
  sr_config cfg;
  sr_model *model = nullptr;
  explicit Loaded(const std::string &path) {
    EXPECT_EQ(sr_checkpoint_read(path.c_str(), nullptr, &cfg, &model), SR_OK) << sr_error_message();
  }
  ~Loaded() { sr_model_destroy(model); }
  const sr_params &params() const { return model->params; }
};

}  // namespace

namespace {

// The greedy rows: every ingredient marked, the soup at least as good on the
// selection metric (ndcg@100, third metric column) as the best ingredient.
void check_greedy_table(const std::string &output, const std::vector<std::string> &ingredients) {
  EXPECT_NE(output.find("greedy soup selected by ndcg@100"), std::string::npos) << output;
  double best = 0;
  int n_kept = 0;
  for (const std::string &path : ingredients) {
    std::vector<std::string> w = words(line_starting(output, path));
    ASSERT_EQ(w.size(), 5u) << output;  // path, recall@20, recall@50, ndcg@100, mark
    best = std::max(best, std::stod(w[3]));
    EXPECT_TRUE(w[4] == "kept" || w[4] == "rejected") << w[4];
    n_kept += w[4] == "kept";
  }
  EXPECT_GE(n_kept, 1);
  std::vector<std::string> soup = words(line_starting(output, "merged: greedy"));
  ASSERT_EQ(soup.size(), 5u) << output;
  EXPECT_GE(std::stod(soup[4]), best) << output;
}

}  // namespace

// Every method writes a checkpoint that `shardrec eval` accepts, and the merged
// row of the validation table is what eval then reports for that file.
TEST_F(MergeCli, EveryMethodWritesAnEvaluableCheckpoint) {
  const char *methods[] = {"uniform", "greedy", "task-arithmetic", "ties", "delta", "delta-tensor"};
  for (const char *method : methods) {
    sr_merge_method m;
    ASSERT_EQ(sr_merge_method_parse(method, &m), SR_OK);
    const std::string out = tmp_->file(std::string(method) + ".h5");
    std::string base = sr_merge_needs_base(m) ? " --base " + model("base") : "";
    std::string extra = m == SR_MERGE_GREEDY ? " --metric ndcg@100" : " --eval";
    auto merged =
        srtest::run_command(bin() + " merge --method " + method + base + extra + " -o " + out + " " + ingredients());
    ASSERT_EQ(merged.exit_code, 0) << merged.output;
    if (m == SR_MERGE_TIES || m == SR_MERGE_GREEDY) std::printf("%s", merged.output.c_str());
    if (m == SR_MERGE_GREEDY) check_greedy_table(merged.output, {model("s1"), model("s2")});
    std::string row = line_starting(merged.output, std::string("merged: ") + method);
    ASSERT_NE(row, "") << merged.output;
    EXPECT_NE(line_starting(merged.output, model("s2")), "") << merged.output;
    EXPECT_EQ(line_starting(merged.output, model("base") + " (base)").empty(), base.empty()) << merged.output;
    auto eval = srtest::run_command(bin() + " eval " + out + " --split valid");
    ASSERT_EQ(eval.exit_code, 0) << eval.output;
    // "valid  recall@20 0.3004  recall@50 0.5864  ndcg@100 0.2999  (60 users)"
    std::vector<std::string> e = words(line_starting(eval.output, "valid"));
    ASSERT_GE(e.size(), 7u) << eval.output;
    EXPECT_EQ(last_words(row, 3), std::vector<std::string>({e[2], e[4], e[6]})) << method << "\n"
                                                                                << merged.output << eval.output;
  }
  // Uniform: exactly the mean of the two, in float after a double sum.
  Loaded u(tmp_->file("uniform.h5")), a(model("s1")), b(model("s2"));
  ASSERT_EQ(u.params().total, a.params().total);
  for (int64_t i = 0; i < a.params().total; i++)
    ASSERT_EQ(u.params().values[i], (float)(((double)a.params().values[i] + b.params().values[i]) / 2)) << i;
  // Task arithmetic with its default λ = 1/K is the uniform soup, up to rounding.
  Loaded t(tmp_->file("task-arithmetic.h5"));
  for (int64_t i = 0; i < a.params().total; i++) ASSERT_NEAR(t.params().values[i], u.params().values[i], 1e-6) << i;
}

TEST_F(MergeCli, MismatchedArchitecturesAndUsageErrors) {
  train("narrow", "--set run.seed=4 --set model.hidden=[16]");
  const std::string out = tmp_->file("bad.h5");
  auto bad =
      srtest::run_command(bin() + " merge --method uniform -o " + out + " " + model("s1") + " " + model("narrow"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find(model("s1") + ": encoder.0.weight is 200 x 32, " + model("narrow") + ": 200 x 16"),
            std::string::npos)
      << bad.output;
  auto bad_base = srtest::run_command(bin() + " merge --method delta --base " + model("narrow") + " -o " + out + " " +
                                      ingredients());
  EXPECT_EQ(bad_base.exit_code, 1);
  EXPECT_NE(bad_base.output.find(model("narrow")), std::string::npos) << bad_base.output;
  EXPECT_NE(srtest::run_command("test -e " + out).exit_code, 0) << "no output file after a failure";
  // inspect compares them anyway, tensor by tensor.
  auto inspect = srtest::run_command(bin() + " inspect " + model("s1") + " " + model("narrow"));
  EXPECT_EQ(inspect.exit_code, 0) << inspect.output;
  EXPECT_NE(inspect.output.find("shape 200 x 32 in " + model("s1") + ", 200 x 16 in " + model("narrow")),
            std::string::npos)
      << inspect.output;

  auto no_base = srtest::run_command(bin() + " merge --method ties -o " + out + " " + ingredients());
  EXPECT_EQ(no_base.exit_code, 2);
  EXPECT_NE(no_base.output.find("--method ties needs --base"), std::string::npos) << no_base.output;
  auto unknown = srtest::run_command(bin() + " merge --method average -o " + out + " " + ingredients());
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.output.find("unknown merge method 'average'"), std::string::npos) << unknown.output;
  auto stray = srtest::run_command(bin() + " merge --method uniform --density 0.5 -o " + out + " " + ingredients());
  EXPECT_EQ(stray.exit_code, 2);
  EXPECT_NE(stray.output.find("--density applies to --method ties only"), std::string::npos) << stray.output;
  auto range = srtest::run_command(bin() + " merge --method ties --base " + model("base") + " --density 2 -o " + out +
                                   " " + ingredients());
  EXPECT_EQ(range.exit_code, 2);
  EXPECT_EQ(srtest::run_command(bin() + " merge --method uniform " + ingredients()).exit_code, 2);  // no -o
  EXPECT_EQ(srtest::run_command(bin() + " inspect").exit_code, 2);

  // An output that is one of the inputs (here through another path) would be overwritten.
  const std::string before = srtest::read_file(model("s1"));
  auto onto_input = srtest::run_command(bin() + " merge --method uniform -o " + tmp_->file("s1/../s1/model.h5") +
                                        " " + ingredients());
  EXPECT_EQ(onto_input.exit_code, 2);
  EXPECT_NE(onto_input.output.find("is also an input"), std::string::npos) << onto_input.output;
  EXPECT_EQ(srtest::read_file(model("s1")), before);
  auto onto_base = srtest::run_command(bin() + " merge --method ties --base " + model("base") + " -o " +
                                       model("base") + " " + ingredients());
  EXPECT_EQ(onto_base.exit_code, 2) << onto_base.output;
  // A finite merge whose result overflows is refused, naming the option.
  auto huge = srtest::run_command(bin() + " merge --method task-arithmetic --base " + model("base") +
                                  " --lambda 1e300 -o " + out + " " + ingredients());
  EXPECT_EQ(huge.exit_code, 1);
  EXPECT_NE(huge.output.find("--lambda 1e+300 is too large: the merged model: "), std::string::npos) << huge.output;
  EXPECT_NE(srtest::run_command("test -e " + out).exit_code, 0) << "no output file after a failure";
}

TEST_F(MergeCli, InspectShowsMetadataTensorsDifferencesAndUnknownGroups) {
  auto one = srtest::run_command(bin() + " inspect " + model("s1"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_NE(one.output.find("  model: multvae\n"), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("  n_items: 200\n"), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("(--config prints it)"), std::string::npos) << one.output;
  EXPECT_EQ(one.output.find("latent_dim"), std::string::npos) << "config hidden without --config";
  std::vector<std::string> row = words(line_starting(one.output, "encoder.0.weight"));
  ASSERT_EQ(row.size(), 8u) << one.output;  // name, "200 x 32", l2, mean, min, max
  EXPECT_EQ(row[1] + row[2] + row[3], "200x32");
  EXPECT_LE(std::stod(row[6]), std::stod(row[5]));  // min <= mean
  EXPECT_LE(std::stod(row[5]), std::stod(row[7]));  // mean <= max
  EXPECT_NE(one.output.find("8 tensors, "), std::string::npos) << one.output;

  auto config = srtest::run_command(bin() + " inspect --config " + model("s1"));
  EXPECT_NE(config.output.find("latent_dim: 8"), std::string::npos) << config.output;

  auto same = srtest::run_command(bin() + " inspect " + model("s1") + " " + tmp_->file("s1/../s1/model.h5"));
  ASSERT_EQ(same.exit_code, 0) << same.output;
  EXPECT_NE(same.output.find("8 of 8 tensors identical"), std::string::npos) << same.output;
  auto two = srtest::run_command(bin() + " inspect " + model("s1") + " " + model("s2"));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NE(two.output.find("0 of 8 tensors identical"), std::string::npos) << two.output;
  std::string diff = two.output.substr(two.output.find("\ndifference ") + 1);
  std::vector<std::string> d = words(line_starting(diff, "encoder.0.weight"));
  ASSERT_EQ(d.size(), 7u) << diff;  // name, shape (3 words), ||a-b||, max|a-b|, relative
  EXPECT_GT(std::stod(d[4]), 0.0);
  EXPECT_GT(std::stod(d[6]), 0.0);

  // A top-level group the format does not know yet (say, a training state) is
  // shown with its attributes, whatever their types.
  const std::string path = tmp_->file("with-state.h5");
  ASSERT_EQ(srtest::run_command("cp " + model("s1") + " " + path).exit_code, 0);
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  hid_t g = H5Gcreate2(f, "/train_state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t scalar = H5Screate(H5S_SCALAR);
  hsize_t n_lrs = 2;
  hid_t pair = H5Screate_simple(1, &n_lrs, nullptr);
  long long step = 42;
  double lrs[2] = {0.5, 0.25};
  hid_t a = H5Acreate2(g, "step", H5T_STD_I64LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_LLONG, &step);
  H5Aclose(a);
  a = H5Acreate2(g, "lrs", H5T_IEEE_F64LE, pair, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_DOUBLE, lrs);
  H5Aclose(a);
  H5Sclose(pair);
  H5Sclose(scalar);
  H5Gclose(g);
  H5Fclose(f);
  auto out = srtest::run_command(bin() + " inspect " + path);
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("  /train_state\n    lrs: [0.5, 0.25]\n    step: 42\n"), std::string::npos) << out.output;

  // Display text longer than the buffer is cut and says so.
  sr_h5file h;
  ASSERT_EQ(sr_h5_open(&h, path.c_str()), SR_OK) << sr_error_message();
  char text[16];
  EXPECT_EQ(sr_h5_format_attr(&h, "/", "config_yaml", text, sizeof text), SR_OK) << sr_error_message();
  EXPECT_EQ(std::string(text), "# shardrec 0...");
  EXPECT_EQ(sr_h5_format_attr(&h, "/train_state", "lrs", text, sizeof text), SR_OK);
  EXPECT_EQ(std::string(text), "[0.5, 0.25]");
  sr_h5_close(&h);
}

// test_sweep.cpp — `shardrec sweep` (every combination trained, finished runs
// skipped, one combination per --index) and `shardrec runs` (seeds grouped as
// mean ± sample sd, key config differences, every --format), through the binary.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

extern "C" {
#include <jansson.h>
}

namespace {

const std::string kBinary = SHARDREC_BINARY;

// A tiny Mult-VAE config (2 epochs of 6 steps) whose runs go under out.
std::string tiny_config(const srtest::TempDir &tmp) {
  const std::string data = tmp.file("d.h5"), cfg = tmp.file("tiny.yaml");
  EXPECT_EQ(
      srtest::run_command(kBinary + " data synth -o " + data + " --users 600 --items 200 --heldout 60").exit_code, 0);
  srtest::write_file(cfg, "run: {out_dir: " + tmp.file("out") +
                              ", log_level: warn, threads: 1}\ndata: {path: " + data +
                              "}\nmodel: {hidden: [16], latent_dim: 4}\ntrain: {epochs: 2, batch_size: 100}\n");
  return cfg;
}

// The values of metric ("recall@50", or in a slice: slice "tail") in the
// records of one type ("valid", "test") of a run's metrics.jsonl, in order.
std::vector<double> record_values(const std::string &run_dir, const std::string &type, const std::string &slice,
                                  const std::string &metric) {
  std::istringstream in(srtest::read_file(run_dir + "/metrics.jsonl"));
  std::vector<double> values;
  for (std::string line; std::getline(in, line);) {
    json_t *r = json_loads(line.c_str(), 0, nullptr);
    if (std::string(json_string_value(json_object_get(r, "type"))) == type) {
      json_t *in_slice = slice.empty() ? r : json_object_get(json_object_get(r, "slices"), slice.c_str());
      const json_t *v = json_object_get(in_slice, metric.c_str());
      values.push_back(json_is_number(v) ? json_number_value(v) : NAN);
    }
    json_decref(r);
  }
  return values;
}

// The best validation NDCG@100 of one run.
double best_ndcg(const std::string &run_dir) {
  const std::vector<double> v = record_values(run_dir, "valid", "", "ndcg@100");
  return v.empty() ? -1 : *std::max_element(v.begin(), v.end());
}

TEST(Sweep, TrainsEveryCombinationAndComparesThemWithSeedsGrouped) {
  srtest::TempDir tmp;
  const std::string cfg = tiny_config(tmp),
                    sweep = kBinary + " sweep " + cfg + " --grid train.lr=1e-3,3e-3 --seeds 1,2";
  auto count = srtest::run_command(sweep + " --count");
  EXPECT_EQ(count.output, "4\n");
  auto first = srtest::run_command(sweep);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string dir = tmp.file("out/tiny");
  for (const char *run : {"lr=1e-3_seed=1", "lr=1e-3_seed=2", "lr=3e-3_seed=1", "lr=3e-3_seed=2"})
    EXPECT_NE(srtest::read_file(dir + "/" + run + "/metrics.jsonl").find("\"type\":\"test\""), std::string::npos)
        << run;
  // The table: one row per learning rate, over seeds 1 and 2.
  EXPECT_NE(first.output.find("lr=1e-3  "), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("train.lr=0.003"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find(" \u00b1 "), std::string::npos) << first.output;
  // Again: every run finished, nothing is trained.
  auto again = srtest::run_command(sweep);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("[4/4] lr=3e-3_seed=2: finished earlier, skipped"), std::string::npos) << again.output;

  // --format json: mean and sample sd over the seeds, checked by hand.
  auto json = srtest::run_command(kBinary + " runs " + dir + " --format json");
  ASSERT_EQ(json.exit_code, 0) << json.output;
  json_t *rows = json_loads(json.output.c_str(), 0, nullptr);
  ASSERT_TRUE(json_is_array(rows)) << json.output;
  ASSERT_EQ(json_array_size(rows), 2u) << json.output;
  const char *lrs[2] = {"1e-3", "3e-3"};
  for (size_t i = 0; i < 2; i++) {
    json_t *row = json_array_get(rows, i);
    EXPECT_EQ(json_integer_value(json_object_get(row, "runs")), 2);
    EXPECT_EQ(json_string_value(json_object_get(row, "config")), std::string("train.lr=") + (i ? "0.003" : "0.001"));
    EXPECT_EQ(json_string_value(json_object_get(row, "run")), std::string("lr=") + lrs[i]);
    const double a = best_ndcg(dir + "/lr=" + lrs[i] + "_seed=1"), b = best_ndcg(dir + "/lr=" + lrs[i] + "_seed=2");
    json_t *best = json_object_get(row, "best");
    EXPECT_NEAR(json_number_value(json_object_get(best, "mean")), (a + b) / 2, 1e-9);
    EXPECT_NEAR(json_number_value(json_object_get(best, "sd")), std::fabs(a - b) / std::sqrt(2.0), 1e-9);
    EXPECT_EQ(json_number_value(json_object_get(json_object_get(row, "epochs"), "mean")), 2.0);
  }
  json_decref(rows);

  auto csv = srtest::run_command(kBinary + " runs " + dir + " --format csv");
  EXPECT_EQ(csv.output.rfind("run,model,config,seeds,runs,", 0), 0u) << csv.output;
  EXPECT_NE(csv.output.find("\nlr=3e-3,multvae,train.lr=0.003,\"1,2\",2,0,2,0,"), std::string::npos) << csv.output;
  auto md = srtest::run_command(kBinary + " runs " + dir + "/lr=1e-3_seed=1 --format md");
  EXPECT_EQ(md.output.rfind("| run ", 0), 0u) << md.output;
  EXPECT_NE(md.output.find("\n|-----"), std::string::npos) << md.output;
  EXPECT_EQ(srtest::run_command(kBinary + " runs " + dir + " --format xml").exit_code, 2);
  EXPECT_EQ(srtest::run_command(kBinary + " runs " + tmp.file("none")).exit_code, 1);
}

// The test record's value of metric, overall or in a slice.
double test_value(const std::string &run_dir, const std::string &slice, const std::string &metric) {
  const std::vector<double> v = record_values(run_dir, "test", slice, metric);
  return v.empty() ? NAN : v.back();
}

// `runs --metric SLICE/NAME` compares the runs on one evaluation slice.
TEST(Runs, ASliceMetricIsTheTestRecordsSliceValue) {
  srtest::TempDir tmp;
  const std::string cfg = tiny_config(tmp);
  auto sweep = srtest::run_command(kBinary + " sweep " + cfg + " --grid train.lr=1e-3 --seeds 1,2,3 --set " +
                                   "eval.slices=[popularity]");
  ASSERT_EQ(sweep.exit_code, 0) << sweep.output;
  const std::string dir = tmp.file("out/tiny");
  for (const std::string slice : {"", "head", "tail"}) {
    const std::string metric = (slice.empty() ? "" : slice + "/") + "recall@50";
    auto json = srtest::run_command(kBinary + " runs " + dir + " --format json --metric " + metric);
    ASSERT_EQ(json.exit_code, 0) << json.output;
    json_t *rows = json_loads(json.output.c_str(), 0, nullptr);
    ASSERT_EQ(json_array_size(rows), 1u) << json.output;
    json_t *row = json_array_get(rows, 0);
    EXPECT_EQ(json_string_value(json_object_get(row, "metric")), metric);
    // Three seeds: the row keeps the name the runs share, not a part of it.
    EXPECT_EQ(json_string_value(json_object_get(row, "run")), std::string("lr=1e-3"));
    double sum = 0;
    for (const char *seed : {"1", "2", "3"}) {
      const double v = test_value(dir + "/lr=1e-3_seed=" + seed, slice, "recall@50");
      ASSERT_FALSE(std::isnan(v)) << metric;
      sum += v;
    }
    EXPECT_NEAR(json_number_value(json_object_get(json_object_get(row, "test"), "mean")), sum / 3, 1e-9) << metric;
    json_decref(rows);
  }
  const double all = test_value(dir + "/lr=1e-3_seed=1", "", "recall@50"),
               tail = test_value(dir + "/lr=1e-3_seed=1", "tail", "recall@50");
  EXPECT_NE(all, tail) << "the slice is not the overall figure";
}

// --index runs one combination (a Slurm array task); a bad grid value is
// refused before anything is trained.
TEST(Sweep, IndexRunsOneCombinationAndBadValuesAreRefusedFirst) {
  srtest::TempDir tmp;
  const std::string cfg = tiny_config(tmp);
  auto one = srtest::run_command(kBinary + " sweep " + cfg + " --grid model.hidden=[16],[8,8] --seeds 5 --index 1");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_EQ(srtest::run_command("ls " + tmp.file("out/tiny")).output, "hidden=8-8_seed=5\n");
  auto bad = srtest::run_command(kBinary + " sweep " + cfg + " --grid train.lr=1e-3,-1 --name bad");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("train.lr"), std::string::npos) << bad.output;
  EXPECT_NE(srtest::run_command("ls " + tmp.file("out/bad")).exit_code, 0) << "nothing trained";
  EXPECT_EQ(srtest::run_command(kBinary + " sweep " + cfg + " --grid train.lr=1e-3 --index 1").exit_code, 2);
  EXPECT_EQ(srtest::run_command(kBinary + " sweep " + cfg + " --grid train.lr").exit_code, 2);
}

}  // namespace

// test_run_log.cpp — metrics.jsonl: what every record carries, windowed and
// epoch means, the test record naming the selected model, records superseded
// on resume, and write failures (a full disk) failing the run.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "test_util.h"

extern "C" {
#include <jansson.h>

#include "shardrec/checkpoint.h"
#include "shardrec/config.h"
#include "shardrec/dist.h"
#include "shardrec/error.h"
#include "shardrec/log.h"
#include "shardrec/run_log.h"
#include "shardrec/train.h"
}

namespace {

const sr_dataset &dataset() {
  static sr_dataset d = srtest::synthetic_dataset(700, 120, 100, 12, true);
  return d;
}

// 6 steps per epoch (the last one short), a progress record after every step.
sr_config config(const std::string &run_dir, int epochs) {
  sr_config cfg;
  sr_config_defaults(&cfg);
  snprintf(cfg.data.path, sizeof cfg.data.path, "in-memory");
  cfg.model.hidden[0] = 24;
  cfg.model.latent_dim = 8;
  cfg.train.batch_size = 96;
  cfg.train.epochs = epochs;
  cfg.run.log_every_s = 1e-9;
  cfg.checkpoint.every_steps = 4;
  cfg.checkpoint.keep_last = 100;
  snprintf(cfg.checkpoint.dir, sizeof cfg.checkpoint.dir, "%s/checkpoints", run_dir.c_str());
  return cfg;
}

int train(const sr_config &cfg, const std::string &run_dir, sr_train_result *res) {
  sr_dist self;
  sr_dist_self(&self);
  return sr_train(&cfg, &self, &dataset(), run_dir.c_str(), nullptr, res);
}

struct Records {
  std::vector<json_t *> all;
  ~Records() {
    for (json_t *r : all) json_decref(r);
  }
  std::vector<json_t *> of(const char *type, bool with_superseded = false) const {
    std::vector<json_t *> out;
    for (json_t *r : all)
      if (strcmp(json_string_value(json_object_get(r, "type")), type) == 0 &&
          (with_superseded || !json_is_true(json_object_get(r, "superseded"))))
        out.push_back(r);
    return out;
  }
};

// Every line of a metrics.jsonl, parsed (a line that is no JSON object fails).
void read_records(const std::string &path, Records *out) {
  std::istringstream in(srtest::read_file(path));
  for (std::string line; std::getline(in, line);) {
    json_error_t err;
    json_t *r = json_loads(line.c_str(), 0, &err);
    ASSERT_TRUE(json_is_object(r)) << path << ": " << err.text << ": " << line;
    ASSERT_TRUE(json_is_string(json_object_get(r, "type"))) << line;
    out->all.push_back(r);
  }
}

// Trains cfg (made by config(tmp/run, ...)) into tmp/run; its records.
void train_records(const srtest::TempDir &tmp, const sr_config &cfg, sr_train_result *res, Records *recs) {
  sr_log_set_level(SR_LOG_ERROR);
  const std::string run = tmp.file("run");
  ASSERT_EQ(srtest::run_command("mkdir -p " + run).exit_code, 0);
  ASSERT_EQ(train(cfg, run, res), SR_OK) << sr_error_message();
  read_records(run + "/metrics.jsonl", recs);
}

double num(const json_t *r, const char *key) { return json_number_value(json_object_get(r, key)); }
int64_t integer(const json_t *r, const char *key) { return json_integer_value(json_object_get(r, key)); }

TEST(RunLog, EveryRecordSaysWhenWhereAndAtWhichLearningRate) {
  srtest::TempDir tmp;
  sr_train_result res;
  Records recs;
  train_records(tmp, config(tmp.file("run"), 3), &res, &recs);
  ASSERT_FALSE(recs.all.empty());
  const json_t *header = recs.all[0];
  EXPECT_STREQ(json_string_value(json_object_get(header, "type")), "header");
  for (const char *key : {"run_id", "command", "version", "git_commit", "device"})
    EXPECT_TRUE(json_is_string(json_object_get(header, key))) << key;
  EXPECT_EQ(strlen(json_string_value(json_object_get(header, "run_id"))), (size_t)SR_RUN_ID_SIZE - 1);
  EXPECT_EQ(integer(header, "world_size"), 1);
  EXPECT_TRUE(json_is_null(json_object_get(header, "resumed_from")));
  for (const json_t *r : recs.all) {
    const char *time = json_string_value(json_object_get(r, "time"));
    ASSERT_NE(time, nullptr);
    EXPECT_EQ(strlen(time), strlen("2026-12-03T14:20:01.123Z")) << time;
    EXPECT_EQ(time[strlen(time) - 1], 'Z') << time;
    EXPECT_TRUE(json_is_integer(json_object_get(r, "epoch")));
    EXPECT_TRUE(json_is_integer(json_object_get(r, "step")));
    EXPECT_EQ(num(r, "lr"), 1e-3);  // the shortest decimal of the float Adam uses
  }
}

// log_every_s ~0: a progress record after every step, each the mean of a
// window of one step; an epoch record's loss is the mean of its steps'.
TEST(RunLog, EpochRecordsHoldTheMeansOfTheirSteps) {
  srtest::TempDir tmp;
  sr_train_result res;
  Records recs;
  train_records(tmp, config(tmp.file("run"), 3), &res, &recs);
  std::vector<json_t *> steps = recs.of("train"), epochs = recs.of("epoch");
  ASSERT_EQ(steps.size(), 18u);
  ASSERT_EQ(epochs.size(), 3u);
  double epoch_train_s = 0;
  for (size_t e = 0; e < 3; e++) {
    EXPECT_EQ(integer(epochs[e], "epoch"), (int64_t)e + 1);
    EXPECT_EQ(integer(epochs[e], "steps"), 6);
    EXPECT_EQ(integer(epochs[e], "step"), 6 * ((int64_t)e + 1));
    double loss = 0, kl = 0;
    for (size_t k = 6 * e; k < 6 * e + 6; k++) {
      EXPECT_EQ(integer(steps[k], "window_steps"), 1);
      EXPECT_EQ(integer(steps[k], "step"), (int64_t)k + 1);
      loss += num(steps[k], "loss") / 6;
      kl += num(steps[k], "kl") / 6;
    }
    EXPECT_NEAR(num(epochs[e], "loss"), loss, 1e-6 * loss);
    EXPECT_NEAR(num(epochs[e], "kl"), kl, 1e-6 * kl + 1e-12);
    epoch_train_s += num(epochs[e], "train_s");
  }
  EXPECT_NEAR(epoch_train_s, num(epochs[2], "total_train_s"), 0.0025);  // each rounded to ms
}

// The test record names the epoch and step of the validation that selected
// the model (the first best one), not where training ended.
TEST(RunLog, TheTestRecordNamesTheSelectedModelsEpochAndStep) {
  srtest::TempDir tmp;
  sr_config cfg = config(tmp.file("run"), 8);
  cfg.train.lr = 1e-30;  // no update changes a float: every validation ties, the first one is selected
  sr_train_result res;
  Records recs;
  train_records(tmp, cfg, &res, &recs);
  const json_t *selected = nullptr;
  for (const json_t *v : recs.of("valid"))
    if (!selected || num(v, "ndcg@100") > num(selected, "ndcg@100")) selected = v;
  ASSERT_NE(selected, nullptr);
  std::vector<json_t *> test = recs.of("test");
  ASSERT_EQ(test.size(), 1u);
  EXPECT_EQ(integer(test[0], "epoch"), integer(selected, "epoch"));
  EXPECT_EQ(integer(test[0], "step"), integer(selected, "step"));
  EXPECT_EQ(integer(test[0], "final_step"), 48);
  EXPECT_EQ(integer(selected, "step"), 6);
  EXPECT_EQ(res.best_step, integer(selected, "step"));
  EXPECT_TRUE(json_is_true(json_object_get(selected, "best")));
}

// The metric fields of the records that say how training went.
std::string outcome(const Records &recs) {
  std::string out;
  for (const char *type : {"epoch", "valid", "test"})
    for (json_t *r : recs.of(type)) {
      json_t *copy = json_deep_copy(r);
      for (const char *volatile_key : {"time", "total_train_s", "train_s", "valid_s"})
        json_object_del(copy, volatile_key);
      char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
      out += std::string(text) + "\n";
      free(text);
      json_decref(copy);
    }
  return out;
}

// Resuming from an earlier checkpoint marks the records written after it
// superseded; what is left tells the run as if it had never been cut.
TEST(RunLog, ResumeMarksTheRecordsPastTheCheckpointSuperseded) {
  sr_log_set_level(SR_LOG_ERROR);
  srtest::TempDir tmp;
  const std::string whole = tmp.file("whole"), cut = tmp.file("cut");
  ASSERT_EQ(srtest::run_command("mkdir -p " + whole + " " + cut).exit_code, 0);
  sr_train_result res;
  ASSERT_EQ(train(config(whole, 3), whole, &res), SR_OK) << sr_error_message();
  ASSERT_EQ(train(config(cut, 3), cut, &res), SR_OK) << sr_error_message();
  sr_config again = config(cut, 3);  // from step 8: mid-epoch 2, after epoch 1's records
  snprintf(again.checkpoint.resume, sizeof again.checkpoint.resume, "%s/checkpoints/ckpt-0000000008.h5", cut.c_str());
  ASSERT_EQ(train(again, cut, &res), SR_OK) << sr_error_message();
  Records a, b;
  read_records(whole + "/metrics.jsonl", &a);
  read_records(cut + "/metrics.jsonl", &b);
  std::vector<json_t *> headers = b.of("header");
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_NE(std::string(json_string_value(json_object_get(headers[1], "resumed_from"))).find("ckpt-0000000008.h5"),
            std::string::npos);
  EXPECT_STREQ(json_string_value(json_object_get(headers[0], "run_id")),
               json_string_value(json_object_get(headers[1], "run_id")));
  int superseded = 0;
  for (const json_t *r : b.all) {
    if (!json_is_true(json_object_get(r, "superseded"))) continue;
    superseded++;
    EXPECT_GT(integer(r, "step"), 8);
  }
  EXPECT_EQ(superseded, (18 - 8) + 2 + 2 + 2 + 1)
      << "steps 9-18, epochs 2-3 and their validations, test records, the stop record";
  EXPECT_EQ(outcome(b), outcome(a));
}

// A full disk: the run fails naming metrics.jsonl, like a failed checkpoint
// write, instead of going on with a truncated record.
TEST(RunLog, AFullDiskFailsTheRunNamingTheFile) {
  sr_log_set_level(SR_LOG_QUIET);
  srtest::TempDir tmp;
  const std::string run = tmp.file("run");
  ASSERT_EQ(srtest::run_command("mkdir -p " + run + " && ln -s /dev/full " + run + "/metrics.jsonl").exit_code, 0);
  sr_train_result res;
  EXPECT_EQ(train(config(run, 2), run, &res), SR_EIO);
  const std::string message = sr_error_message();
  EXPECT_NE(message.find(run + "/metrics.jsonl"), std::string::npos) << message;
  EXPECT_NE(message.find(strerror(ENOSPC)), std::string::npos) << message;
}

// The same on a real full disk, through the binary: a 16 KiB tmpfs holds the
// run directory (checkpoints elsewhere); the run stops with exit 1 naming the
// file, which ends with a whole record.
TEST(RunLog, ARealFullDiskStopsTheBinaryAtAWholeRecord) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, data = tmp.file("d.h5"), cfg = tmp.file("c.yaml"), disk = tmp.file("disk");
  ASSERT_EQ(srtest::run_command(bin + " data synth -o " + data + " --users 600 --items 200 --heldout 60").exit_code,
            0);
  srtest::write_file(cfg, "data: {path: " + data + "}\nrun: {out_dir: " + disk +
                              ", name: r, threads: 1, log_every_s: 1.0e-9}\nmodel: {hidden: [16], latent_dim: 4}\n"
                              "train: {epochs: 100, batch_size: 100}\ncheckpoint: {dir: " +
                              tmp.file("ckpt") + "}\n");
  auto mount = srtest::run_command("mkdir -p " + disk + " && mount -t tmpfs -o size=16k tmpfs " + disk);
  // Mounting needs root (CAP_SYS_ADMIN); ctest reports the skip and its reason.
  if (mount.exit_code != 0) GTEST_SKIP() << "cannot mount a small tmpfs (needs root): " << mount.output;
  auto r = srtest::run_command(bin + " train " + cfg);
  const std::string jsonl = srtest::read_file(disk + "/r/metrics.jsonl");
  srtest::write_file(tmp.file("metrics.jsonl"), jsonl);
  srtest::run_command("umount " + disk);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("error: cannot write " + disk + "/r/metrics.jsonl: No space left on device"),
            std::string::npos)
      << r.output;
  ASSERT_FALSE(jsonl.empty());
  EXPECT_EQ(jsonl.back(), '\n');
  Records recs;
  read_records(tmp.file("metrics.jsonl"), &recs);  // fails on a cut line
  EXPECT_GT(recs.of("valid").size(), 1u);
}

// A write that stops part-way (here: the file size limit) leaves the file
// at its last whole record, and every later write fails with the first error.
TEST(RunLog, APartWrittenRecordIsCutBack) {
  srtest::TempDir tmp;
  const std::string path = tmp.file("metrics.jsonl");
  sr_run_log log;
  ASSERT_EQ(sr_run_log_open(&log, path.c_str()), SR_OK) << sr_error_message();
  ASSERT_EQ(sr_run_log_write(&log, json_pack("{s:s}", "type", "first")), SR_OK);
  const std::string first = srtest::read_file(path);
  struct rlimit old;
  getrlimit(RLIMIT_FSIZE, &old);
  struct rlimit limit = old;
  limit.rlim_cur = first.size() + 10;  // room for part of the next record
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  const int rc =
      sr_run_log_write(&log, json_pack("{s:s, s:s}", "type", "second", "pad", "0123456789012345678901234"));
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, old_handler);
  EXPECT_EQ(rc, SR_EIO);
  EXPECT_NE(std::string(sr_error_message()).find("cannot write " + path), std::string::npos) << sr_error_message();
  EXPECT_EQ(srtest::read_file(path), first);
  EXPECT_EQ(sr_run_log_write(&log, json_pack("{s:s}", "type", "third")), SR_EIO);
  EXPECT_EQ(srtest::read_file(path), first);
  EXPECT_EQ(sr_run_log_close(&log), SR_EIO);
}

}  // namespace

namespace {

// Results on stdout, progress on stderr with a UTC time stamp per line and the
// non-default config keys once; a progress bar only on a terminal.
TEST(RunLogCli, ResultsOnStdoutTimestampedProgressOnStderrABarOnlyOnATerminal) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, data = tmp.file("d.h5"), cfg = tmp.file("c.yaml");
  ASSERT_EQ(srtest::run_command(bin + " data synth -o " + data + " --users 600 --items 200 --heldout 60").exit_code,
            0);
  srtest::write_file(
      cfg, "data: {path: " + data + "}\nrun: {out_dir: " + tmp.path() +
               ", threads: 1}\nmodel: {hidden: [16], latent_dim: 4}\ntrain: {epochs: 2, batch_size: 100}\n");
  const std::string train = bin + " train " + cfg;
  auto out = srtest::run_command("(" + train + " --set run.name=a 2>" + tmp.file("err") + ")");
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const std::string err = srtest::read_file(tmp.file("err"));
  EXPECT_EQ(out.output.rfind("selected epoch ", 0), 0u) << out.output;
  EXPECT_NE(out.output.find("\ntest recall@20 "), std::string::npos) << out.output;
  EXPECT_EQ(out.output.find("valid recall@20", out.output.find('\n')), std::string::npos) << "progress on stdout";
  std::istringstream lines(err);
  int n = 0;
  for (std::string line; std::getline(lines, line); n++)  // "2026-12-03T14:20:01Z ..."
    EXPECT_TRUE(line.size() > 21 && line[4] == '-' && line[10] == 'T' && line[19] == 'Z' && line[20] == ' ') << line;
  EXPECT_GT(n, 5);
  EXPECT_NE(err.find("epoch 2  5 steps (to step 10) in "), std::string::npos) << err;
  EXPECT_NE(err.find("config (non-default keys; all in "), std::string::npos) << err;
  EXPECT_NE(err.find("model.latent_dim: 4"), std::string::npos) << err;
  EXPECT_EQ(err.find("eval_batch_size"), std::string::npos) << "a default key printed: " << err;
  EXPECT_EQ(err.find('\r'), std::string::npos) << "a progress bar in a file";
  // script(1) gives the training a terminal.
  auto tty = srtest::run_command("script -qec '" + train + " --set run.name=b' /dev/null");
  ASSERT_EQ(tty.exit_code, 0) << tty.output;
  EXPECT_NE(tty.output.find("\r[="), std::string::npos) << tty.output;
  EXPECT_NE(tty.output.find("%  epoch "), std::string::npos) << tty.output;
}

}  // namespace

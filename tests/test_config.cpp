// test_config.cpp — YAML configuration: defaults, loading, error messages,
// --set overrides, validation, printing and the docs/config.md reference.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "test_util.h"

extern "C" {
#include "../src/config/config_schema.h"
#include "shardrec/config.h"
#include "shardrec/error.h"
#include "shardrec/log.h"
#include "shardrec/optim.h"
}

namespace {

sr_config defaults() {
  sr_config c;
  sr_config_defaults(&c);
  return c;
}

// Loads `yaml` (labelled cfg.yaml) on top of the defaults; returns the code.
int load(sr_config *c, const std::string &yaml) {
  sr_error_clear();
  return sr_config_load_string(c, yaml.c_str(), "cfg.yaml");
}

// The message of a load that must fail with SR_ECONFIG.
std::string load_error(const std::string &yaml) {
  sr_config c = defaults();
  EXPECT_EQ(load(&c, yaml), SR_ECONFIG) << yaml;
  return sr_error_message();
}

std::string set_error(const std::string &assignment) {
  sr_config c = defaults();
  sr_error_clear();
  EXPECT_EQ(sr_config_set(&c, assignment.c_str()), SR_ECONFIG) << assignment;
  return sr_error_message();
}

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST(Config, DefaultsMatchTheDocumentedValues) {
  sr_config c = defaults();
  EXPECT_STREQ(c.run.name, "run");
  EXPECT_STREQ(c.run.out_dir, "runs");
  EXPECT_EQ(c.run.seed, 98765);
  EXPECT_EQ(c.run.log_every_s, 5.0);
  EXPECT_EQ(c.run.log_level, SR_LOG_INFO);
  EXPECT_EQ(c.run.log_all_ranks, 0);
  EXPECT_EQ(c.run.threads, 0);
  EXPECT_STREQ(c.data.path, "");
  EXPECT_EQ(c.model.type, SR_MODEL_MULTVAE);
  ASSERT_EQ(c.model.n_hidden, 1);
  EXPECT_EQ(c.model.hidden[0], 600);
  EXPECT_EQ(c.model.latent_dim, 200);
  EXPECT_EQ(c.model.dropout, 0.5);
  EXPECT_EQ(c.model.anneal_cap, 0.2);
  EXPECT_EQ(c.model.total_anneal_steps, 200000);
  EXPECT_EQ(c.model.l2_reg, 0.01);
  EXPECT_EQ(c.train.epochs, 200);
  EXPECT_EQ(c.train.batch_size, 500);
  EXPECT_EQ(c.train.optimizer, SR_OPTIM_ADAM);
  EXPECT_EQ(c.train.lr, 1e-3);
  EXPECT_EQ(c.train.beta1, 0.9);
  EXPECT_EQ(c.train.beta2, 0.999);
  EXPECT_EQ(c.train.eps, 1e-8);
  EXPECT_EQ(c.train.weight_decay, 0.0);
  EXPECT_EQ(c.train.eval_batch_size, 2000);
  EXPECT_EQ(c.train.eval_every, 1);
  EXPECT_EQ(c.train.max_steps, 0);
  EXPECT_EQ(c.train.time_limit_s, 0.0);
  EXPECT_STREQ(c.train.select_metric, "ndcg@100");
  ASSERT_EQ(c.eval.n_metrics, 3);
  EXPECT_STREQ(c.eval.metrics[0], "recall@20");
  EXPECT_STREQ(c.eval.metrics[1], "recall@50");
  EXPECT_STREQ(c.eval.metrics[2], "ndcg@100");
}

TEST(Config, LoadsAFullFileInEveryScalarAndListStyle) {
  srtest::TempDir dir;
  std::string path = dir.file("full.yaml");
  srtest::write_file(path,
                     "# a complete config\n"
                     "run:\n"
                     "  name: \"ml20m vae\"\n"
                     "  out_dir: '/scratch/runs'\n"
                     "  seed: 7\n"
                     "  log_every_s: .5\n"
                     "  log_level: WARN\n"
                     "  log_all_ranks: on\n"
                     "  threads: 4\n"
                     "data:\n"
                     "  path: data/ml-20m.h5\n"
                     "model:\n"
                     "  type: multdae\n"
                     "  hidden:\n"
                     "    - 1000\n"
                     "    - 300\n"
                     "  latent_dim: 100\n"
                     "  dropout: 0.25\n"
                     "  anneal_cap: 1\n"
                     "  total_anneal_steps: 1000\n"
                     "  l2_reg: 2.5e-2\n"
                     "train:\n"
                     "  epochs: 3\n"
                     "  batch_size: +64\n"
                     "  optimizer: adamw\n"
                     "  lr: 3E-4\n"
                     "  beta1: 0.8\n"
                     "  beta2: 0.99\n"
                     "  eps: 1e-6\n"
                     "  weight_decay: 0.1\n"
                     "  eval_batch_size: 100\n"
                     "  eval_every: 2\n"
                     "  max_steps: 5000000000\n"
                     "  time_limit_s: 60\n"
                     "  select_metric: \"recall@20\"\n"
                     "eval:\n"
                     "  metrics: [recall@20, 'ndcg@10', \"mrr@5\"]\n");
  sr_config c = defaults();
  sr_error_clear();
  ASSERT_EQ(sr_config_load_file(&c, path.c_str()), SR_OK) << sr_error_message();
  EXPECT_STREQ(c.run.name, "ml20m vae");
  EXPECT_STREQ(c.run.out_dir, "/scratch/runs");
  EXPECT_EQ(c.run.seed, 7);
  EXPECT_EQ(c.run.log_every_s, 0.5);
  EXPECT_EQ(c.run.log_level, SR_LOG_WARN);
  EXPECT_EQ(c.run.log_all_ranks, 1);
  EXPECT_EQ(c.run.threads, 4);
  EXPECT_STREQ(c.data.path, "data/ml-20m.h5");
  EXPECT_EQ(c.model.type, SR_MODEL_MULTDAE);
  ASSERT_EQ(c.model.n_hidden, 2);
  EXPECT_EQ(c.model.hidden[0], 1000);
  EXPECT_EQ(c.model.hidden[1], 300);
  EXPECT_EQ(c.model.hidden[2], 0);  // the unused tail is zeroed
  EXPECT_EQ(c.model.latent_dim, 100);
  EXPECT_EQ(c.model.dropout, 0.25);
  EXPECT_EQ(c.model.anneal_cap, 1.0);  // an integer is a valid float
  EXPECT_EQ(c.model.total_anneal_steps, 1000);
  EXPECT_EQ(c.model.l2_reg, 0.025);
  EXPECT_EQ(c.train.epochs, 3);
  EXPECT_EQ(c.train.batch_size, 64);
  EXPECT_EQ(c.train.optimizer, SR_OPTIM_ADAMW);
  EXPECT_EQ(c.train.lr, 3e-4);
  EXPECT_EQ(c.train.beta1, 0.8);
  EXPECT_EQ(c.train.beta2, 0.99);
  EXPECT_EQ(c.train.eps, 1e-6);
  EXPECT_EQ(c.train.weight_decay, 0.1);
  EXPECT_EQ(c.train.eval_batch_size, 100);
  EXPECT_EQ(c.train.eval_every, 2);
  EXPECT_EQ(c.train.max_steps, 5000000000LL);  // needs the int64
  EXPECT_EQ(c.train.time_limit_s, 60.0);
  EXPECT_STREQ(c.train.select_metric, "recall@20");
  ASSERT_EQ(c.eval.n_metrics, 3);
  EXPECT_STREQ(c.eval.metrics[0], "recall@20");
  EXPECT_STREQ(c.eval.metrics[1], "ndcg@10");
  EXPECT_STREQ(c.eval.metrics[2], "mrr@5");
}

TEST(Config, BooleanSpellings) {
  const char *truthy[] = {"true", "True", "yes", "on", "ON"}, *falsy[] = {"false", "no", "off", "No"};
  for (const char *t : truthy) {
    sr_config c = defaults();
    ASSERT_EQ(load(&c, std::string("run:\n  log_all_ranks: ") + t), SR_OK) << t;
    EXPECT_EQ(c.run.log_all_ranks, 1) << t;
  }
  for (const char *f : falsy) {
    sr_config c = defaults();
    c.run.log_all_ranks = 1;
    ASSERT_EQ(load(&c, std::string("run:\n  log_all_ranks: ") + f), SR_OK) << f;
    EXPECT_EQ(c.run.log_all_ranks, 0) << f;
  }
}

TEST(Config, EmptyDocumentAndEmptySectionChangeNothing) {
  sr_config base = defaults(), c = defaults();
  ASSERT_EQ(load(&c, ""), SR_OK);
  ASSERT_EQ(load(&c, "# only a comment\n"), SR_OK);
  ASSERT_EQ(load(&c, "train:\n  # lr: 1\nrun:\n"), SR_OK) << sr_error_message();
  EXPECT_EQ(std::memcmp(&base, &c, sizeof c), 0);
}

TEST(ConfigErrors, UnknownKeySuggestsTheNearestKeyOfItsSection) {
  EXPECT_EQ(load_error("train:\n  epochs: 3\n  lrr: 0.1\n"),
            "cfg.yaml:3:3: unknown key 'train.lrr' (did you mean 'train.lr'?)");
  EXPECT_EQ(load_error("train:\n  batchsize: 3\n"),
            "cfg.yaml:2:3: unknown key 'train.batchsize' (did you mean 'train.batch_size'?)");
}

TEST(ConfigErrors, UnknownSectionSuggestsTheNearestSection) {
  EXPECT_EQ(load_error("run:\n  seed: 1\ntrian:\n  lr: 1\n"),
            "cfg.yaml:3:1: unknown section 'trian' (did you mean 'train'?)");
}

TEST(ConfigErrors, KeyInTheWrongSectionPointsToTheRightOne) {
  EXPECT_EQ(load_error("model:\n  epochs: 3\n"),
            "cfg.yaml:2:3: unknown key 'model.epochs' (did you mean 'train.epochs'?)");
}

TEST(ConfigErrors, UnknownKeyWithoutCloseMatchListsTheValidKeys) {
  std::string msg = load_error("data:\n  file_name: x.h5\n");
  EXPECT_EQ(msg, "cfg.yaml:2:3: unknown key 'data.file_name' (valid keys in 'data': path)");
  msg = load_error("optimiser_settings:\n  x: 1\n");
  EXPECT_EQ(msg,
            "cfg.yaml:1:1: unknown section 'optimiser_settings' (valid sections: run, data, model, loss, ssl, train, "
            "eval, checkpoint, dist)");
}

TEST(ConfigErrors, WrongTypeNamesLineColumnKeyAndValue) {
  // "  batch_size: abc": the value starts after 2 + 11 + 1 = 14 characters -> column 15.
  EXPECT_EQ(load_error("run:\n  seed: 1\ntrain:\n  batch_size: abc\n"),
            "cfg.yaml:4:15: train.batch_size: expected an integer, got 'abc'");
  EXPECT_EQ(load_error("train:\n  epochs: 1.5\n"), "cfg.yaml:2:11: train.epochs: expected an integer, got '1.5'");
  EXPECT_EQ(load_error("train:\n  lr: fast\n"), "cfg.yaml:2:7: train.lr: expected a number, got 'fast'");
  EXPECT_EQ(load_error("train:\n  lr: 0x10\n"), "cfg.yaml:2:7: train.lr: expected a number, got '0x10'");
  EXPECT_EQ(load_error("train:\n  lr: [1]\n"), "cfg.yaml:2:7: train.lr: expected a number, got a list");
  EXPECT_TRUE(
      contains(load_error("run:\n  log_all_ranks: maybe\n"),
               "cfg.yaml:2:18: run.log_all_ranks: expected a boolean (true/false, yes/no, on/off), got 'maybe'"));
  EXPECT_EQ(load_error("model:\n  hidden: 600\n"),
            "cfg.yaml:2:11: model.hidden: expected a list of integers, got '600'");
  EXPECT_EQ(load_error("train: 5\n"), "cfg.yaml:1:8: train: expected a mapping of keys, got '5'");
  EXPECT_EQ(load_error("- run\n"), "cfg.yaml:1:1: top level: expected a mapping of sections, got a list");
}

TEST(ConfigErrors, NullIsNotAValue) {
  EXPECT_EQ(load_error("train:\n  lr: ~\n"), "cfg.yaml:2:7: train.lr: expected a number, got null");
  EXPECT_EQ(load_error("run:\n  name: null\n"), "cfg.yaml:2:9: run.name: expected a string, got null");
  EXPECT_EQ(load_error("train:\n  epochs:\n"), "cfg.yaml:2:10: train.epochs: expected an integer, got null");
}

TEST(ConfigErrors, OutOfRange) {
  EXPECT_EQ(load_error("train:\n  lr: -1\n"), "cfg.yaml:2:7: train.lr: must be > 0, got -1");
  EXPECT_EQ(load_error("train:\n  lr: 0\n"), "cfg.yaml:2:7: train.lr: must be > 0, got 0");
  EXPECT_EQ(load_error("model:\n  dropout: 1.0\n"), "cfg.yaml:2:12: model.dropout: must be in [0, 1), got 1.0");
  EXPECT_EQ(load_error("run:\n  seed: -5\n"), "cfg.yaml:2:9: run.seed: must be >= 0, got -5");
  // Positive values that a float rounds to 0 (or a softmax cannot resolve) name their key.
  EXPECT_EQ(load_error("train:\n  eps: 1e-300\n"), "cfg.yaml:2:8: train.eps: must be >= 1e-30, got 1e-300");
  EXPECT_EQ(load_error("loss:\n  temperature: 1e-300\n"),
            "cfg.yaml:2:16: loss.temperature: must be >= 0.001, got 1e-300");
  // "  hidden: [600, 0]": '0' follows 2 + 7 + 1 + 1 + 3 + 2 = 16 characters -> column 17.
  EXPECT_EQ(load_error("model:\n  hidden: [600, 0]\n"), "cfg.yaml:2:17: model.hidden[1]: must be >= 1, got 0");
  EXPECT_EQ(load_error("train:\n  epochs: 3000000000\n"),
            "cfg.yaml:2:11: train.epochs: 3000000000 does not fit a 32-bit integer");
  EXPECT_EQ(load_error("train:\n  max_steps: 99999999999999999999\n"),
            "cfg.yaml:2:14: train.max_steps: 99999999999999999999 does not fit a 64-bit integer");
  EXPECT_EQ(load_error("train:\n  lr: 1e999\n"), "cfg.yaml:2:7: train.lr: 1e999 does not fit a double");
}

TEST(ConfigErrors, BadEnumListsTheAllowedValues) {
  EXPECT_EQ(load_error("train:\n  optimizer: sgd\n"),
            "cfg.yaml:2:14: train.optimizer: expected one of adam, adamw, got 'sgd'");
  EXPECT_EQ(load_error("run:\n  log_level: verbose\n"),
            "cfg.yaml:2:14: run.log_level: expected one of debug, info, warn, error, got 'verbose'");
}

TEST(ConfigErrors, YamlSyntaxErrorsCarryLibyamlsPosition) {
  // The flow sequence opened on line 2 is never closed; libyaml notices at the
  // end of input (line 3, column 1) and names the construct it was parsing.
  std::string msg = load_error("train:\n  lr: [1, 2\n");
  EXPECT_TRUE(contains(msg, "cfg.yaml:3:1: YAML syntax error: ")) << msg;
  EXPECT_TRUE(contains(msg, "while parsing a flow sequence at line 2")) << msg;
  // A key indented less than its siblings ends the mapping; line 3 then starts an invalid key.
  msg = load_error("train:\n  lr: 1\n epochs: 3\n");
  EXPECT_TRUE(contains(msg, "cfg.yaml:3:2: YAML syntax error: ")) << msg;
  msg = load_error("run:\n  name: \"unterminated\n");
  EXPECT_TRUE(contains(msg, "cfg.yaml:3:1: YAML syntax error: found unexpected end of stream")) << msg;
  // Encoding errors: libyaml reports a byte offset, turned into line:column (byte 0xff is column 11).
  msg = load_error("run:\n  name: ab\xff\n");
  EXPECT_EQ(msg, "cfg.yaml:2:11: YAML syntax error: invalid leading UTF-8 octet");
}

// libyaml's scanner is quadratic in the nesting depth (160 KB of nested
// brackets took ~50 s): size and nesting are bounded before parsing, for
// config files, --set values and the configs checkpoints store alike.
TEST(ConfigErrors, HugeOrDeeplyNestedYamlIsRefusedBeforeParsing) {
  const std::string brackets = "train:\n  lr: " + std::string(2000, '[') + std::string(2000, ']') + "\n";
  EXPECT_EQ(load_error(brackets), "cfg.yaml:2:1031: more than 1024 '[' or '{': YAML nested too deep for a config");
  std::string braces = "run: ";
  for (int i = 0; i < 1100; i++) braces += "{a: ";
  EXPECT_TRUE(contains(load_error(braces + std::string(1100, '}')), "cfg.yaml:1:"));
  std::string dashes;
  for (int i = 0; i < 300; i++) dashes += "- ";
  EXPECT_EQ(load_error(dashes + "x\n"),
            "cfg.yaml:1:601: YAML nested deeper than column 256 (indentation and '- ' indicators)");
  std::string indented = "run:\n";
  for (int i = 1; i <= 300; i++) indented += std::string((size_t)i, ' ') + "a:\n";
  EXPECT_EQ(load_error(indented),
            "cfg.yaml:258:258: YAML nested deeper than column 256 (indentation and '- ' indicators)");
  EXPECT_EQ(load_error("# " + std::string(1 << 20, 'x') + "\n"),
            "cfg.yaml:1:1: 1048579 bytes of YAML, more than the 1048576 a config may have");
  // Within the bounds, a config as written by hand loads as before.
  sr_config c = defaults();
  EXPECT_EQ(load(&c, "model:\n  hidden: [600, 200]\neval: {metrics: [recall@20, ndcg@100]}\n"), SR_OK)
      << sr_error_message();
}

TEST(ConfigErrors, DuplicatesAndMultipleDocuments) {
  EXPECT_EQ(load_error("train:\n  lr: 1\n  lr: 2\n"),
            "cfg.yaml:3:3: duplicate key 'train.lr' (first given at line 2)");
  EXPECT_EQ(load_error("train:\n  lr: 1\nrun: {}\ntrain:\n  epochs: 2\n"),
            "cfg.yaml:4:1: duplicate section 'train' (first given at line 1)");
  EXPECT_EQ(load_error("train: {lr: 1}\n---\nrun: {}\n"),
            "cfg.yaml:3:1: expected a single YAML document, found another");
  EXPECT_EQ(load_error("train.lr: 1\n"),
            "cfg.yaml:1:1: 'train.lr': dotted names are not keys here; nest them one level per '.'");
}

TEST(ConfigErrors, FailedLoadLeavesTheConfigUnchanged) {
  sr_config base = defaults(), c = defaults();
  ASSERT_EQ(load(&c, "train:\n  lr: 0.5\n  epochs: x\n"), SR_ECONFIG);
  EXPECT_EQ(std::memcmp(&base, &c, sizeof c), 0);
  ASSERT_EQ(load(&c, "model:\n  hidden: [1, 2, 3, 4, 5, 6, 7, 8, 9]\n"), SR_ECONFIG);
  EXPECT_EQ(std::memcmp(&base, &c, sizeof c), 0);
}

TEST(ConfigErrors, MissingFileIsAnIoErrorNamingThePath) {
  srtest::TempDir dir;
  std::string path = dir.file("absent.yaml");
  sr_config c = defaults();
  sr_error_clear();
  EXPECT_EQ(sr_config_load_file(&c, path.c_str()), SR_EIO);
  EXPECT_EQ(std::string(sr_error_message()), "cannot open config '" + path + "': No such file or directory");
  // A directory opens but cannot be read.
  EXPECT_EQ(sr_config_load_file(&c, dir.path().c_str()), SR_EIO);
  EXPECT_EQ(std::string(sr_error_message()), "cannot read config '" + dir.path() + "': Is a directory");
}

TEST(ConfigErrors, FileErrorsUseTheFileName) {
  srtest::TempDir dir;
  std::string path = dir.file("bad.yaml");
  srtest::write_file(path, "train:\n  lrr: 1\n");
  sr_config c = defaults();
  sr_error_clear();
  EXPECT_EQ(sr_config_load_file(&c, path.c_str()), SR_ECONFIG);
  EXPECT_EQ(std::string(sr_error_message()), path + ":2:3: unknown key 'train.lrr' (did you mean 'train.lr'?)");
}

TEST(ConfigOverrides, SetParsesTypedValues) {
  sr_config c = defaults();
  const char *sets[] = {
      "train.lr=3e-4",         "model.hidden=[1000, 300]", "eval.metrics=[ndcg@10]",      "run.name=\"a b: c\"",
      "run.log_all_ranks=yes", "model.type=multdae",       "train.select_metric=ndcg@10", "train.max_steps=123"};
  for (const char *s : sets) ASSERT_EQ(sr_config_set(&c, s), SR_OK) << s << ": " << sr_error_message();
  EXPECT_EQ(c.train.lr, 3e-4);
  ASSERT_EQ(c.model.n_hidden, 2);
  EXPECT_EQ(c.model.hidden[0], 1000);
  EXPECT_EQ(c.model.hidden[1], 300);
  ASSERT_EQ(c.eval.n_metrics, 1);
  EXPECT_STREQ(c.eval.metrics[0], "ndcg@10");
  EXPECT_STREQ(c.eval.metrics[1], "");  // the old entries are cleared
  EXPECT_STREQ(c.run.name, "a b: c");
  EXPECT_EQ(c.run.log_all_ranks, 1);
  EXPECT_EQ(c.model.type, SR_MODEL_MULTDAE);
  EXPECT_EQ(c.train.max_steps, 123);
}

TEST(ConfigOverrides, SetOverridesAFileValue) {
  sr_config c = defaults();
  ASSERT_EQ(load(&c, "train:\n  lr: 0.5\n  epochs: 7\n"), SR_OK);
  ASSERT_EQ(sr_config_set(&c, "train.lr=0.25"), SR_OK);
  EXPECT_EQ(c.train.lr, 0.25);
  EXPECT_EQ(c.train.epochs, 7);
}

TEST(ConfigOverrides, ErrorsStartWithTheAssignment) {
  EXPECT_EQ(set_error("train.lrr=1"), "--set train.lrr=1: unknown key 'train.lrr' (did you mean 'train.lr'?)");
  EXPECT_EQ(set_error("trian.lr=1"), "--set trian.lr=1: unknown section 'trian' (did you mean 'train'?)");
  EXPECT_EQ(set_error("lr=1"), "--set lr=1: unknown section 'lr' (did you mean 'train.lr'?)");
  EXPECT_EQ(set_error("train.lr=abc"), "--set train.lr=abc: train.lr: expected a number, got 'abc'");
  EXPECT_EQ(set_error("train.lr=-2"), "--set train.lr=-2: train.lr: must be > 0, got -2");
  EXPECT_EQ(set_error("train.lr="), "--set train.lr=: train.lr: expected a number, got null");
  EXPECT_EQ(set_error("train.lr"), "--set train.lr: expected section.key=value");
  EXPECT_EQ(set_error("data=1"), "--set data=1: 'data' is a section, not a key (its keys: path)");
  EXPECT_EQ(set_error("train..lr=1"), "--set train..lr=1: 'train..lr' is not a section.key path");
  EXPECT_EQ(set_error("train.lr.x=1"), "--set train.lr.x=1: 'train.lr' is a key, not a section");
  EXPECT_EQ(set_error("model.hidden=[1, 2, 3, 4, 5, 6, 7, 8, 9]"),
            "--set model.hidden=[1, 2, 3, 4, 5, 6, 7, 8, 9]: model.hidden: at most 8 entries allowed, got 9");
  std::string msg = set_error("model.hidden=[1,");
  EXPECT_TRUE(contains(msg, "--set model.hidden=[1,: YAML syntax error: ")) << msg;
}

TEST(ConfigLists, LengthLimits) {
  sr_config c = defaults();
  ASSERT_EQ(sr_config_set(&c, "model.hidden=[8, 7, 6, 5, 4, 3, 2, 1]"), SR_OK);  // SR_MAX_LAYERS = 8 fits
  EXPECT_EQ(c.model.n_hidden, SR_MAX_LAYERS);
  EXPECT_EQ(c.model.hidden[7], 1);
  ASSERT_EQ(sr_config_set(&c, "model.hidden=[]"), SR_OK);  // the DAE's [I -> 200 -> I] has no hidden layer
  EXPECT_EQ(c.model.n_hidden, 0);
  EXPECT_EQ(set_error("eval.metrics=[]"), "--set eval.metrics=[]: eval.metrics: needs at least 1 entry, got 0");

  std::string metrics = "[";
  for (int i = 1; i <= SR_MAX_METRICS; i++) metrics += (i > 1 ? ", ndcg@" : "ndcg@") + std::to_string(i);
  ASSERT_EQ(sr_config_set(&c, ("eval.metrics=" + metrics + "]").c_str()), SR_OK) << sr_error_message();
  EXPECT_EQ(c.eval.n_metrics, SR_MAX_METRICS);
  std::string msg = set_error("eval.metrics=" + metrics + ", mrr@1]");
  EXPECT_TRUE(contains(msg, "eval.metrics: at most 16 entries allowed, got 17")) << msg;

  // SR_METRIC_NAME_MAX = 32 holds 31 characters and the NUL.
  std::string name31 = "ndcg@" + std::string(26, '1'), name32 = name31 + "1";
  ASSERT_EQ(sr_config_set(&c, ("eval.metrics=[" + name31 + "]").c_str()), SR_OK);
  EXPECT_EQ(load_error("eval:\n  metrics:\n    - ndcg@1\n    - " + name32 + "\n"),
            "cfg.yaml:4:7: eval.metrics[1]: longer than 31 characters (32 given)");
}

TEST(ConfigValidate, RequiresDataPath) {
  sr_config c = defaults();
  sr_error_clear();
  EXPECT_EQ(sr_config_validate(&c), SR_ECONFIG);
  EXPECT_EQ(std::string(sr_error_message()),
            "data.path: required, but not set (set it in the config file or with --set data.path=...)");
  ASSERT_EQ(sr_config_set(&c, "data.path=x.h5"), SR_OK);
  EXPECT_EQ(sr_config_validate(&c), SR_OK) << sr_error_message();
}

// Only the autoencoders have item layers to split.
TEST(ConfigValidate, ItemParallelismIsForTheAutoencoders) {
  sr_config c = defaults();
  ASSERT_EQ(sr_config_set(&c, "data.path=x.h5"), SR_OK);
  ASSERT_EQ(sr_config_set(&c, "dist.item_parallel=4"), SR_OK);
  EXPECT_EQ(sr_config_validate(&c), SR_OK) << sr_error_message();  // multvae
  ASSERT_EQ(sr_config_set(&c, "model.type=twotower"), SR_OK);
  EXPECT_EQ(sr_config_validate(&c), SR_ECONFIG);
  EXPECT_EQ(std::string(sr_error_message()),
            "dist.item_parallel: 4, but it splits the item layers of multvae and multdae only");
  EXPECT_EQ(sr_config_set(&c, "dist.item_parallel=0"), SR_ECONFIG);  // >= 1
}

TEST(ConfigValidate, MetricNamesAndSelection) {
  sr_config c = defaults();
  ASSERT_EQ(sr_config_set(&c, "data.path=x.h5"), SR_OK);
  ASSERT_EQ(sr_config_set(&c, "eval.metrics=[ndcg@100, precision@5]"), SR_OK);
  sr_error_clear();
  EXPECT_EQ(sr_config_validate(&c), SR_ECONFIG);
  EXPECT_EQ(std::string(sr_error_message()).rfind("eval.metrics[1]: ", 0), 0u) << sr_error_message();

  // A metric listed twice, even spelled differently, is refused here rather
  // than when training starts.
  ASSERT_EQ(sr_config_set(&c, "eval.metrics=[ndcg@100, NDCG@100]"), SR_OK);
  EXPECT_EQ(sr_config_validate(&c), SR_ECONFIG);
  EXPECT_EQ(std::string(sr_error_message()).rfind("eval.metrics: metric 'NDCG@100' is listed twice", 0), 0u)
      << sr_error_message();

  ASSERT_EQ(sr_config_set(&c, "eval.metrics=[recall@20, ndcg@100]"), SR_OK);
  ASSERT_EQ(sr_config_set(&c, "train.select_metric=ndcg"), SR_OK);
  EXPECT_EQ(sr_config_validate(&c), SR_ECONFIG);
  EXPECT_EQ(std::string(sr_error_message()).rfind("train.select_metric: ", 0), 0u) << sr_error_message();

  ASSERT_EQ(sr_config_set(&c, "train.select_metric=recall@50"), SR_OK);
  EXPECT_EQ(sr_config_validate(&c), SR_ECONFIG);
  EXPECT_EQ(std::string(sr_error_message()),
            "train.select_metric: 'recall@50' is not one of eval.metrics (add it there to select on it)");

  ASSERT_EQ(sr_config_set(&c, "train.select_metric=NDCG@100"), SR_OK);  // compared as parsed metrics
  EXPECT_EQ(sr_config_validate(&c), SR_OK) << sr_error_message();
}

TEST(ConfigYaml, PrintsEveryKeyInSchemaOrderWithExactFloats) {
  sr_config c = defaults();
  char *yaml = sr_config_to_yaml(&c);
  std::string text(yaml);
  std::free(yaml);
  EXPECT_EQ(text.rfind("# shardrec ", 0), 0u);
  EXPECT_TRUE(contains(text, "\nrun:\n  name: run\n  out_dir: runs\n  seed: 98765\n  log_every_s: 5.0\n"));
  EXPECT_TRUE(contains(text, "\ndata:\n  path: \"\"\nmodel:\n  type: multvae\n  hidden: [600]\n"));
  EXPECT_TRUE(contains(text, "  lr: 0.001\n"));
  EXPECT_TRUE(contains(text, "  eps: 1.0e-08\n"));
  EXPECT_TRUE(contains(text, "  weight_decay: 0.0\n"));
  EXPECT_TRUE(contains(text, "  stall_timeout_s: 300.0\n")) << "whole numbers in full, not 3.0e+02";
  EXPECT_TRUE(contains(text, "\neval:\n  metrics: [recall@20, recall@50, ndcg@100]\n"));
  for (int i = 0; i < sr_config_schema_count; i++) {
    const char *path = sr_config_schema[i].path;
    std::string leaf = std::strrchr(path, '.') + 1;
    EXPECT_TRUE(contains(text, "\n  " + leaf + ": ")) << path;
  }
}

TEST(ConfigYaml, RoundTripsExactly) {
  sr_config c = defaults();
  const char *sets[] = {"run.name=\"it's a \\\"run\\\": #1 \\\\ done\"",
                        "run.out_dir=\"/scratch/with space/runs\"",
                        "data.path=yes",  // a string that YAML 1.1 would read as a boolean unless quoted
                        "run.seed=9007199254740993",
                        "run.log_every_s=0.1",
                        "model.dropout=0.30000000000000004",
                        "model.anneal_cap=1e-300",
                        "model.l2_reg=123456789.125",
                        "train.lr=3.3333333333333335e-05",
                        "train.time_limit_s=5",
                        "model.hidden=[1024, 512, 256]",
                        "eval.metrics=[recall@20, \"ndcg@100\", mrr@7]",
                        "train.optimizer=adamw",
                        "run.log_level=error",
                        "run.log_all_ranks=true"};
  for (const char *s : sets) ASSERT_EQ(sr_config_set(&c, s), SR_OK) << s << ": " << sr_error_message();
  c.train.beta1 = 1.0 / 3.0;
  EXPECT_STREQ(c.run.name, "it's a \"run\": #1 \\ done");

  char *yaml = sr_config_to_yaml(&c);
  sr_config back;
  std::memset(&back, 0xAB, sizeof back);  // defaults must overwrite every byte, padding included
  sr_config_defaults(&back);
  sr_error_clear();
  ASSERT_EQ(sr_config_load_string(&back, yaml, "resolved.yaml"), SR_OK) << sr_error_message() << "\n" << yaml;
  EXPECT_EQ(std::memcmp(&c, &back, sizeof c), 0) << yaml;
  EXPECT_TRUE(contains(yaml, "  path: \"yes\"\n")) << yaml;
  std::free(yaml);

  // A fresh default config survives the trip too.
  sr_config d = defaults(), d_back = defaults();
  yaml = sr_config_to_yaml(&d);
  ASSERT_EQ(sr_config_load_string(&d_back, yaml, "defaults.yaml"), SR_OK) << sr_error_message();
  EXPECT_EQ(std::memcmp(&d, &d_back, sizeof d), 0);
  std::free(yaml);
}

// docs/config.md must carry, for every key, the row the schema produces (type,
// default, allowed values, description), so the reference cannot drift.
TEST(ConfigDocs, ReferenceListsEveryKeyAsTheSchemaDescribesIt) {
  std::string doc = srtest::read_file(std::string(SHARDREC_SOURCE_DIR) + "/docs/config.md");
  ASSERT_FALSE(doc.empty());
  for (int i = 0; i < sr_config_schema_count; i++) {
    char row[2048];
    sr_config_markdown_row(&sr_config_schema[i], row, sizeof row);
    EXPECT_TRUE(contains(doc, std::string("\n") + row + "\n")) << "docs/config.md lacks the row\n" << row;
  }
  // The example file in the document loads.
  size_t begin = doc.find("```yaml\n"), end = doc.find("```", begin + 8);
  ASSERT_NE(begin, std::string::npos);
  sr_config c = defaults();
  ASSERT_EQ(load(&c, doc.substr(begin + 8, end - begin - 8)), SR_OK) << sr_error_message();
  EXPECT_STREQ(c.data.path, "data/ml-20m.h5");
}

// test_end_to_end.cpp — the whole pipeline on synthetic data: generate, split,
// train Mult-VAE / Mult-DAE, select on validation, evaluate on test, against
// the most-popular-items baseline; and the same through the shardrec binary
// (data synth -> train -> eval of the saved checkpoint).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "test_util.h"

extern "C" {
#include "shardrec/checkpoint.h"
#include "shardrec/config.h"
#include "shardrec/dataset.h"
#include "shardrec/dist.h"
#include "shardrec/error.h"
#include "shardrec/log.h"
#include "shardrec/synth.h"
#include "shardrec/train.h"
}

namespace {

sr_dataset make_dataset() { return srtest::synthetic_dataset(3000, 600, 300, 25); }

double mean_of(const sr_metrics &m, const char *name) {
  int i = sr_metrics_find(&m, name);
  EXPECT_GE(i, 0) << name;
  return i >= 0 ? sr_metrics_mean(&m, i) : 0.0;
}

void train_and_compare_to_popularity(sr_model_type type) {
  sr_log_set_level(SR_LOG_WARN);
  sr_dataset d = make_dataset();
  sr_config cfg;
  sr_config_defaults(&cfg);
  snprintf(cfg.data.path, sizeof cfg.data.path, "in-memory");
  cfg.model.type = type;
  cfg.model.hidden[0] = 200;
  cfg.model.latent_dim = 64;
  cfg.model.total_anneal_steps = 2000;
  cfg.train.batch_size = 100;
  cfg.train.epochs = 12;
  cfg.train.eval_every = 3;
  sr_dist self;
  sr_dist_self(&self);
  sr_model *m = nullptr;
  sr_train_result res;
  ASSERT_EQ(sr_train(&cfg, &self, &d, nullptr, &m, &res), 0) << sr_error_message();
  double model = mean_of(res.test, "ndcg@100"), popularity = mean_of(res.test_popularity, "ndcg@100");
  std::printf("%s: test ndcg@100 %.4f, popularity %.4f\n", type == SR_MODEL_MULTVAE ? "Mult-VAE" : "Mult-DAE", model,
              popularity);
  // The planted factors are learnable: the model must beat popularity by a
  // wide margin (measured: Mult-VAE 0.47, Mult-DAE 0.51 vs popularity 0.22).
  EXPECT_GT(model, popularity + 0.10);
  EXPECT_GT(model, 2.0 * popularity);
  EXPECT_GT(mean_of(res.test, "recall@20"), mean_of(res.test_popularity, "recall@20") + 0.10);
  EXPECT_GE(res.best_epoch, 3);
  EXPECT_EQ(res.steps, 12 * ((d.train.n_rows + 99) / 100));
  EXPECT_EQ(res.test.n_users, res.test_popularity.n_users);
  sr_model_destroy(m);
  sr_dataset_free(&d);
}

}  // namespace

// The two-tower model learns the planted structure from (user, item) pairs:
// query tower = mean of the user's item embeddings, item tower = id +
// cluster, tags, popularity bucket; SSL and logQ on.
TEST(EndToEnd, TwoTowerBeatsPopularityByAWideMargin) {
  sr_log_set_level(SR_LOG_WARN);
  sr_dataset d = srtest::synthetic_dataset(3000, 600, 300, 25, true);
  sr_config cfg;
  sr_config_defaults(&cfg);
  snprintf(cfg.data.path, sizeof cfg.data.path, "in-memory");
  cfg.model.type = SR_MODEL_TWOTOWER;
  cfg.loss.logq_scaled = 0;
  cfg.train.lr = 5e-3;
  cfg.train.batch_size = 256;
  cfg.train.epochs = 3;
  sr_dist self;
  sr_dist_self(&self);
  sr_model *m = nullptr;
  sr_train_result res;
  ASSERT_EQ(sr_train(&cfg, &self, &d, nullptr, &m, &res), 0) << sr_error_message();
  double model = mean_of(res.test, "recall@50"), popularity = mean_of(res.test_popularity, "recall@50");
  std::printf("two-tower: test recall@50 %.4f, popularity %.4f\n", model, popularity);
  // Measured: 0.71 vs 0.40.
  EXPECT_GT(model, popularity + 0.10);
  EXPECT_EQ(res.sample_unit, SR_SAMPLES_PAIRS);
  EXPECT_EQ(res.steps, 3 * ((d.train.nnz + 255) / 256));
  sr_model_destroy(m);
  sr_dataset_free(&d);
}

TEST(EndToEnd, MultVaeBeatsPopularityByAWideMargin) { train_and_compare_to_popularity(SR_MODEL_MULTVAE); }
TEST(EndToEnd, MultDaeBeatsPopularityByAWideMargin) { train_and_compare_to_popularity(SR_MODEL_MULTDAE); }

// The binary: synth -> train -> eval reproduces the test metrics of training
// from the saved checkpoint alone. `model` is the YAML of the model section,
// `eval_flags` extra eval options; the training's output goes to *train_output.
static void train_then_eval_through_binary(const std::string &model, const std::string &eval_flags,
                                           std::string *train_output = nullptr) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, data = tmp.file("d.h5"), cfg = tmp.file("c.yaml");
  auto synth = srtest::run_command(bin + " data synth -o " + data + " --users 2000 --items 400 --heldout 200");
  ASSERT_EQ(synth.exit_code, 0) << synth.output;
  srtest::write_file(cfg, "run: {name: e2e, out_dir: " + tmp.path() + "}\ndata: {path: " + data +
                              "}\nmodel: " + model + "\ntrain: {epochs: 3, batch_size: 100}\n");
  // More BLAS threads than CPUs: bounded by the CPUs, with a warning.
  auto train = srtest::run_command(bin + " train " + cfg + " --set train.lr=2e-3 --set run.threads=100000");
  ASSERT_EQ(train.exit_code, 0) << train.output;
  if (train_output) *train_output = train.output;
  EXPECT_NE(train.output.find("lr: 0.002"), std::string::npos) << "resolved config printed";
  EXPECT_NE(train.output.find("run.threads: 100000 is more than the"), std::string::npos) << train.output;
  const std::string run = tmp.file("e2e");
  EXPECT_NE(srtest::read_file(run + "/config.yaml").find("lr: 0.002"), std::string::npos);
  std::string jsonl = srtest::read_file(run + "/metrics.jsonl");
  EXPECT_NE(jsonl.find("\"type\":\"valid\""), std::string::npos);
  EXPECT_NE(jsonl.find("\"type\":\"test\""), std::string::npos);
  // "test recall@20 0.1234  recall@50 ..." from training, and from eval.
  size_t at = train.output.find("\ntest recall@20 ");
  ASSERT_NE(at, std::string::npos) << train.output;
  std::string trained = train.output.substr(at + 6, train.output.find("  (", at) - at - 6);
  auto eval = srtest::run_command(bin + " eval " + run + "/model.h5 --split test --popularity " +
                                  (eval_flags.empty() ? "" : eval_flags + " " + data));
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_NE(eval.output.find(trained), std::string::npos)
      << "train said: " << trained << "\neval said: " << eval.output;
  EXPECT_NE(eval.output.find("popularity"), std::string::npos);
}

TEST(EndToEnd, CommandLineTrainThenEvalTheCheckpoint) {
  train_then_eval_through_binary("{hidden: [100], latent_dim: 32}", "");
}

// The two-tower model is rebuilt over the features of the dataset given to eval.
TEST(EndToEnd, CommandLineTwoTowerTrainThenEvalTheCheckpoint) {
  train_then_eval_through_binary("{type: twotower, feature_dim: 8, tower_hidden: [32], embedding_dim: 16}", "--data");
}

// EASE is fitted in closed form: the binary says so instead of "trained 0 steps".
TEST(EndToEnd, CommandLineEaseFitThenEvalTheCheckpoint) {
  std::string output;
  train_then_eval_through_binary("{type: ease, ease_lambda: 100}", "", &output);
  EXPECT_NE(output.find("\nfitted in "), std::string::npos) << output;
  EXPECT_EQ(output.find("trained 0 steps"), std::string::npos) << output;
}

// A run directory holds one run (issue 13): a fresh run where another left
// its checkpoints is refused, naming the ways out, and leaves the directory
// as it was; --overwrite starts it over; a directory in use by another
// training is refused naming that training's pid.
TEST(EndToEnd, ARunDirectoryHoldsOneRun) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, data = tmp.file("d.h5"), cfg = tmp.file("c.yaml"), run = tmp.file("r");
  ASSERT_EQ(srtest::run_command(bin + " data synth -o " + data + " --users 600 --items 200 --heldout 60").exit_code,
            0);
  srtest::write_file(cfg, "run: {log_level: warn}\ndata: {path: " + data +
                              "}\nmodel: {hidden: [16], latent_dim: 4}\ntrain: {epochs: 2, batch_size: 100}\n");
  const std::string train = bin + " train " + cfg + " --run-dir " + run;
  auto first = srtest::run_command(train);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string config = srtest::read_file(run + "/config.yaml"),
                    latest = srtest::read_file(run + "/checkpoints/latest");

  auto again = srtest::run_command(train + " --set train.lr=0.5");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.output.find("run directory " + run + " already holds a run"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("--resume auto"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("--overwrite"), std::string::npos) << again.output;
  EXPECT_EQ(srtest::read_file(run + "/config.yaml"), config);
  EXPECT_EQ(srtest::read_file(run + "/checkpoints/latest"), latest);

  auto over = srtest::run_command(train + " --overwrite --set train.lr=2e-3");
  ASSERT_EQ(over.exit_code, 0) << over.output;
  EXPECT_NE(srtest::read_file(run + "/config.yaml").find("lr: 0.002"), std::string::npos);
  const std::string jsonl = srtest::read_file(run + "/metrics.jsonl");
  EXPECT_EQ(jsonl.find("\"type\":\"test\""), jsonl.rfind("\"type\":\"test\"")) << "one run's records: " << jsonl;

  // Another training holds the lock (here: this test process).
  int fd = open((run + "/.lock").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
  ASSERT_EQ(ftruncate(fd, 0), 0);
  const std::string pid = std::to_string(getpid()) + "\n";
  ASSERT_EQ(write(fd, pid.data(), pid.size()), (ssize_t)pid.size());
  auto busy = srtest::run_command(train + " --resume auto");
  close(fd);
  EXPECT_EQ(busy.exit_code, 1);
  EXPECT_NE(busy.output.find("is in use by another training (pid " + std::to_string(getpid()) + ")"),
            std::string::npos)
      << busy.output;
}

TEST(EndToEnd, DivergenceStopsWithAClearError) {
  sr_log_set_level(SR_LOG_ERROR);
  sr_dataset d = make_dataset();
  sr_config cfg;
  sr_config_defaults(&cfg);
  snprintf(cfg.data.path, sizeof cfg.data.path, "in-memory");
  cfg.model.hidden[0] = 32;
  cfg.model.latent_dim = 8;
  cfg.train.lr = 1e30;  // the first update blows every weight up
  cfg.train.epochs = 2;
  sr_dist self;
  sr_dist_self(&self);
  sr_train_result res;
  EXPECT_EQ(sr_train(&cfg, &self, &d, nullptr, nullptr, &res), SR_ENUMERIC);
  EXPECT_NE(std::string(sr_error_message()).find("non-finite"), std::string::npos) << sr_error_message();
  EXPECT_NE(std::string(sr_error_message()).find("train.lr"), std::string::npos) << sr_error_message();
  sr_dataset_free(&d);
}

TEST(EndToEnd, ClearErrorsAndNonZeroExits) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, cfg = tmp.file("c.yaml");
  srtest::write_file(cfg, "data: {path: " + tmp.file("missing.h5") + "}\ntrain:\n  lrr: 1\n");
  auto bad_key = srtest::run_command(bin + " train " + cfg);
  EXPECT_EQ(bad_key.exit_code, 1);
  EXPECT_NE(bad_key.output.find("c.yaml:3:3: unknown key 'train.lrr' (did you mean 'train.lr'?)"), std::string::npos)
      << bad_key.output;
  srtest::write_file(cfg, "data: {path: " + tmp.file("missing.h5") + "}\nrun: {out_dir: " + tmp.path() + "}\n");
  auto missing = srtest::run_command(bin + " train " + cfg);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("missing.h5"), std::string::npos) << missing.output;
  auto no_ckpt = srtest::run_command(bin + " eval " + tmp.file("nope.h5"));
  EXPECT_EQ(no_ckpt.exit_code, 1);
  EXPECT_NE(no_ckpt.output.find("nope.h5"), std::string::npos) << no_ckpt.output;
  auto usage = srtest::run_command(bin + " train");
  EXPECT_EQ(usage.exit_code, 2);
  auto bad_batch = srtest::run_command(bin + " eval " + tmp.file("nope.h5") + " --batch 12abc");
  EXPECT_EQ(bad_batch.exit_code, 2);
  EXPECT_NE(bad_batch.output.find("--batch: expected an integer"), std::string::npos) << bad_batch.output;
  // Under Slurm, tasks started without an MPI plugin: refuse before MPI_Init,
  // say why (tests/slurm/test_sbatch.sh does it with a real srun).
  srtest::write_file(cfg, "data: {path: x.h5}\n");
  auto no_plugin = srtest::run_command("SLURM_NTASKS=4 SLURM_STEP_ID=0 " + bin + " train " + cfg);
  EXPECT_EQ(no_plugin.exit_code, 1);
  EXPECT_NE(no_plugin.output.find("without an MPI plugin"), std::string::npos) << no_plugin.output;
  EXPECT_NE(no_plugin.output.find("srun --mpi=pmix"), std::string::npos) << no_plugin.output;
  // A plugin that this MPI does not understand: N tasks that each see one process.
  auto singleton = srtest::run_command("SLURM_NTASKS=4 SLURM_STEP_ID=0 SLURM_MPI_TYPE=pmix " + bin + " train " + cfg);
  EXPECT_EQ(singleton.exit_code, 1);
  EXPECT_NE(singleton.output.find("unrelated singleton"), std::string::npos) << singleton.output;
  EXPECT_NE(singleton.output.find("srun --mpi=pmix"), std::string::npos) << singleton.output;
}

// Cold-start items through the binary (issue 17): data synth --cold-items
// holds items out of training; with eval.slices the two-tower model reports
// their slice, ranked by their features, and Mult-VAE says it cannot instead
// of failing; shardrec eval --slices prints the same.
TEST(EndToEnd, ColdStartItemsAreReportedOrDeclined) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, data = tmp.file("d.h5");
  auto synth = srtest::run_command(bin + " data synth -o " + data +
                                   " --users 600 --items 300 --heldout 60 --causal-features --cold-items 0.1");
  ASSERT_EQ(synth.exit_code, 0) << synth.output;
  EXPECT_NE(synth.output.find("(30 cold-start)"), std::string::npos) << synth.output;
  const std::string common = " --set data.path=" + data +
                             " --set train.epochs=1 --set eval.slices=[popularity] --set run.threads=1 --run-dir ";
  auto tt = srtest::run_command(bin + " train /dev/null --set model.type=twotower" + common + tmp.file("tt"));
  ASSERT_EQ(tt.exit_code, 0) << tt.output;
  // The log line of a slice: "test cold  30 items  27 users  recall@20 ...".
  auto line_of = [](const std::string &out, const std::string &prefix) {
    const size_t at = out.find("\n" + prefix);
    return at == std::string::npos ? std::string() : out.substr(at + 1, out.find('\n', at + 1) - at - 1);
  };
  const std::string declined = "not scored: this model has no item features to rank items unseen in training by";
  EXPECT_NE(line_of(tt.output, "test cold  30 items").find("recall@20"), std::string::npos) << tt.output;
  EXPECT_NE(line_of(tt.output, "test popularity baseline cold").find(declined), std::string::npos) << tt.output;
  std::string jsonl = srtest::read_file(tmp.file("tt") + "/metrics.jsonl");
  EXPECT_NE(jsonl.find("\"cold\":{\"items\":30,"), std::string::npos) << jsonl;
  // Uniform negatives over a catalogue with cold items: warned about, once.
  const std::string warning =
      "loss.uniform_negatives: the uniform draws cover the whole catalogue, its 30 cold-start";
  EXPECT_EQ(tt.output.find(warning), std::string::npos) << tt.output;
  auto mixed =
      srtest::run_command(bin + " train /dev/null --set model.type=twotower --set loss.uniform_negatives=16" +
                          common + tmp.file("mixed"));
  ASSERT_EQ(mixed.exit_code, 0) << mixed.output;
  EXPECT_NE(mixed.output.find(warning), std::string::npos) << mixed.output;
  auto vae = srtest::run_command(bin + " train /dev/null" + common + tmp.file("vae"));
  ASSERT_EQ(vae.exit_code, 0) << vae.output;
  EXPECT_NE(line_of(vae.output, "test cold  30 items").find(declined), std::string::npos) << vae.output;
  auto eval = srtest::run_command(bin + " eval " + tmp.file("vae") + "/model.h5 --slices");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_NE(eval.output.find("cold  30 items"), std::string::npos) << eval.output;
  EXPECT_NE(eval.output.find("not scored"), std::string::npos) << eval.output;
}

// test_resume.cpp — training checkpoints: bit-exact resume (1 and 2 ranks),
// resume on another rank count, corrupted checkpoints skipped, fine-tuning
// from a base (train.init_from), and no torn checkpoint after kill -9.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

extern "C" {
#include "shardrec/checkpoint.h"
#include "shardrec/checkpoint_dir.h"
#include "shardrec/config.h"
#include "shardrec/dataset.h"
#include "shardrec/dist.h"
#include "shardrec/error.h"
#include "shardrec/h5io.h"
#include "shardrec/log.h"
#include "shardrec/synth.h"
#include "shardrec/train.h"
}

namespace {

const sr_dataset &dataset() {
  static sr_dataset d = srtest::synthetic_dataset(700, 120, 100, 12, true);
  return d;
}

sr_config config(const std::string &ckpt_dir, int64_t max_steps) {
  sr_config cfg;
  sr_config_defaults(&cfg);
  snprintf(cfg.data.path, sizeof cfg.data.path, "in-memory");
  cfg.model.hidden[0] = 24;
  cfg.model.latent_dim = 8;
  cfg.model.total_anneal_steps = 20;
  cfg.train.batch_size = 96;  // 6 steps per epoch (the last one short)
  cfg.train.epochs = 100;
  cfg.train.max_steps = max_steps;
  cfg.checkpoint.every_steps = 4;
  snprintf(cfg.checkpoint.dir, sizeof cfg.checkpoint.dir, "%s", ckpt_dir.c_str());
  return cfg;
}

// The two-tower model with its non-parameter state: the streaming logQ
// estimate (SSL draws are keyed by step and need none).
sr_config two_tower_config(const std::string &ckpt_dir, int64_t max_steps) {
  sr_config cfg = config(ckpt_dir, max_steps);
  cfg.model.type = SR_MODEL_TWOTOWER;
  cfg.model.feature_dim = 6;
  cfg.model.tower_hidden[0] = 16;
  cfg.model.embedding_dim = 8;
  cfg.train.batch_size = 1024;  // 6 steps per epoch of ~5 600 pairs
  cfg.train.lr = 5e-3;
  cfg.ssl.batch_size = 40;
  return cfg;
}

int train(const sr_config &cfg) {
  sr_dist self;
  sr_dist_self(&self);
  sr_train_result res;
  int rc = sr_train(&cfg, &self, &dataset(), nullptr, nullptr, &res);
  EXPECT_EQ(rc, 0) << sr_error_message();
  return rc;
}

// Parameters and both Adam moments of a training checkpoint, concatenated.
// The model is built over `data` (needed by the two-tower: its features),
// else over the checkpoint's item count.
std::vector<float> training_state(const std::string &path, int64_t *step = nullptr,
                                  const sr_dataset *data = nullptr) {
  sr_config cfg;
  sr_model *m = nullptr;
  EXPECT_EQ(sr_checkpoint_read(path.c_str(), data, &cfg, &m), 0) << sr_error_message();
  if (!m) return {};
  sr_optim o;
  sr_optim_init(&o, SR_OPTIM_ADAM);
  std::vector<float> best((size_t)m->params.total);
  sr_train_state s;
  s.best_values = best.data();
  EXPECT_EQ(sr_checkpoint_read_training(path.c_str(), m, &o, &s), 0) << sr_error_message();
  if (step) *step = o.step;
  std::vector<float> all;
  for (const float *arena : {m->params.values, m->params.adam_m, m->params.adam_v})
    all.insert(all.end(), arena, arena + m->params.total);
  free(s.history);
  sr_model_destroy(m);
  return all;
}

std::string checkpoint_at(const std::string &dir, int64_t step) {
  char path[4096];
  sr_ckptdir_path(dir.c_str(), step, path, sizeof path);
  return path;
}

double max_abs_diff(const std::vector<float> &a, const std::vector<float> &b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); i++) worst = std::max(worst, (double)std::fabs(a[i] - b[i]));
  return worst;
}

}  // namespace

TEST(Resume, OneProcessIsBitExact) {
  sr_log_set_level(SR_LOG_ERROR);
  srtest::TempDir tmp;
  const std::string straight = tmp.file("straight"), cut = tmp.file("cut");
  ASSERT_EQ(train(config(straight, 11)), 0);  // 11 steps in one go
  ASSERT_EQ(train(config(cut, 5)), 0);        // 5 steps (checkpoint at 4, and at the stop)
  std::vector<float> at_cut = training_state(checkpoint_at(cut, 5));
  sr_config more = config(cut, 11);
  snprintf(more.checkpoint.resume, sizeof more.checkpoint.resume, "auto");
  ASSERT_EQ(train(more), 0);  // resumes at step 5, crosses an epoch end and a mid-epoch checkpoint
  int64_t s1 = 0, s2 = 0;
  std::vector<float> a = training_state(checkpoint_at(straight, 11), &s1),
                     b = training_state(checkpoint_at(cut, 11), &s2);
  EXPECT_EQ(s1, 11);
  EXPECT_EQ(s2, 11);
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "max |diff| " << max_abs_diff(a, b);
  // And the state did move between the checkpoints compared.
  EXPECT_GT(max_abs_diff(at_cut, b), 1e-4);
}

// The learning-rate schedule's position is the optimizer step in the
// checkpoint, and its length the planned epochs (not train.max_steps): a
// run cut at step 5 and resumed ends where the uninterrupted one does, bit
// for bit, with a warm-up and a cosine decay over 12 planned steps.
TEST(Resume, LrScheduleResumesBitExact) {
  sr_log_set_level(SR_LOG_ERROR);
  srtest::TempDir tmp;
  const std::string straight = tmp.file("straight"), cut = tmp.file("cut"), constant = tmp.file("constant");
  auto scheduled = [](const std::string &dir, int64_t max_steps) {
    sr_config cfg = config(dir, max_steps);
    cfg.train.epochs = 2;
    cfg.train.lr_schedule = SR_LR_COSINE;
    cfg.train.warmup_steps = 3;
    cfg.train.clip_grad_norm = 50;
    return cfg;
  };
  ASSERT_EQ(train(scheduled(straight, 11)), 0);
  ASSERT_EQ(train(scheduled(cut, 5)), 0);
  sr_config more = scheduled(cut, 11);
  snprintf(more.checkpoint.resume, sizeof more.checkpoint.resume, "auto");
  ASSERT_EQ(train(more), 0);
  std::vector<float> a = training_state(checkpoint_at(straight, 11)), b = training_state(checkpoint_at(cut, 11));
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "max |diff| " << max_abs_diff(a, b);
  // The schedule mattered: a constant rate ends elsewhere.
  sr_config flat = scheduled(constant, 11);
  flat.train.lr_schedule = SR_LR_CONSTANT;
  flat.train.warmup_steps = 0;
  ASSERT_EQ(train(flat), 0);
  EXPECT_GT(max_abs_diff(training_state(checkpoint_at(constant, 11)), a), 1e-4);
}

// Resume is bit-exact only if the logQ estimate comes back too: without it
// the first resumed step would see the prior instead of the learned gaps.
TEST(Resume, TwoTowerIsBitExactIncludingTheLogQEstimate) {
  sr_log_set_level(SR_LOG_ERROR);
  srtest::TempDir tmp;
  const std::string straight = tmp.file("straight"), cut = tmp.file("cut");
  ASSERT_EQ(train(two_tower_config(straight, 11)), 0);
  ASSERT_EQ(train(two_tower_config(cut, 5)), 0);
  sr_config more = two_tower_config(cut, 11);
  snprintf(more.checkpoint.resume, sizeof more.checkpoint.resume, "auto");
  ASSERT_EQ(train(more), 0);
  std::vector<float> a = training_state(checkpoint_at(straight, 11), nullptr, &dataset()),
                     b = training_state(checkpoint_at(cut, 11), nullptr, &dataset());
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "max |diff| " << max_abs_diff(a, b);
  // The estimate is in the file (the same in both runs' checkpoints).
  sr_h5file f1, f2;
  ASSERT_EQ(sr_h5_open(&f1, checkpoint_at(straight, 11).c_str()), 0);
  ASSERT_EQ(sr_h5_open(&f2, checkpoint_at(cut, 11).c_str()), 0);
  void *g1 = nullptr, *g2 = nullptr;
  const int64_t I = dataset().n_items;
  ASSERT_EQ(sr_h5_read_array(&f1, "/model_state/logq_item_gap", SR_H5_FLOAT32, I, &g1, nullptr), 0);
  ASSERT_EQ(sr_h5_read_array(&f2, "/model_state/logq_item_gap", SR_H5_FLOAT32, I, &g2, nullptr), 0);
  EXPECT_EQ(memcmp(g1, g2, (size_t)I * sizeof(float)), 0);
  // Learned: popular items are seen more often than the uniform prior says.
  float smallest = *std::min_element((float *)g1, (float *)g1 + I);
  EXPECT_LT(smallest, (float)I / 1024.0f);
  free(g1);
  free(g2);
  sr_h5_close(&f1);
  sr_h5_close(&f2);
}

TEST(Resume, CorruptedNewestCheckpointIsSkipped) {
  sr_log_set_level(SR_LOG_ERROR);
  srtest::TempDir tmp;
  const std::string dir = tmp.file("run");
  ASSERT_EQ(train(config(dir, 9)), 0);  // checkpoints at steps 4, 8 and 9
  srtest::flip_byte_in_first_chunk(checkpoint_at(dir, 9), "/optimizer/adam_v/decoder.1.weight");
  sr_config cfg = config(dir, 9);
  sr_model *m = nullptr;
  ASSERT_EQ(sr_model_create(&cfg, &dataset(), &m), 0);
  sr_optim o;
  sr_optim_init(&o, SR_OPTIM_ADAM);
  std::vector<float> best((size_t)m->params.total);
  sr_train_state s;
  s.best_values = best.data();
  char chosen[4096];
  ASSERT_EQ(sr_ckptdir_resume(dir.c_str(), "auto", m, &o, &s, chosen, sizeof chosen), 0) << sr_error_message();
  EXPECT_EQ(std::string(chosen), checkpoint_at(dir, 8));
  EXPECT_EQ(o.step, 8);
  EXPECT_EQ(s.epoch, 2);       // 6 steps per epoch: step 8 is in epoch 2 ...
  EXPECT_EQ(s.position, 192);  // ... after its second batch of 96
  // Naming the file explicitly fails with the reason instead. (A read
  // starts the history afresh: the earlier one is the caller's to free.)
  free(s.history);
  EXPECT_EQ(sr_ckptdir_resume(dir.c_str(), checkpoint_at(dir, 9).c_str(), m, &o, &s, chosen, sizeof chosen),
            SR_EFORMAT);
  EXPECT_NE(std::string(sr_error_message()).find("ckpt-0000000009.h5"), std::string::npos) << sr_error_message();
  free(s.history);
  sr_model_destroy(m);
}

TEST(Resume, RetentionKeepsTheNewestAndTheBest) {
  sr_log_set_level(SR_LOG_ERROR);
  srtest::TempDir tmp;
  const std::string dir = tmp.file("run");
  sr_config cfg = config(dir, 30);
  cfg.checkpoint.keep_last = 2;
  cfg.checkpoint.every_epochs = 1;  // a checkpoint at every validation: `best` names one
  ASSERT_EQ(train(cfg), 0);
  auto ls = srtest::run_command("ls " + dir);
  // Newest two (30 and 28), plus whichever is `best`; pointers present.
  EXPECT_NE(ls.output.find("ckpt-0000000030.h5"), std::string::npos) << ls.output;
  EXPECT_NE(ls.output.find("ckpt-0000000028.h5"), std::string::npos) << ls.output;
  EXPECT_EQ(ls.output.find("ckpt-0000000004.h5"), std::string::npos) << ls.output;
  EXPECT_EQ(srtest::read_file(dir + "/latest"), "ckpt-0000000030.h5\n");
  std::string best = srtest::read_file(dir + "/best");
  ASSERT_FALSE(best.empty());
  EXPECT_NE(ls.output.find(best), std::string::npos) << best;
  EXPECT_EQ(ls.output.find(".tmp."), std::string::npos) << ls.output;
}

// checkpoint.every_s: a checkpoint at the first step boundary after that many
// seconds (here ~0: after every step, whatever the machine's speed).
TEST(Resume, TimedCheckpointsAreWrittenAtStepBoundaries) {
  sr_log_set_level(SR_LOG_ERROR);
  srtest::TempDir tmp;
  const std::string dir = tmp.file("run");
  sr_config cfg = config(dir, 5);
  cfg.checkpoint.every_steps = 0;
  cfg.checkpoint.every_s = 1e-9;
  cfg.checkpoint.keep_last = 10;
  ASSERT_EQ(train(cfg), 0);
  for (int64_t step = 1; step <= 5; step++) {
    int64_t stored = -1;
    EXPECT_FALSE(training_state(checkpoint_at(dir, step), &stored).empty()) << step;
    EXPECT_EQ(stored, step);
  }
}

// `best` names the selected model's checkpoint or nothing: with checkpoints
// at every validation it is the best epoch's; with the default cadence (time,
// and the end) an improvement without a checkpoint removes the pointer.
TEST(Resume, BestNamesTheSelectedModelsCheckpointOrNothing) {
  sr_log_set_level(SR_LOG_ERROR);
  for (int every_epochs : {1, 2, 0}) {
    srtest::TempDir tmp;
    const std::string dir = tmp.file("run");
    sr_config cfg = config(dir, 30);
    cfg.checkpoint.every_steps = 0;
    cfg.checkpoint.every_epochs = every_epochs;
    cfg.checkpoint.keep_last = 100;
    sr_dist self;
    sr_dist_self(&self);
    sr_train_result res;
    ASSERT_EQ(sr_train(&cfg, &self, &dataset(), nullptr, nullptr, &res), 0) << sr_error_message();
    ASSERT_LT(res.best_step, 30) << "the test wants a best model before the last step";
    const std::string best = srtest::read_file(dir + "/best"), selected_path = checkpoint_at(dir, res.best_step),
                      selected = selected_path.substr(selected_path.rfind('/') + 1) + "\n";
    if (every_epochs == 1) {
      EXPECT_EQ(best, selected);
    } else if (every_epochs == 2) {  // the best epoch is odd (steps 6, 18 or 30 end epochs 1, 3 and 5)
      ASSERT_EQ(res.best_step % 12, 6) << "the test wants a best epoch without a checkpoint";
      EXPECT_TRUE(best.empty()) << best << " named while the selected model is at step " << res.best_step;
    } else {
      EXPECT_TRUE(best.empty()) << best;
      EXPECT_EQ(srtest::run_command("ls " + dir).output, "ckpt-0000000030.h5\nlatest\n") << "the end only";
    }
  }
}

// Temporaries of writers that were killed (kill -9 while writing) are removed
// when training starts; a live writer's are kept.
TEST(Resume, StaleTemporariesAreCleanedOnStart) {
  sr_log_set_level(SR_LOG_ERROR);
  srtest::TempDir tmp;
  const std::string dir = tmp.file("run");
  pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  waitpid(child, nullptr, 0);                                                        // a process that no longer runs
  const std::string dead = std::to_string(child), live = std::to_string(getppid());  // another live process
  ASSERT_EQ(srtest::run_command("mkdir -p " + dir).exit_code, 0);
  for (const std::string &name : {"ckpt-0000000003.h5.tmp." + dead, "latest.tmp." + dead, "best.tmp." + live})
    srtest::write_file(dir + "/" + name, "partial");
  ASSERT_EQ(train(config(dir, 2)), 0);
  auto ls = srtest::run_command("ls " + dir);
  EXPECT_EQ(ls.output.find(".tmp." + dead), std::string::npos) << ls.output;
  EXPECT_NE(ls.output.find("best.tmp." + live), std::string::npos) << ls.output;
}

// A checkpoint directory that cannot be written is an error before the first
// step, not at the first checkpoint. Root ignores permissions: a read-only mount.
TEST(Resume, UnwritableCheckpointDirectoryFailsAtStart) {
  sr_log_set_level(SR_LOG_ERROR);
  srtest::TempDir tmp;
  const std::string disk = tmp.file("ro");
  auto mount = srtest::run_command("mkdir -p " + disk + " && mount -t tmpfs -o ro,size=1m tmpfs " + disk);
  if (mount.exit_code != 0) GTEST_SKIP() << "cannot mount a read-only tmpfs (needs root): " << mount.output;
  sr_config cfg = config(disk, 2);
  sr_dist self;
  sr_dist_self(&self);
  sr_train_result res;
  int rc = sr_train(&cfg, &self, &dataset(), nullptr, nullptr, &res);
  std::string message = sr_error_message();
  srtest::run_command("umount " + disk);
  EXPECT_EQ(rc, SR_EIO);
  EXPECT_NE(message.find("checkpoint directory " + disk + " is not writable: Read-only file system"),
            std::string::npos)
      << message;
}

// A failure on one rank of two (rank 0 cannot create the checkpoint
// directory) reaches the user once, naming the rank, and the job ends with
// exit status 1 instead of MPI_Abort (which killed rank 0 before it could
// print, leaving only "rank 0 failed (see its message)").
TEST(Resume, OneRanksFailureReachesTheUserNamingTheRank) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY;
  const std::string cfg =
      srtest::tiny_training_config(tmp, bin, "warn", "checkpoint: {dir: /proc/self/no-such-dir}\n");
  auto r = srtest::run_command(
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
      "OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none mpiexec "
      "-n 2 " +
      bin + " train " + cfg + " --run-dir " + tmp.file("run"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("[rank 0/2] error: rank 0: cannot create directory /proc/self/no-such-dir"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("MPI_ABORT"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("[rank 1/2] error"), std::string::npos) << r.output;
}

namespace {

// A shell script that runs `command` with its output into a FIFO, reads its
// lines as they come and sends `signal` once n lines have matched the shell
// pattern `line` (a `case` pattern), then passes the rest of the output
// through and exits with the command's status. It waits for the event,
// whatever the machine's speed.
std::string signal_after_lines(const std::string &command, const std::string &line, int n,
                               const std::string &signal) {
  return "f=$(mktemp -u) && mkfifo $f || exit 3; " + command + " >$f 2>&1 & pid=$!; " +
         "{ k=0; while read -r line; do echo \"$line\"; case $line in " + line + ") k=$((k + 1)); [ $k -ge " +
         std::to_string(n) + " ] && kill -" + signal + " $pid && break;; esac; done; cat; } <$f; rm -f $f; wait $pid";
}

// Sends `signal` to a `shardrec train` command line (with debug logging) once
// its n-th checkpoint is committed (its "checkpoint <path>" line).
std::string signal_after_checkpoints(const std::string &train, const std::string &signal, int n) {
  return signal_after_lines(train + " --set run.log_level=debug", "*\\ checkpoint\\ *.h5", n, signal);
}

// Copies a checkpoint and changes one thing in the copy through the HDF5 C
// API: an int64 attribute of /train_state, or element 0 of a tensor.
std::string crafted(const std::string &from, const std::string &to, const char *attr, int64_t value,
                    const char *tensor, float element) {
  EXPECT_EQ(srtest::run_command("cp " + from + " " + to).exit_code, 0);
  hid_t f = H5Fopen(to.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  EXPECT_GE(f, 0);
  if (attr) { /* replaced rather than rewritten: HDF5 1.10 cannot rewrite an attribute of an ordered group */
    EXPECT_GE(H5Adelete_by_name(f, "/train_state", attr, H5P_DEFAULT), 0);
    hid_t scalar = H5Screate(H5S_SCALAR);
    hid_t a =
        H5Acreate_by_name(f, "/train_state", attr, H5T_STD_I64LE, scalar, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(H5Awrite(a, H5T_NATIVE_INT64, &value), 0);
    H5Aclose(a);
    H5Sclose(scalar);
  }
  if (tensor) {
    hid_t ds = H5Dopen2(f, tensor, H5P_DEFAULT), space = H5Dget_space(ds);
    hsize_t start[2] = {0, 0}, count[2] = {1, 1};
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr);
    hid_t one = H5Screate_simple(H5Sget_simple_extent_ndims(space), count, nullptr);
    EXPECT_GE(H5Dwrite(ds, H5T_NATIVE_FLOAT, one, space, H5P_DEFAULT, &element), 0);
    H5Sclose(one);
    H5Sclose(space);
    H5Dclose(ds);
  }
  H5Fclose(f);
  return to;
}

}  // namespace

// A damaged or crafted training checkpoint is refused on load, naming what is
// wrong: a cursor that would index outside the epoch's order, non-finite
// parameters, a negative Adam second moment.
TEST(Resume, CraftedCheckpointsAreRefusedOnLoad) {
  sr_log_set_level(SR_LOG_ERROR);
  srtest::TempDir tmp;
  const std::string dir = tmp.file("run");
  ASSERT_EQ(train(config(dir, 2)), 0);
  const std::string good = checkpoint_at(dir, 2);
  ASSERT_FALSE(training_state(good).empty());  // registers the zstd filter for the writes below
  struct {
    std::string path, message;
  } cases[] = {
      {crafted(good, tmp.file("pos.h5"), "position", -5, nullptr, 0), "position out of range"},
      {crafted(good, tmp.file("epoch.h5"), "epoch", (int64_t)1 << 40, nullptr, 0), "epoch out of range"},
      {crafted(good, tmp.file("nan.h5"), nullptr, 0, "/params/encoder.0.weight", NAN),
       "/params/encoder.0.weight: element 0 is nan, expected a finite value"},
      {crafted(good, tmp.file("v.h5"), nullptr, 0, "/optimizer/adam_v/decoder.0.bias", -1.0f),
       "/optimizer/adam_v/decoder.0.bias: element 0 is -1, expected a finite, non-negative value"},
  };
  for (const auto &c : cases) {
    sr_config cfg;
    sr_model *m = nullptr;
    ASSERT_EQ(sr_checkpoint_read_config(c.path.c_str(), &cfg), 0) << sr_error_message();
    sr_dataset items;
    sr_dataset_init(&items);
    items.n_items = dataset().n_items;
    ASSERT_EQ(sr_model_create(&cfg, &items, &m), 0) << sr_error_message();
    sr_optim o;
    sr_optim_init(&o, SR_OPTIM_ADAM);
    std::vector<float> best((size_t)m->params.total);
    sr_train_state s;
    s.best_values = best.data();
    EXPECT_EQ(sr_checkpoint_read_training(c.path.c_str(), m, &o, &s), SR_EFORMAT) << c.path;
    EXPECT_NE(std::string(sr_error_message()).find(c.message), std::string::npos) << sr_error_message();
    sr_model_destroy(m);
  }
}

// SIGTERM (scancel, preemption; SIGINT and SIGUSR1 alike) finishes the step,
// writes a checkpoint and exits with 75; --resume auto then ends exactly where
// an uninterrupted run ends (the same test metrics, digit for digit). The
// signal is sent once the first checkpoint exists, 19 epochs before the end.
TEST(Resume, SigtermWritesACheckpointAndTheResumedRunEndsAsIfUninterrupted) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, data = tmp.file("d.h5"), cfg = tmp.file("c.yaml");
  ASSERT_EQ(srtest::run_command(bin + " data synth -o " + data + " --users 1500 --items 300 --heldout 150").exit_code,
            0);
  srtest::write_file(cfg, "data: {path: " + data +
                              "}\nrun: {log_level: warn, threads: 1}\nmodel: {hidden: [32], latent_dim: 8}\n"
                              "train: {batch_size: 50, epochs: 20}\ncheckpoint: {every_epochs: 1}\n");
  const std::string whole = tmp.file("whole"), cut = tmp.file("cut");
  ASSERT_EQ(srtest::run_command(bin + " train " + cfg + " --run-dir " + whole).exit_code, 0);
  auto stopped = srtest::run_command(
      "bash -c '" + signal_after_checkpoints(bin + " train " + cfg + " --run-dir " + cut, "TERM", 1) + "'");
  EXPECT_EQ(stopped.exit_code, 75) << stopped.output;
  EXPECT_NE(stopped.output.find("stopped on signal 15"), std::string::npos) << stopped.output;
  EXPECT_NE(stopped.output.find("continue with --resume auto"), std::string::npos) << stopped.output;
  auto resumed = srtest::run_command(bin + " train " + cfg + " --run-dir " + cut + " --resume auto");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  auto test_record = [](const std::string &jsonl) {  // without its time stamps
    size_t at = jsonl.rfind("{\"type\":\"test\"");
    std::string r = at == std::string::npos ? std::string() : jsonl.substr(at, jsonl.find('\n', at) - at);
    for (const char *key : {"\"time\":", "\"total_train_s\":"}) {
      size_t k = r.find(key);
      if (k != std::string::npos) r.erase(k, r.find(',', k) + 1 - k);
    }
    return r;
  };
  const std::string expected = test_record(srtest::read_file(whole + "/metrics.jsonl"));
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(test_record(srtest::read_file(cut + "/metrics.jsonl")), expected);
}

// Open MPI's mpirun forwards SIGUSR1 to every rank: they finish the step,
// checkpoint, and the job ends with 75. The signal comes while every rank
// holds after 3 steps (a test hook), so the checkpoint is at step 4. (On
// SIGTERM mpirun sends the ranks SIGTERM and SIGKILL 1 s later,
// odls_base_sigkill_timeout: not enough for every checkpoint, and raising it
// delays every failed job's end by as much per rank; docs say to use USR1.)
TEST(Resume, MpirunForwardsSigusr1AndTheRanksCheckpoint) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, dir = tmp.file("run");
  const std::string cfg = srtest::tiny_training_config(tmp, bin, "warn", "train: {batch_size: 50, epochs: 3}\n");
  const std::string mpirun =
      "SHARDREC_TEST_HOLD_AT_STEP=3 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
      "OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none mpirun -np 2 " +
      bin + " train " + cfg + " --run-dir " + dir;
  auto r = srtest::run_command("bash -c '" + signal_after_lines(mpirun, "*holding\\ after*", 2, "USR1") + "'");
  EXPECT_EQ(r.exit_code, 75) << r.output;
  EXPECT_NE(
      r.output.find("[rank 0/2] warning: stopped on signal 10 (User defined signal 1) at step 4 after writing a "
                    "checkpoint"),
      std::string::npos)
      << r.output;
  EXPECT_EQ(srtest::read_file(dir + "/checkpoints/latest"), "ckpt-0000000004.h5\n") << r.output;
}

// Resuming another run's checkpoint (another seed, data or model) is refused,
// naming the keys; checkpoint.allow_changes lets it through.
TEST(Resume, AnotherRunsCheckpointIsRefusedNamingTheKeys) {
  sr_log_set_level(SR_LOG_ERROR);
  srtest::TempDir tmp;
  const std::string dir = tmp.file("run");
  ASSERT_EQ(train(config(dir, 2)), 0);
  sr_config other = config(dir, 4);
  snprintf(other.checkpoint.resume, sizeof other.checkpoint.resume, "auto");
  other.run.seed += 1;
  other.model.latent_dim += 0;  // unchanged keys are not named
  sr_dist self;
  sr_dist_self(&self);
  sr_train_result res;
  EXPECT_EQ(sr_train(&other, &self, &dataset(), nullptr, nullptr, &res), SR_ECONFIG);
  const std::string message = sr_error_message();
  EXPECT_NE(message.find("was trained with other values of run.seed than this config"), std::string::npos) << message;
  EXPECT_NE(message.find("checkpoint.allow_changes"), std::string::npos) << message;
  other.checkpoint.allow_changes = 1;
  EXPECT_EQ(sr_train(&other, &self, &dataset(), nullptr, nullptr, &res), SR_OK) << sr_error_message();
  EXPECT_EQ(res.steps, 4);
}

// The run id a checkpoint records (32 hex digits; "" when it has none).
std::string run_id_of(const std::string &path) {
  char id[SR_RUN_ID_SIZE] = "";
  EXPECT_EQ(sr_checkpoint_read_run_id(path.c_str(), id, sizeof id), 0) << sr_error_message();
  return id;
}

// Retention deletes only this run's files, never `latest` or `best`: a
// second run started (through the library, which does not refuse it) where
// another left higher-step checkpoints keeps them, and its own `latest`.
TEST(Resume, RetentionTouchesOnlyThisRunsFilesAndNeverLatest) {
  sr_log_set_level(SR_LOG_ERROR);
  srtest::TempDir tmp;
  const std::string dir = tmp.file("run");
  ASSERT_EQ(train(config(dir, 8)), 0);  // run A: checkpoints at 4 and 8
  const std::string first = run_id_of(checkpoint_at(dir, 8));
  EXPECT_EQ(first.size(), 32u) << first;
  EXPECT_EQ(run_id_of(checkpoint_at(dir, 4)), first);
  sr_config b = config(dir, 3);  // run B: a checkpoint every step, keeping 1
  b.checkpoint.every_steps = 1;
  b.checkpoint.keep_last = 1;
  ASSERT_EQ(train(b), 0);
  const std::string second = run_id_of(checkpoint_at(dir, 3));
  EXPECT_EQ(second.size(), 32u);
  EXPECT_NE(second, first);
  auto ls = srtest::run_command("ls " + dir).output;
  EXPECT_NE(ls.find("ckpt-0000000004.h5"), std::string::npos) << ls;  // A's, kept
  EXPECT_NE(ls.find("ckpt-0000000008.h5"), std::string::npos) << ls;
  EXPECT_NE(ls.find("ckpt-0000000003.h5"), std::string::npos) << ls;  // B's latest
  EXPECT_EQ(ls.find("ckpt-0000000001.h5"), std::string::npos) << ls;  // B's older ones
  EXPECT_EQ(ls.find("ckpt-0000000002.h5"), std::string::npos) << ls;
  EXPECT_EQ(srtest::read_file(dir + "/latest"), "ckpt-0000000003.h5\n");
  // A resumed run keeps its id.
  sr_config more = config(dir, 5);
  more.checkpoint.every_steps = 1;
  more.checkpoint.keep_last = 1;
  snprintf(more.checkpoint.resume, sizeof more.checkpoint.resume, "auto");
  ASSERT_EQ(train(more), 0);
  EXPECT_EQ(run_id_of(checkpoint_at(dir, 5)), second);
  ls = srtest::run_command("ls " + dir).output;
  EXPECT_EQ(ls.find("ckpt-0000000003.h5"), std::string::npos) << ls;
  EXPECT_NE(ls.find("ckpt-0000000008.h5"), std::string::npos) << ls;
}

// Resuming on other data of the same shape (one interaction moved) is refused
// naming the data and both content hashes; data.path alone says nothing.
TEST(Resume, OtherDataOfTheSameShapeIsRefusedNamingIt) {
  sr_log_set_level(SR_LOG_ERROR);
  srtest::TempDir tmp;
  const std::string dir = tmp.file("run");
  ASSERT_EQ(train(config(dir, 2)), 0);
  sr_dataset changed = srtest::synthetic_dataset(700, 120, 100, 12, true);
  sr_csr &m = changed.train;  // a row's last (largest) item becomes the next item
  int64_t r = 0;
  while (r < m.n_rows && (m.indptr[r + 1] == m.indptr[r] || m.indices[m.indptr[r + 1] - 1] + 1 >= m.n_cols)) r++;
  ASSERT_LT(r, m.n_rows);
  m.indices[m.indptr[r + 1] - 1]++;
  sr_config more = config(dir, 4);
  snprintf(more.checkpoint.resume, sizeof more.checkpoint.resume, "auto");
  sr_dist self;
  sr_dist_self(&self);
  sr_train_result res;
  EXPECT_EQ(sr_train(&more, &self, &changed, nullptr, nullptr, &res), SR_ECONFIG);
  const std::string message = sr_error_message();
  EXPECT_NE(message.find("was trained with other values of the data (data.path in-memory: content hash "),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("the checkpoint's "), std::string::npos) << message;
  // The same data resumes.
  EXPECT_EQ(sr_train(&more, &self, &dataset(), nullptr, nullptr, &res), SR_OK) << sr_error_message();
  sr_dataset_free(&changed);
}

// --resume auto where no checkpoint exists yet starts the run, so that one
// command line (an sbatch line) serves the first start and every restart; a
// finished run's model.h5 without checkpoints is not replaced.
TEST(Resume, ResumeAutoWithoutACheckpointStartsTheRun) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, dir = tmp.file("run");
  const std::string cfg = srtest::tiny_training_config(tmp, bin, "info", "train: {batch_size: 50, epochs: 2}\n");
  auto first = srtest::run_command(bin + " train " + cfg + " --run-dir " + dir + " --resume auto");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("--resume auto: no checkpoint in " + dir + "/checkpoints yet, starting the run"),
            std::string::npos)
      << first.output;
  auto again = srtest::run_command(bin + " train " + cfg + " --run-dir " + dir + " --resume auto");
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("resuming run "), std::string::npos) << again.output;
  ASSERT_EQ(srtest::run_command("rm -r " + dir + "/checkpoints").exit_code, 0);
  auto finished = srtest::run_command(bin + " train " + cfg + " --run-dir " + dir + " --resume auto");
  EXPECT_EQ(finished.exit_code, 1) << finished.output;
  EXPECT_NE(finished.output.find("holds a model.h5 but no checkpoint to resume"), std::string::npos)
      << finished.output;
}

TEST(Resume, InitFromStartsAtTheBaseParameters) {
  sr_log_set_level(SR_LOG_ERROR);
  srtest::TempDir tmp;
  const std::string base_dir = tmp.file("base");
  ASSERT_EQ(train(config(base_dir, 6)), 0);
  std::vector<float> base = training_state(checkpoint_at(base_dir, 6));
  sr_config fine = config(tmp.file("fine"), 1);
  fine.run.seed = 777;  // a different initialisation, overridden by init_from
  fine.train.lr = 1e-9;
  snprintf(fine.train.init_from, sizeof fine.train.init_from, "%s", checkpoint_at(base_dir, 6).c_str());
  ASSERT_EQ(train(fine), 0);
  std::vector<float> after = training_state(checkpoint_at(tmp.file("fine"), 1));
  size_t n = base.size() / 3;  // parameters only; the optimizer starts fresh
  std::vector<float> base_params(base.begin(), base.begin() + n), after_params(after.begin(), after.begin() + n);
  EXPECT_LT(max_abs_diff(base_params, after_params), 1e-5);
}

// The binary under mpiexec: 2 ranks resume bit-exactly; a 2-rank checkpoint
// resumes on 1 rank and trains on (same parameters up to float round-off).
TEST(Resume, AcrossRankCountsThroughTheBinary) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, data = tmp.file("d.h5"), cfg = tmp.file("c.yaml");
  ASSERT_EQ(srtest::run_command(bin + " data synth -o " + data + " --users 900 --items 150 --heldout 100").exit_code,
            0);
  srtest::write_file(cfg, "data: {path: " + data +
                              "}\nrun: {log_level: warn, threads: 1}\nmodel: {hidden: [24], latent_dim: 8}\n"
                              "train: {batch_size: 100, epochs: 100}\ncheckpoint: {every_steps: 4}\n");
  const std::string mpi = std::string("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ") +
                          "OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none mpiexec -n ";
  auto run = [&](int ranks, const std::string &dir, int steps, const std::string &extra) {
    auto r = srtest::run_command(mpi + std::to_string(ranks) + " " + bin + " train " + cfg + " --run-dir " + dir +
                                 " --set train.max_steps=" + std::to_string(steps) + " " + extra);
    EXPECT_EQ(r.exit_code, 0) << r.output;
  };
  run(2, tmp.file("straight"), 10, "");
  run(2, tmp.file("cut"), 5, "");
  run(2, tmp.file("cut"), 10, "--resume auto");
  run(2, tmp.file("other"), 5, "");
  run(1, tmp.file("other"), 10, "--resume auto");
  // With the sharded optimizer: checkpoints gather the Adam slices first.
  run(2, tmp.file("sharded"), 5, "--set dist.shard_optimizer=true");
  run(2, tmp.file("sharded"), 10, "--set dist.shard_optimizer=true --resume auto");
  std::vector<float> a = training_state(checkpoint_at(tmp.file("straight/checkpoints"), 10));
  std::vector<float> b = training_state(checkpoint_at(tmp.file("cut/checkpoints"), 10));
  std::vector<float> c = training_state(checkpoint_at(tmp.file("other/checkpoints"), 10));
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "2 ranks: max |diff| " << max_abs_diff(a, b);
  EXPECT_LT(max_abs_diff(a, c), 1e-4) << "2 ranks then 1 rank";
  std::vector<float> d = training_state(checkpoint_at(tmp.file("sharded/checkpoints"), 10));
  EXPECT_TRUE(a == d) << "sharded optimizer, resumed: max |diff| " << max_abs_diff(a, d);
}

// kill -9 while checkpoints are being written: whatever survives under a final
// name loads, and `latest` names a loadable checkpoint.
TEST(Resume, KillDuringCheckpointWritesLeavesLoadableCheckpoints) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, data = tmp.file("d.h5"), cfg = tmp.file("c.yaml");
  ASSERT_EQ(
      srtest::run_command(bin + " data synth -o " + data + " --users 3000 --items 2000 --heldout 200").exit_code, 0);
  srtest::write_file(cfg, "data: {path: " + data +
                              "}\nrun: {log_level: warn, threads: 1}\nmodel: {hidden: [200], latent_dim: 32}\n"
                              "train: {batch_size: 50, epochs: 100}\ncheckpoint: {every_steps: 1, keep_last: 2}\n");
  const std::string dir = tmp.file("run"), ckpts = dir + "/checkpoints";
  for (int round = 0; round < 3; round++) {
    // Checkpoints of ~5 MB every step: killed once the (round + 1)-th of this
    // round is committed, the run is writing or about to write the next one.
    const std::string train = bin + " train " + cfg + " --run-dir " + dir + (round ? " --resume auto" : "");
    auto r = srtest::run_command("bash -c '" + signal_after_checkpoints(train, "KILL", round + 1) + "'");
    EXPECT_EQ(r.exit_code, 128 + 9) << r.output;
    std::string latest = srtest::read_file(ckpts + "/latest");
    ASSERT_FALSE(latest.empty()) << "round " << round;
    latest.pop_back();
    EXPECT_FALSE(training_state(ckpts + "/" + latest).empty()) << latest;
    auto ls = srtest::run_command("ls " + ckpts);
    size_t at = 0;
    while ((at = ls.output.find("ckpt-", at)) != std::string::npos) {
      std::string name = ls.output.substr(at, ls.output.find('\n', at) - at);
      if (name.find(".tmp.") == std::string::npos) {
        EXPECT_FALSE(training_state(ckpts + "/" + name).empty()) << name;
      }
      at += 5;
    }
  }
}

// A full disk while writing a checkpoint: a clear error naming the file, exit
// 1, the previous checkpoint and pointer intact, no temporary file left. The
// disk is a 14 MB tmpfs (a checkpoint of this model is ~7-10 MB).
TEST(Resume, FullDiskFailsCleanlyAndKeepsThePreviousCheckpoint) {
  srtest::TempDir tmp;
  const std::string bin = SHARDREC_BINARY, data = tmp.file("d.h5"), cfg = tmp.file("c.yaml"), disk = tmp.file("disk");
  ASSERT_EQ(
      srtest::run_command(bin + " data synth -o " + data + " --users 2000 --items 2000 --heldout 200").exit_code, 0);
  srtest::write_file(cfg, "data: {path: " + data +
                              "}\nrun: {log_level: warn}\nmodel: {hidden: [200], latent_dim: 32}\n"
                              "train: {batch_size: 100, epochs: 2}\ncheckpoint: {every_steps: 1}\n");
  auto mount = srtest::run_command("mkdir -p " + disk + " && mount -t tmpfs -o size=14m tmpfs " + disk);
  // Mounting needs root (CAP_SYS_ADMIN); ctest reports the skip and its reason.
  if (mount.exit_code != 0) GTEST_SKIP() << "cannot mount a small tmpfs (needs root): " << mount.output;
  auto r = srtest::run_command(bin + " train " + cfg + " --run-dir " + disk + "/run");
  const std::string ckpts = disk + "/run/checkpoints";
  std::string latest = srtest::read_file(ckpts + "/latest"), listing = srtest::run_command("ls " + ckpts).output;
  if (!latest.empty()) latest.pop_back();
  bool latest_loads = !latest.empty() && !training_state(ckpts + "/" + latest).empty();
  srtest::run_command("umount " + disk);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  // "error: cannot write <dir>/ckpt-<step>.h5: No space left on device"
  size_t at = r.output.find("cannot write " + ckpts + "/ckpt-");
  ASSERT_NE(at, std::string::npos) << r.output;
  EXPECT_NE(r.output.find(".h5: No space left on device", at), std::string::npos) << r.output;
  std::string failed = r.output.substr(at + 13 + ckpts.size() + 1, 18);  // "ckpt-NNNNNNNNNN.h5"
  EXPECT_TRUE(latest_loads) << latest;
  EXPECT_LT(latest, failed);  // the pointer still names the previous, complete checkpoint
  EXPECT_EQ(listing.find(failed), std::string::npos) << listing;
  EXPECT_EQ(listing.find(".tmp."), std::string::npos) << listing;
}

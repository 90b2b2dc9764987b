// test_util.h — helpers shared by the test files: scratch directories, running
// the shardrec binary, reading files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

extern "C" {
#include "shardrec/config.h"
#include "shardrec/dataset.h"
#include "shardrec/metrics.h"
#include "shardrec/model.h"
}

namespace srtest {

// A fresh directory under $TMPDIR (or /tmp), removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string &path() const { return path_; }
  std::string file(const std::string &name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code;       // exit status, or 128 + signal
  std::string output;  // stdout and stderr together
};

// Runs `command` through /bin/sh, capturing stdout+stderr.
CommandResult run_command(const std::string &command);
std::string read_file(const std::string &path);
void write_file(const std::string &path, const std::string &content);

// A config for quick runs of the binary `shardrec` on a tiny synthetic
// dataset (300 users, 80 items, 40 held out) written in tmp: one BLAS thread,
// run.log_level `log_level`, a small Mult-VAE, then `more_yaml` (sections
// other than data, run and model). Returns the config's path.
std::string tiny_training_config(const TempDir &tmp, const std::string &shardrec, const std::string &log_level,
                                 const std::string &more_yaml);

// Synthetic data (planted factors, no item features) split for the strong
// protocol with n_heldout validation and test users each. Seeded: every rank
// that calls it gets the same dataset. Free with sr_dataset_free.
// with_item_features: also the generator's cluster, tags and pop_bucket features.
sr_dataset synthetic_dataset(int64_t users, int64_t items, int64_t n_heldout, double mean_items_per_user,
                             bool with_item_features = false);
// A CSR of explicit (sorted) rows, caller-freed; with values, entry (r, c)
// holds 10 r + c + 0.5.
sr_csr csr_from_rows(const std::vector<std::vector<int32_t>> &rows, int64_t n_cols, bool with_values = false);
// A corpus of n_items items and nothing else: what an autoencoder is built over.
sr_dataset item_corpus(int64_t n_items);

// The autoencoder the distributed equivalence suites train on their 700-user
// synthetic data: [I -> 24 -> 8 -> 24 -> I], global batch 96 (5 full batches
// and a short one per epoch), 9 steps (across an epoch boundary), dropout on.
sr_config equivalence_config(sr_model_type type);
// Largest |a - b| / (1 + |b|) over two parameter arenas (of equal sizes).
double max_relative_diff(const std::vector<float> &a, const std::vector<float> &b);
// Distributed training against one process on the global batch: the P
// partial sums of each gradient are added in another order than one process
// adds them; after 9 Adam steps the parameters agree to a few float ulps of
// the update size, relative (max_relative_diff).
constexpr double kEquivalenceTolerance = 2e-5;
// Popularity slices (eval.slices) of a run against a reference run's: the same
// items and users per slice and the same means (within tolerance); the
// reference's head, torso and tail each hold users (the check compares figures).
void expect_slices_equal(const sr_metrics &a, const sr_metrics &reference, double tolerance);

// A small log in MovieLens-1M's '::' format. ratings.dat: 200 users (raw ids
// 5000 + 3u) with 2 to 31 ratings over 150 movies (raw ids 10 i), rating
// 1 + (u + i) % 5, timestamp 1000 + k for the user's k-th rating.
std::string movielens_ratings_dat();
// movies.dat describing those 150 movies: genres (1 or 2 of ML-1M's 18), a
// release year in the 1930s to 1990s (7 decades) and a title.
std::string movielens_movies_dat();
// users.dat describing those 200 users: gender (F, M), age (ML-1M's 7 codes),
// occupation (0-20) and zip code (some in the 12345-6789 form).
std::string movielens_users_dat();

// A model loaded in-process from a checkpoint, over a dataset read here
// (failures are test failures; model stays NULL).
struct Loaded {
  sr_config cfg;
  sr_dataset data;
  sr_model *model = nullptr;
  Loaded(const std::string &checkpoint, const std::string &dataset);
  ~Loaded();
};

// Trains (with the binary `shardrec`) a small model of each type (multvae,
// multdae, twotower) on `data` into dir/<type>/model.h5: `model_keys` and
// `train_keys` are entries of the config's model and train mappings (YAML
// flow style), e.g. "hidden: [8]".
void train_every_model_type(const std::string &shardrec, const TempDir &dir, const std::string &data,
                            const std::string &model_keys, const std::string &train_keys);

// Flips one byte in the middle of the first chunk of an HDF5 dataset (to
// prove checksums catch corruption).
void flip_byte_in_first_chunk(const std::string &path, const char *dataset);

}  // namespace srtest

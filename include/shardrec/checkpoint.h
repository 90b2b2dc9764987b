/*
 * checkpoint.h — checkpoints in HDF5 (format in docs/checkpoint.md).
 *
 * A model checkpoint holds every registered parameter under /params/<name>
 * (float32 with its shape; zstd + Fletcher32 on every dataset, so a corrupted
 * chunk is a read error), the resolved YAML config it was trained with (the
 * model can be rebuilt without the original file), the number of items, the
 * code version and a schema version. A training checkpoint adds what resuming
 * needs to continue bit for bit: Adam's moments and step (/optimizer), the
 * data cursor, the best-validation snapshot and the validation history
 * (/train_state). Random streams need no state: every draw is keyed by (seed,
 * step, sample) (rng.h). Files are written atomically (temp, fsync, rename,
 * fsync of the directory): a crash leaves the previous file intact.
 */
#ifndef SHARDREC_CHECKPOINT_H
#define SHARDREC_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "shardrec/config.h"
#include "shardrec/model.h"
#include "shardrec/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SR_CHECKPOINT_SCHEMA_VERSION 1
#define SR_RUN_ID_SIZE 33 /* 32 hex digits (128 random bits) and the NUL */

/* Where a run stands; everything but the parameters and Adam's moments. */
typedef struct {
  int64_t epoch;        /* epoch in progress, 1-based */
  int64_t position;     /* samples of that epoch's global order already trained */
  int64_t samples_seen; /* samples (users or pairs, model.h) trained since the start of the run */
  double train_seconds; /* time in training steps since the start of the run */
  int64_t best_epoch;   /* epoch whose validation selected best_values (0: none yet) */
  double best_value;    /* its train.select_metric */
  float *best_values;   /* parameter arena of the best epoch (params.total floats); caller-owned */
  char *history;        /* validation records so far, JSON lines (malloc'd; may be NULL) */
  /* Which run this is: made when it starts, kept by every resume; "" in a
   * checkpoint of a shardrec that had none. Retention deletes only files of
   * its own run (checkpoint_dir.h). */
  char run_id[SR_RUN_ID_SIZE];
  /* The training data's content hash (sr_dataset_rows_hash summed over the
   * shards, with sr_dataset_shared_hash); 0: not recorded. */
  uint64_t data_hash;
} sr_train_state;

/* Reads only /train_state's run_id ("" when the checkpoint has none). */
int sr_checkpoint_read_run_id(const char *path, char *run_id, size_t size);

/* Writes are collective over the model's ranks (m->dist, sr_model_create_on;
 * a single process when NULL): rank 0 writes the file, holding every tensor
 * whole, while the ranks holding slices of sharded tensors (params.h) send
 * them in bounded blocks; every rank returns the same code. Reads are not
 * collective: each rank reads its slice of each sharded tensor, so a
 * checkpoint resumes on any split and any number of ranks, and tools that
 * build a single-process model read whole tensors. */

/* Model only: parameters + config. */
int sr_checkpoint_write(const char *path, const sr_model *m, const sr_config *cfg);
/* Rebuilds the model from the stored config and loads its parameters. Every
 * tensor must be present with the registered shape (errors name the tensor).
 * cfg receives the stored config. The model is built over `data` (its item
 * count must match); with data == NULL, over the stored item count, or for a
 * feature-based model over the features of the dataset the stored config
 * names (data.path). */
int sr_checkpoint_read(const char *path, const sr_dataset *data, sr_config *cfg, sr_model **model);
/* Every tensor under /params, as they are stored (names, shapes, values, in
 * the order written), into an empty registry ps (finalized here): what tools
 * that only look at tensors need, without rebuilding the model (no dataset). */
int sr_checkpoint_read_tensors(const char *path, sr_params *ps);
/* Only the stored config (and the header's checks): what a command needs to
 * find the dataset before it reads the dataset once and builds the model. */
int sr_checkpoint_read_config(const char *path, sr_config *cfg);

/* Everything a bit-exact resume needs. */
int sr_checkpoint_write_training(const char *path, const sr_model *m, const sr_config *cfg, const sr_optim *o,
                                 const sr_train_state *state);
/* Loads a training checkpoint into a model built from the run's config (shapes
 * must match, errors name the tensor), the optimizer (step and moments) and
 * state (best_values must point to params.total floats; history is malloc'd). */
int sr_checkpoint_read_training(const char *path, sr_model *m, sr_optim *o, sr_train_state *state);
/* Loads only the parameters (and, when o is non-NULL, the optimizer state) of
 * any checkpoint into m: fine-tuning from a base (train.init_from). */
int sr_checkpoint_read_params(const char *path, sr_model *m, sr_optim *o);

/* Tests: elements per block of a sharded tensor's transfer (default 16 Mi). */
void sr_checkpoint_set_block_elems(int64_t n);

#ifdef __cplusplus
}
#endif
#endif

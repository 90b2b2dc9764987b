/*
 * dataset.h — the shardrec HDF5 dataset format (documented in datasets/README.md)
 * and its in-memory form.
 *
 * A dataset file holds the splits of one interaction log, already in the
 * layout the trainers consume:
 *   /splits/train              CSR of training rows (users x items)
 *   /splits/{valid,test}       fold-in CSR + held-out CSR per evaluation user
 *   /features/{item,user}/NAME categorical features as CSR (entities x vocab)
 * Every array is chunked and zstd-compressed (HDF5 filter 32015, h5zstd.h).
 */
#ifndef SHARDREC_DATASET_H
#define SHARDREC_DATASET_H

#include <stdint.h>

#include "shardrec/csr.h"
#include "shardrec/h5io.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SR_DATASET_SCHEMA_VERSION 1
#define SR_NAME_MAX 64

/* A categorical feature: row e lists the vocabulary ids of entity e (one for a
 * single-valued feature, any number for a multi-valued one). */
typedef struct {
  char name[SR_NAME_MAX];
  int multi_valued;
  int64_t vocab_size; /* == values.n_cols */
  sr_csr values;      /* (n_entities, vocab_size), binary */
} sr_feature;

/* Users evaluated on a split. Row r of both CSRs belongs to user_ids[r].
 * A sharded process holds rows [row_begin, row_begin + n_users) of the
 * split's n_users_total rows. */
typedef struct {
  int64_t n_users;
  int64_t row_begin, n_users_total;
  int64_t *user_ids; /* [n_users] ids in the original user numbering */
  sr_csr foldin;     /* items given to the model as input (and excluded from ranking) */
  sr_csr heldout;    /* items to predict; users with an empty row count in no metric */
} sr_eval_split;

typedef enum {
  SR_PROTOCOL_STRONG = 0, /* held-out users: eval users are disjoint from training users */
  SR_PROTOCOL_WEAK = 1    /* same users: fold-in = the user's training row */
} sr_protocol;

typedef struct {
  int schema_version;
  sr_protocol protocol;
  int64_t n_items; /* columns of every interaction CSR */
  int64_t n_users; /* users in the original numbering (all splits) */
  sr_csr train;    /* (n_train_users, n_items) */
  int64_t *train_user_ids;
  /* Sharding: this process holds training rows [train_row_begin,
   * train_row_begin + train.n_rows) of train_rows_total. */
  int64_t train_row_begin, train_rows_total;
  sr_eval_split valid, test;
  int n_item_features, n_user_features;
  sr_feature *item_features; /* rows = n_items */
  sr_feature *user_features; /* rows = n_users (original numbering) */
  /* Cold-start items (sr_split_opts.cold_item_fraction): sorted ids of items
   * held out of training entirely; no training row has them, evaluation rows
   * have them as held-out items only. Every shard holds the whole list. */
  int64_t n_cold_items;
  int32_t *cold_items;
} sr_dataset;

void sr_dataset_init(sr_dataset *d);
void sr_dataset_free(sr_dataset *d);
void sr_eval_split_free(sr_eval_split *s);

/* Writes atomically: to "<path>.tmp.<pid>", fsync, rename; every array
 * compressed as `compression` says (h5io.h). */
int sr_dataset_write(const char *path, const sr_dataset *d, sr_h5_compression compression);
/* Validates d and writes its objects into a file being created (h5io.h), so
 * that a producer can add its own optional groups (e.g. /ids of an import,
 * import.h) before committing the whole file at once. */
struct sr_h5file;
int sr_dataset_write_into(const struct sr_h5file *f, const sr_dataset *d);
/* Reads and validates everything (CSR invariants, shapes, split consistency).
 * Errors name the file and the HDF5 object. */
int sr_dataset_read(const char *path, sr_dataset *d);
/* Reads this rank's shard (part `part` of `parts`): training rows balanced by
 * interactions (shard.h), validation/test rows split evenly, features whole.
 * Only the needed hyperslabs are read; each piece is validated (CSR invariants,
 * shapes). parts == 1 is sr_dataset_read (full cross-split validation). */
int sr_dataset_read_shard(const char *path, int part, int parts, sr_dataset *d);
/* Reads only the header (n_items, n_users) and the features, validated: what
 * a feature-based model needs to be rebuilt (no interactions). */
int sr_dataset_read_features(const char *path, sr_dataset *d);
/* Marks d as holding every row of every split (row_begin 0, totals = sizes). */
void sr_dataset_set_whole(sr_dataset *d);
/* Full validation of an in-memory dataset; `what` names it in messages. */
int sr_dataset_validate(const sr_dataset *d, const char *what);
/* Content hashes, for telling whether a run's data changed (hash.h): the sum
 * over this shard's rows of a hash of each row (its split, global row number,
 * user and entries), which summed over all shards (mod 2^64) is the same for
 * any sharding; and a hash of what every shard holds whole (sizes, features). */
uint64_t sr_dataset_rows_hash(const sr_dataset *d);
uint64_t sr_dataset_shared_hash(const sr_dataset *d);
/* Human-readable summary (sizes, density, per-split counts, features). */
void sr_dataset_print_info(const sr_dataset *d, const char *path);

/* Reads rows [row_begin, row_end) of the CSR stored in group `group` (e.g.
 * "/splits/train") with hyperslab reads only of that part; validates it. */
int sr_dataset_read_csr_rows(const char *path, const char *group, int64_t row_begin, int64_t row_end, sr_csr *out);

/* ---- building datasets ------------------------------------------------------ */

typedef struct {
  int64_t n_heldout_users;       /* users in each of valid and test */
  double heldout_fraction;       /* fraction of an eval user's items held out (0.2) */
  int64_t min_items_for_heldout; /* eval users with fewer items keep all as fold-in (5) */
  uint64_t seed;                 /* the paper's code uses 98765 */
  /* Cold-start items: this fraction of the items with an interaction (rounded
   * down), drawn uniformly (seed), is held out of training entirely: their
   * interactions are removed from training rows and are held-out items of
   * evaluation rows (never fold-in); the dataset lists them (cold_items). 0: none. */
  double cold_item_fraction;
  /* Weak GIVEN only: the share of each user's training items drawn for
   * validation (0: no validation split, the model trains on every given
   * training item; the published protocols of LightGCN's benchmarks). */
  double validation_fraction;
  /* The catalogue is every column of the log, not only the items of training
   * rows: published splits count items seen only in held-out rows. */
  int keep_all_items;
} sr_split_opts;

void sr_split_opts_default(sr_split_opts *o);
/* Strong generalisation split of a full user x item CSR (methods.md §1):
 * shuffle users (seed), last n_heldout = test, the n_heldout before = valid,
 * rest = train; items are remapped to those seen in training (item_map_out,
 * if non-NULL, receives new->old item ids, n_items entries, malloc'd); eval rows
 * keep only training items, then a random int(frac*n) of each row with >= min
 * items becomes held-out. Item features (rows = old items) are remapped too. */
int sr_split_strong(const sr_csr *full, const sr_feature *item_features, int n_item_features,
                    const sr_split_opts *opts, sr_dataset *out, int32_t **item_map_out);

/* The part a GIVEN split's entry_keys assign to an interaction. */
enum { SR_GIVEN_TRAIN = 0, SR_GIVEN_TEST = 1, SR_GIVEN_VALID = 2 };

/* How the weak-generalisation split picks each user's held-out items. */
typedef enum {
  SR_HOLDOUT_RANDOM = 0,   /* a random subset (seeded, keyed by the user) */
  SR_HOLDOUT_TEMPORAL = 1, /* the latest items by timestamp */
  SR_HOLDOUT_GIVEN = 2     /* the test items are given (e.g. LightGCN's test.txt) */
} sr_holdout;

/* Weak generalisation split (same users in train and evaluation; details in
 * datasets/README.md). Each row of `full` is divided into training, validation
 * and test items:
 *   RANDOM:   a user with n >= min_items_for_heldout items gets int(frac * n)
 *             random items for test and int(frac * n) others for validation;
 *   TEMPORAL: the same counts, the latest items for test and the latest of the
 *             rest for validation; entry_keys[k] = timestamp of entry k (ties:
 *             the larger item id counts as later);
 *   GIVEN:    entry_keys[k] is the part of entry k (SR_GIVEN_TRAIN, _TEST,
 *             _VALID); with validation_fraction v > 0, int(v * m) random ones
 *             of a user's m training items (m >= min items) become validation
 *             items too.
 * opts->n_heldout_users is unused; frac < 0.5 for RANDOM and TEMPORAL.
 * Training rows: every user with a training item, in user order. Items are
 * remapped to those of training rows (as sr_split_strong; item_map_out, if
 * non-NULL, receives new->old ids), or all kept with keep_all_items;
 * evaluation rows keep only catalogue items.
 * valid: fold-in = training items, held-out = validation items; test: fold-in =
 * training + validation items, held-out = test items. An evaluation split lists
 * the users with at least one held-out item. Item features are remapped. */
int sr_split_weak(const sr_csr *full, sr_holdout holdout, const int64_t *entry_keys, const sr_feature *item_features,
                  int n_item_features, const sr_split_opts *opts, sr_dataset *out, int32_t **item_map_out);

#ifdef __cplusplus
}
#endif
#endif

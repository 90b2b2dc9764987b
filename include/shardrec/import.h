/*
 * import.h — `shardrec data import`: public recommender logs into the HDF5
 * dataset format (dataset.h), with the preprocessing and splits of the
 * Mult-VAE paper (methods.md §1) or a weak-generalisation split.
 *
 * Formats: MovieLens (u.data, ratings.dat, ratings.csv; movies and ml-1m users
 * as categorical features), Netflix Prize (combined_data_*.txt), the Million
 * Song Dataset taste profile (user, song, plays), LightGCN adjacency lists
 * (train.txt / test.txt), generic CSV/TSV, and published splits kept exactly
 * as they are: the Mult-VAE authors' preprocessing output (unique_sid.txt,
 * train.csv, validation_{tr,te}.csv, test_{tr,te}.csv) and RecBole's atomic
 * files (typed headers, .item/.user features, pre-split .train/.valid/.test
 * .inter). datasets/README.md documents every option with a worked example
 * per format.
 *
 * Pipeline, in bounded memory (12 bytes per kept interaction at the peak,
 * plus 8 with values and 16 with timestamps):
 *   1. stream every input line by line; the rating threshold applies to each
 *      line; raw ids are interned in hash maps (first-seen ids);
 *   2. build the user x item CSR with users and items numbered in increasing
 *      raw-id order (so the result does not depend on the line order);
 *   3. merge duplicate (user, item) pairs; apply the minimum counts;
 *   4. split (strong: held-out users; weak: per-user held-out items);
 *   5. write atomically, with the raw ids (/ids) and the preprocessing record
 *      (/import) next to the dataset.
 */
#ifndef SHARDREC_IMPORT_H
#define SHARDREC_IMPORT_H

#include <stdint.h>

#include "shardrec/csr.h"
#include "shardrec/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SR_IMPORT_AUTO = 0, /* from the input file names (sr_import_detect_format) */
  SR_IMPORT_MOVIELENS,
  SR_IMPORT_NETFLIX,
  SR_IMPORT_MSD,
  SR_IMPORT_LIGHTGCN,
  SR_IMPORT_CSV,
  SR_IMPORT_MULTVAE, /* the Mult-VAE authors' preprocessing output directory, as it is */
  SR_IMPORT_RECBOLE  /* RecBole atomic files: NAME.inter, or NAME.{train,valid,test}.inter */
} sr_import_format;

/* What to keep when a (user, item) pair occurs on several kept lines. */
typedef enum {
  SR_DUPLICATES_LAST = 0, /* the last line's value and timestamp */
  SR_DUPLICATES_FIRST,    /* the first line's */
  SR_DUPLICATES_MAX,      /* the largest value (the last line among equal ones) */
  SR_DUPLICATES_SUM,      /* values added (play counts); timestamp of the last line */
  SR_DUPLICATES_ERROR     /* fail, naming the pair */
} sr_duplicates;

typedef struct {
  sr_import_format format;
  const char *const *inputs; /* LightGCN: the training file, then the test file */
  int n_inputs;
  const char *movies_path, *users_path; /* MovieLens side files (features), or NULL */
  /* Generic CSV/TSV. */
  const char *columns;   /* "user=0,item=1,rating=2,timestamp=3" (0-based) or column names with
                            `header`; NULL = "user=0,item=1" */
  int header;            /* the first line of each file names the columns */
  const char *delimiter; /* NULL: tab for *.tsv, else ","; "tab", "space" (runs of blanks), any string */
  int string_ids;        /* ids are arbitrary strings (MSD always); else integers */
  /* Preprocessing. */
  int has_min_rating;
  double min_rating; /* keep lines with rating >= min_rating */
  int64_t min_user_items, min_item_users;
  int iterate_min_counts; /* repeat both filters until neither removes anything */
  sr_duplicates duplicates;
  int keep_values; /* store ratings / play counts as CSR values (else binary) */
  int skip_bad_lines;
  /* Split. */
  sr_protocol protocol;
  sr_holdout holdout;            /* weak protocol only */
  sr_split_opts split;           /* n_heldout_users 0: 10% of the users (strong) */
  sr_h5_compression compression; /* of every array of the file (h5io.h) */
  const char *command;           /* recorded in /import (the command line), or NULL */
} sr_import_opts;

/* The defaults of `format` (the paper's preprocessing for its datasets):
 *   movielens, netflix: min_rating 4, min_user_items 5, strong protocol;
 *   msd: min_user_items 20, min_item_users 200, string ids, strong;
 *   lightgcn: no filtering, weak protocol with the given test file;
 *   csv: no filtering, strong; multvae: the given strong split;
 *   recbole: string ids, no filtering, strong (sr_import_set_inputs makes
 *   the three split files a given weak split). Everywhere: duplicates LAST, seed 98765,
 *   held-out fraction 0.2, users with < 5 items keep everything as fold-in. */
void sr_import_opts_default(sr_import_opts *o, sr_import_format format);
/* Sets o's inputs; RecBole's NAME.train.inter, NAME.valid.inter,
 * NAME.test.inter (in that order) select the given weak split. */
void sr_import_set_inputs(sr_import_opts *o, const char *const *inputs, int n_inputs);
/* The format from the inputs' file names (u.data, ratings.dat, ratings.csv,
 * combined_data_*.txt, mv_*.txt, *triplets*, train.txt + test.txt, *.csv,
 * *.tsv, *.inter, a directory holding unique_sid.txt); SR_EINVAL naming the
 * file when a name says nothing or two disagree. */
int sr_import_detect_format(const char *const *inputs, int n_inputs, sr_import_format *format);
const char *sr_import_format_name(sr_import_format f);
int sr_import_format_from_name(const char *name, sr_import_format *f);
const char *sr_duplicates_name(sr_duplicates d);
int sr_duplicates_from_name(const char *name, sr_duplicates *d);

/* Raw ids (of users, items, or vocabulary labels), one per dense id: integers,
 * or NUL-padded strings of `width` bytes. */
typedef struct {
  int64_t n;
  int64_t *numbers; /* [n], or NULL for strings */
  char *strings;    /* [n * width], or NULL for integers */
  int width;
} sr_raw_ids;

void sr_raw_ids_free(sr_raw_ids *ids);
struct sr_h5file;
/* Writes ids as dataset obj (int64 or fixed-length strings); nothing when
 * ids holds neither (a dataset without raw ids). */
int sr_raw_ids_write(const struct sr_h5file *f, const char *obj, const sr_raw_ids *ids);
/* Reads dataset obj of either kind into out (which must hold expected ids);
 * an absent obj leaves out empty and succeeds. */
int sr_raw_ids_read(const struct sr_h5file *f, const char *obj, int64_t expected, sr_raw_ids *out);
/* Both of a dataset file's /ids (d: the dataset read from it, for the
 * counts): empty when the file has none. */
int sr_raw_ids_read_dataset(const char *path, const sr_dataset *d, sr_raw_ids *users, sr_raw_ids *items);
/* out = the raw ids of entities rows[0..n), in that order (empty when ids is). */
void sr_raw_ids_pick(const sr_raw_ids *ids, const int64_t *rows, int64_t n, sr_raw_ids *out);

typedef struct {
  int64_t lines;                        /* non-blank lines of the inputs, headers included */
  int64_t skipped_lines;                /* bad lines skipped (skip_bad_lines), side files too */
  int64_t records;                      /* interactions read */
  int64_t below_min_rating;             /* of which dropped by the threshold */
  int64_t duplicates;                   /* kept lines merged into an earlier (user, item) pair */
  int64_t users_removed, items_removed; /* by the minimum counts */
  int64_t min_count_passes;
  char first_skipped[512]; /* "FILE:LINE: problem" of the first skipped line */
  double parse_seconds;    /* reading and parsing the inputs */
} sr_import_stats;

/* The preprocessed log, before the split. */
typedef struct {
  sr_csr full;         /* users x items, both numbered in increasing raw-id order */
  int64_t *entry_keys; /* [full.nnz] timestamps (temporal holdout) or test flags (given), else NULL */
  sr_raw_ids users, items;
  int n_item_features, n_user_features;
  sr_feature *item_features, *user_features; /* rows = full's columns / rows */
  sr_raw_ids *item_vocab, *user_vocab;       /* the labels of each feature's vocabulary */
  sr_import_stats stats;
} sr_import_table;

/* Steps 1-3. Errors name the file and line ("ratings.dat:17: expected 4
 * fields separated by '::', got 3"); with skip_bad_lines, bad lines are
 * counted instead (headers and empty files are never skipped). */
int sr_import_load(const sr_import_opts *o, sr_import_table *t);
void sr_import_table_free(sr_import_table *t);
/* Step 4. The table's matrix and item features move into the split `d` (they
 * are freed here); t->items becomes the raw ids of d's items. */
int sr_import_split(const sr_import_opts *o, sr_import_table *t, sr_dataset *d);
/* Step 5: d, /ids/{users,items}, feature vocabularies and /import, atomically. */
int sr_import_write(const sr_import_opts *o, const sr_import_table *t, const sr_dataset *d, const char *output);
/* All of it; stats (may be NULL) receives the counts. */
int sr_import(const sr_import_opts *o, const char *output, sr_import_stats *stats);

#ifdef __cplusplus
}
#endif
#endif

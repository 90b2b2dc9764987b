/*
 * cmd_export.c — `shardrec export`: the item and user embeddings of a trained
 * two-tower model in one HDF5 file, the input of an approximate-nearest-
 * neighbour index (layout in README.md, "Exporting embeddings").
 *
 * A single process: embedding needs no MPI. Users are embedded from the rows
 * the model sees as their history (training rows, evaluation fold-in rows),
 * once per selected split row, so under the weak protocol a user in several
 * splits appears once per split, each with that split's history.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "shardrec/checkpoint.h"
#include "shardrec/dataset.h"
#include "shardrec/error.h"
#include "shardrec/h5io.h"
#include "shardrec/import.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"
#include "shardrec/two_tower.h"

/* Codes of /users/split, in the order of its "names" attribute. */
enum { SPLIT_TRAIN = 0, SPLIT_VALID = 1, SPLIT_TEST = 2, N_SPLITS = 3 };
static const char *const split_names[N_SPLITS] = {"train", "valid", "test"};
#define SPLIT_NAME_LIST "train,valid,test"

static void export_usage(FILE *out) {
  fprintf(out,
          "usage: shardrec export CHECKPOINT.h5 [--data DATASET.h5] -o OUT.h5\n"
          "                       [--users all|train|valid|test|none] [--batch N] [--compression C]\n"
          "\n"
          "Writes the L2-normalised item and user embeddings of a two-tower model, for\n"
          "an approximate-nearest-neighbour index (score = dot product = cosine).\n"
          "\n"
          "options:\n"
          "  -o, --output FILE   embeddings file to write (required; written atomically)\n"
          "      --data FILE     dataset of the items and user histories (default: data.path\n"
          "                      of the checkpoint's config)\n"
          "      --users WHICH   users to embed, from their training rows (train) or fold-in\n"
          "                      rows (valid, test); all = the three splits (default), one row\n"
          "                      per split row, so a weak-protocol user appears once per split\n"
          "      --batch N       users embedded at a time (default: train.eval_batch_size)\n"
          "      --compression C gzip (default: any HDF5 reader opens it), zstd or none;\n"
          "                      gzip:LEVEL, zstd:LEVEL (docs/compression.md)\n"
          "  -h, --help          this help\n"
          "\n"
          "Output: /items/{embeddings,ids[,raw_ids]}, /users/{embeddings,ids,split[,raw_ids]}\n"
          "(ids in the dataset's numbering; raw_ids when the dataset has /ids).\n");
}

/* ---- arguments ------------------------------------------------------------------ */

typedef struct {
  sr_cli_model_output io;
  const char *users;
  int split_selected[N_SPLITS];
} export_args;

static int select_users(export_args *a, const char *which) {
  a->users = which;
  int all = strcmp(which, "all") == 0, found = all || strcmp(which, "none") == 0;
  for (int s = 0; s < N_SPLITS; s++) {
    a->split_selected[s] = all || strcmp(which, split_names[s]) == 0;
    found |= a->split_selected[s];
  }
  return found ? 0
               : sr_cli_usage_error("export", "--users: expected all, train, valid, test or none, got '%s'", which);
}

/* Returns -1 to go on, else the exit status. */
static int parse_export_args(int argc, char **argv, export_args *a) {
  static const struct option options[] = {SR_CLI_MODEL_OUTPUT_OPTIONS,
                                          {"users", required_argument, NULL, 'u'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
  memset(a, 0, sizeof *a);
  sr_cli_model_output_init(&a->io);
  select_users(a, "all");
  optind = 1;
  int opt, status = 0;
  while (status == 0 && (opt = sr_cli_getopt("export", argc, argv, "o:h", options, NULL)) != -1) {
    switch (opt) {
      case 'u':
        status = select_users(a, optarg);
        break;
      case 'h':
        export_usage(stdout);
        return 0;
      default:
        status = sr_cli_model_output_option("export", opt, optarg, &a->io);
        if (status < 0) return SR_CLI_EXIT_USAGE;
    }
  }
  if (status) return status;
  if ((status = sr_cli_model_output_finish("export", "missing -o OUT.h5", argc, argv, &a->io))) return status;
  return -1;
}

/* ---- embeddings ----------------------------------------------------------------- */

/* The rows the model sees as each user's history in split s. */
static void split_rows(const sr_dataset *data, int s, const sr_csr **history, const int64_t **user_ids) {
  const sr_eval_split *eval = s == SPLIT_VALID ? &data->valid : &data->test;
  *history = s == SPLIT_TRAIN ? &data->train : &eval->foldin;
  *user_ids = s == SPLIT_TRAIN ? data->train_user_ids : eval->user_ids;
}

typedef struct {
  int64_t n, d;
  float *embeddings; /* (n, d) */
  int64_t *ids;      /* [n] original user numbering */
  uint8_t *split;    /* [n] SPLIT_* of the row each user came from */
} user_table;

static void user_table_free(user_table *u) {
  free(u->embeddings);
  free(u->ids);
  free(u->split);
}

static int64_t count_selected_rows(const sr_dataset *data, const int *selected) {
  int64_t n = 0;
  for (int s = 0; s < N_SPLITS; s++) {
    if (!selected[s]) continue;
    const sr_csr *history;
    const int64_t *ids;
    split_rows(data, s, &history, &ids);
    n += history->n_rows;
  }
  return n;
}

/* Every row of the selected splits, split by split, `batch` rows at a time. */
static void embed_users(sr_model *m, const sr_dataset *data, const int *selected, int64_t batch, user_table *u) {
  u->d = sr_two_tower_dim(m);
  u->n = count_selected_rows(data, selected);
  u->embeddings = sr_malloc((size_t)(u->n > 0 ? u->n * u->d : 1) * sizeof(float));
  u->ids = sr_malloc((size_t)(u->n > 0 ? u->n : 1) * sizeof *u->ids);
  u->split = sr_malloc((size_t)(u->n > 0 ? u->n : 1));
  int64_t at = 0;
  for (int s = 0; s < N_SPLITS; s++) {
    if (!selected[s]) continue;
    const sr_csr *history;
    const int64_t *ids;
    split_rows(data, s, &history, &ids);
    for (int64_t b = 0; b < history->n_rows; b += batch) {
      int64_t e = b + batch < history->n_rows ? b + batch : history->n_rows;
      sr_csr rows;
      sr_csr_slice_rows(history, b, e, &rows);
      sr_two_tower_embed_users(m, &rows, ids + b, u->embeddings + (at + b) * u->d);
      sr_csr_free(&rows);
    }
    memcpy(u->ids + at, ids, (size_t)history->n_rows * sizeof *ids);
    memset(u->split + at, s, (size_t)history->n_rows);
    at += history->n_rows;
  }
}

/* ---- the output file ------------------------------------------------------------ */

/* Embeds every item and writes the /items group. */
static int write_items(const sr_h5file *f, sr_model *m, const sr_cli_model_data *in) {
  const int64_t n = m->n_items, d = sr_two_tower_dim(m), shape[2] = {n, d};
  float *embeddings = sr_malloc((size_t)(n * d > 0 ? n * d : 1) * sizeof(float));
  int64_t *ids = sr_malloc((size_t)(n > 0 ? n : 1) * sizeof *ids);
  sr_two_tower_embed_items(m, embeddings);
  for (int64_t i = 0; i < n; i++) ids[i] = i;
  int rc = sr_h5_write_tensor(f, "/items/embeddings", embeddings, 2, shape);
  if (rc == SR_OK) rc = sr_h5_write_array(f, "/items/ids", SR_H5_INT64, ids, n);
  if (rc == SR_OK) rc = sr_raw_ids_write(f, "/items/raw_ids", &in->item_raw);
  free(embeddings);
  free(ids);
  return rc;
}

static int write_users(const sr_h5file *f, const user_table *u, const sr_cli_model_data *in) {
  const int64_t shape[2] = {u->n, u->d};
  SR_TRY(sr_h5_write_tensor(f, "/users/embeddings", u->embeddings, 2, shape));
  SR_TRY(sr_h5_write_array(f, "/users/ids", SR_H5_INT64, u->ids, u->n));
  SR_TRY(sr_h5_write_array(f, "/users/split", SR_H5_UINT8, u->split, u->n));
  SR_TRY(sr_h5_write_attr_string(f, "/users/split", "names", SPLIT_NAME_LIST));
  sr_raw_ids raw;
  sr_raw_ids_pick(&in->user_raw, u->ids, u->n, &raw);
  int rc = sr_raw_ids_write(f, "/users/raw_ids", &raw);
  sr_raw_ids_free(&raw);
  return rc;
}

static int write_header(const sr_h5file *f, const export_args *a, const sr_cli_model_data *in) {
  SR_TRY(sr_h5_write_attr_string(f, "/", "model", in->model->ops->name));
  SR_TRY(sr_h5_write_attr_int64(f, "/", "d", sr_two_tower_dim(in->model)));
  SR_TRY(sr_h5_write_attr_string(f, "/", "checkpoint", a->io.checkpoint));
  SR_TRY(sr_h5_write_attr_string(f, "/", "dataset", in->data_path));
  SR_TRY(sr_h5_write_attr_string(f, "/", "users", a->users));
  SR_TRY(sr_h5_write_attr_string(f, "/", "created_by", "shardrec " SHARDREC_VERSION));
  return sr_h5_write_attr_string(f, "/", "score", "dot product of L2-normalised embeddings (cosine)");
}

static int write_export(const export_args *a, const sr_cli_model_data *in, const user_table *users) {
  sr_h5file f;
  SR_TRY(sr_h5_create(&f, a->io.out_path, a->io.compression));
  int rc = write_header(&f, a, in);
  if (rc == SR_OK) rc = write_items(&f, in->model, in);
  if (rc == SR_OK) rc = write_users(&f, users, in);
  if (rc == SR_OK) return sr_h5_commit(&f);
  sr_h5_close(&f); /* discards the file built in memory: nothing reached the disk */
  return rc;
}

static int run_export(const export_args *a, sr_cli_model_data *in, user_table *users) {
  SR_TRY(sr_cli_load_model_data(a->io.checkpoint, a->io.data_path, SR_MODEL_TWOTOWER, "export", in));
  sr_cli_set_blas_threads(&in->cfg, NULL);
  embed_users(in->model, &in->data, a->split_selected, a->io.batch > 0 ? a->io.batch : in->cfg.train.eval_batch_size,
              users);
  SR_TRY(write_export(a, in, users));
  sr_info("wrote %s: %lld items and %lld users (%s), d = %lld", a->io.out_path, (long long)in->model->n_items,
          (long long)users->n, a->users, (long long)users->d);
  return SR_OK;
}

int sr_cmd_export(int argc, char **argv) {
  export_args a;
  int status = parse_export_args(argc, argv, &a);
  if (status >= 0) return status;
  sr_cli_model_data in;
  user_table users;
  memset(&users, 0, sizeof users);
  int rc = run_export(&a, &in, &users);
  user_table_free(&users);
  sr_cli_model_data_free(&in);
  return rc == SR_OK ? 0 : sr_cmd_report_error();
}

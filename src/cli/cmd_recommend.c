/*
 * cmd_recommend.c — `shardrec recommend`: the top-K items of a trained model
 * for chosen users, their known items excluded (recommend.h), as TSV or HDF5.
 *
 * Every rank reads the whole dataset and model, scores a contiguous share of
 * the users, and rank 0 gathers the lists and writes the file: the output
 * does not depend on the number of ranks.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "shardrec/checkpoint.h"
#include "shardrec/dataset.h"
#include "shardrec/error.h"
#include "shardrec/exchange.h"
#include "shardrec/fsutil.h"
#include "shardrec/h5io.h"
#include "shardrec/import.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"
#include "shardrec/recommend.h"
#include "shardrec/shard.h"

static void recommend_usage(FILE *out) {
  fprintf(out,
          "usage: shardrec recommend CHECKPOINT.h5 -o OUT.tsv|OUT.h5 [--data DATASET.h5]\n"
          "                          [--users all|train|valid|test|FILE] [-k K] [--batch N]\n"
          "                          [--compression C]\n"
          "\n"
          "Writes the K best items of each user that the user does not have yet.\n"
          "\n"
          "options:\n"
          "  -o, --output FILE   .tsv: lines user, rank, item, score (raw ids when the dataset\n"
          "                      has /ids); .h5: /users/ids, /recs/items (users, K), /recs/scores\n"
          "      --data FILE     dataset (default: data.path of the checkpoint's config)\n"
          "      --users WHICH   all (default): every user, from all their known items;\n"
          "                      train, valid, test: the split's rows (valid/test: fold-in, as\n"
          "                      evaluation sees them); FILE: the users listed one per line\n"
          "                      (raw ids when the dataset has /ids, else user numbers)\n"
          "  -k K                items per user (default 100; at most the dataset's items)\n"
          "      --batch N       users scored at a time (default: train.eval_batch_size)\n"
          "      --compression C of an .h5 output: gzip (default), zstd or none\n"
          "  -h, --help          this help\n"
          "\n"
          "Paths are relative to the working directory. Under mpirun the users are\n"
          "split over the ranks; the output is the same as on one rank.\n");
}

typedef struct {
  sr_cli_model_output io;
  const char *users;
  long long k;
  int h5; /* output format: 1 HDF5, 0 TSV */
} recommend_args;

/* Returns -1 to go on, else the exit status. */
static int parse_recommend_args(int argc, char **argv, recommend_args *a) {
  static const struct option options[] = {SR_CLI_MODEL_OUTPUT_OPTIONS,
                                          {"users", required_argument, NULL, 'u'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
  memset(a, 0, sizeof *a);
  sr_cli_model_output_init(&a->io);
  a->users = "all";
  a->k = 100;
  optind = 1;
  int opt, status = 0;
  while (status == 0 && (opt = sr_cli_getopt("recommend", argc, argv, "o:k:h", options, NULL)) != -1) {
    switch (opt) {
      case 'u':
        a->users = optarg;
        break;
      case 'k':
        status = sr_cli_parse_int("recommend", "k", optarg, 1, INT32_MAX, &a->k);
        break;
      case 'h':
        recommend_usage(stdout);
        return 0;
      default:
        status = sr_cli_model_output_option("recommend", opt, optarg, &a->io);
        if (status < 0) return SR_CLI_EXIT_USAGE;
    }
  }
  if (status) return status;
  if ((status = sr_cli_model_output_finish("recommend", "missing -o OUT.tsv or OUT.h5", argc, argv, &a->io)))
    return status;
  a->h5 = sr_has_suffix(a->io.out_path, ".h5");
  if (!a->h5 && !sr_has_suffix(a->io.out_path, ".tsv"))
    return sr_cli_usage_error("recommend", "-o %s: the name must end in .tsv or .h5 (the format)", a->io.out_path);
  return -1;
}

/* ---- inputs --------------------------------------------------------------------- */

typedef struct {
  sr_cli_model_data md; /* the model, the dataset and its raw ids */
  int k;                /* items per user: -k, at most n_items */
  sr_csr rows;          /* the selected users' rows */
  int64_t *user_ids;    /* [rows.n_rows] original numbering */
} inputs;

static void inputs_free(inputs *in) {
  sr_cli_model_data_free(&in->md);
  sr_csr_free(&in->rows);
  free(in->user_ids);
}

/* The user number of one line of a users file: a raw id of /ids/users when
 * the dataset has them, else a number in [0, n_users); -1 if none matches. */
static int64_t user_of_line(const inputs *in, const char *line) {
  const sr_raw_ids *raw = &in->md.user_raw;
  char *end;
  if (raw->strings) {
    for (int64_t u = 0; u < raw->n; u++)
      if (strlen(line) <= (size_t)raw->width && strncmp(raw->strings + u * raw->width, line, (size_t)raw->width) == 0)
        return u;
    return -1;
  }
  errno = 0;
  long long v = strtoll(line, &end, 10);
  if (end == line || *end || errno) return -1;
  if (!raw->numbers) return v >= 0 && v < in->md.data.n_users ? v : -1;
  for (int64_t u = 0; u < raw->n; u++)
    if (raw->numbers[u] == v) return u;
  return -1;
}

/* The users listed in `path` (one per line, blank lines skipped), each with
 * its row among all users (sr_recommend_select ALL): errors name the line. */
static int select_from_file(inputs *in, const char *path) {
  sr_csr all;
  int64_t *all_ids;
  sr_recommend_select(&in->md.data, SR_RECOMMEND_ALL, &all, &all_ids);
  int64_t *row_of = sr_malloc((size_t)(in->md.data.n_users + 1) * sizeof *row_of);
  for (int64_t u = 0; u < in->md.data.n_users; u++) row_of[u] = -1;
  for (int64_t r = 0; r < all.n_rows; r++) row_of[all_ids[r]] = r;
  FILE *fp = fopen(path, "r");
  int rc = fp ? SR_OK : SR_FAIL(SR_EIO, "%s: %s", path, strerror(errno));
  int64_t n = 0, *picked = NULL, line_no = 0;
  size_t cap = 0;
  char line[1024];
  while (rc == SR_OK && fgets(line, sizeof line, fp)) {
    line_no++;
    line[strcspn(line, "\r\n")] = '\0';
    if (!line[0]) continue;
    const int64_t u = user_of_line(in, line);
    if (u < 0 || row_of[u] < 0) {
      rc = SR_FAIL(SR_EINVAL, "%s:%lld: no user '%s' in %s%s", path, (long long)line_no, line, in->md.data_path,
                   in->md.user_raw.n ? " (/ids/users)" : "");
      break;
    }
    sr_grow(&picked, &cap, (size_t)n + 1);
    picked[n++] = row_of[u];
  }
  if (fp) fclose(fp);
  if (rc == SR_OK) {
    sr_csr_gather_rows(&all, picked, n, &in->rows);
    in->user_ids = sr_malloc((size_t)(n > 0 ? n : 1) * sizeof *in->user_ids);
    for (int64_t i = 0; i < n; i++) in->user_ids[i] = all_ids[picked[i]];
  }
  free(picked);
  free(row_of);
  free(all_ids);
  sr_csr_free(&all);
  return rc;
}

static int load_inputs(const recommend_args *a, inputs *in) {
  SR_TRY(sr_cli_load_model_data(a->io.checkpoint, a->io.data_path, -1, "recommend", &in->md));
  in->k = a->k < in->md.data.n_items ? (int)a->k : (int)in->md.data.n_items; /* a small catalogue: every item */
  for (int w = 0; sr_recommend_users_names[w]; w++)
    if (strcmp(a->users, sr_recommend_users_names[w]) == 0) {
      sr_recommend_select(&in->md.data, (sr_recommend_users)w, &in->rows, &in->user_ids);
      return SR_OK;
    }
  return select_from_file(in, a->users);
}

/* ---- output --------------------------------------------------------------------- */

static void print_id(FILE *out, const sr_raw_ids *raw, int64_t i) {
  if (raw->numbers)
    fprintf(out, "%lld", (long long)raw->numbers[i]);
  else if (raw->strings)
    fprintf(out, "%.*s", (int)strnlen(raw->strings + i * raw->width, (size_t)raw->width),
            raw->strings + i * raw->width);
  else
    fprintf(out, "%lld", (long long)i);
}

/* Written to a temporary and renamed, like every file shardrec writes. */
static int write_tsv(const char *path, const inputs *in, int64_t n, int k, const int32_t *items,
                     const float *scores) {
  char tmp[SR_PATH_MAX + 32];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *out = fopen(tmp, "w");
  if (!out) return SR_FAIL(SR_EIO, "%s: %s", tmp, strerror(errno));
  fprintf(out, "user\trank\titem\tscore\n");
  for (int64_t r = 0; r < n; r++)
    for (int i = 0; i < k && items[r * k + i] >= 0; i++) {
      print_id(out, &in->md.user_raw, in->user_ids[r]);
      fprintf(out, "\t%d\t", i + 1);
      print_id(out, &in->md.item_raw, items[r * k + i]);
      fprintf(out, "\t%.9g\n", scores[r * k + i]);
    }
  int failed = ferror(out) | (fflush(out) != 0) | (fsync(fileno(out)) != 0);
  failed |= fclose(out) != 0;
  if (failed || rename(tmp, path) != 0) {
    int e = errno;
    remove(tmp);
    return SR_FAIL(SR_EIO, "%s: %s", path, strerror(e));
  }
  return SR_OK;
}

static int write_h5(const recommend_args *a, const inputs *in, int64_t n, int k, const int32_t *items,
                    const float *scores) {
  sr_h5file f;
  SR_TRY(sr_h5_create(&f, a->io.out_path, a->io.compression));
  sr_raw_ids raw;
  sr_raw_ids_pick(&in->md.user_raw, in->user_ids, n, &raw);
  int rc = sr_h5_write_attr_int64(&f, "/", "k", k);
  if (rc == SR_OK) rc = sr_h5_write_attr_string(&f, "/", "checkpoint", a->io.checkpoint);
  if (rc == SR_OK) rc = sr_h5_write_attr_string(&f, "/", "dataset", in->md.data_path);
  if (rc == SR_OK) rc = sr_h5_write_attr_string(&f, "/", "users", a->users);
  if (rc == SR_OK) rc = sr_h5_write_attr_string(&f, "/", "model", in->md.model->ops->name);
  if (rc == SR_OK) rc = sr_h5_write_attr_string(&f, "/", "created_by", "shardrec " SHARDREC_VERSION);
  if (rc == SR_OK) rc = sr_h5_write_array(&f, "/users/ids", SR_H5_INT64, in->user_ids, n);
  if (rc == SR_OK) rc = sr_raw_ids_write(&f, "/users/raw_ids", &raw);
  if (rc == SR_OK) rc = sr_h5_write_matrix(&f, "/recs/items", SR_H5_INT32, items, n, k);
  if (rc == SR_OK) rc = sr_h5_write_matrix(&f, "/recs/scores", SR_H5_FLOAT32, scores, n, k);
  if (rc == SR_OK) rc = sr_raw_ids_write(&f, "/items/raw_ids", &in->md.item_raw);
  sr_raw_ids_free(&raw);
  if (rc == SR_OK) return sr_h5_commit(&f);
  sr_h5_close(&f);
  return rc;
}

/* ---- the command ---------------------------------------------------------------- */

/* This rank's share of the users, gathered on every rank (rank 0 writes). */
static int recommend_users(const sr_dist *dist, const recommend_args *a, inputs *in, int32_t **items,
                           float **scores) {
  const int k = in->k;
  const int64_t n = in->rows.n_rows, batch = a->io.batch > 0 ? a->io.batch : in->md.cfg.train.eval_batch_size;
  int64_t begin, end;
  sr_shard_even_range(n, dist->rank, dist->size, &begin, &end);
  sr_csr mine;
  sr_csr_slice_rows(&in->rows, begin, end, &mine);
  int32_t *my_items = sr_malloc((size_t)((end - begin) * k + 1) * sizeof *my_items);
  float *my_scores = sr_malloc((size_t)((end - begin) * k + 1) * sizeof *my_scores);
  sr_recommend(in->md.model, &mine, in->user_ids + begin, k, batch, my_items, my_scores);
  sr_csr_free(&mine);
  /* Item numbers travel as int64 (the gather's integer type). */
  int64_t *wide = sr_malloc((size_t)((end - begin) * k + 1) * sizeof *wide), *all_wide;
  for (int64_t i = 0; i < (end - begin) * k; i++) wide[i] = my_items[i];
  sr_exchange_layout rows, entries;
  int rc = sr_exchange_layout_init(&rows, dist, end - begin);
  if (rc == SR_OK) rc = sr_exchange_layout_init(&entries, dist, (end - begin) * k);
  *items = sr_malloc((size_t)(n * k + 1) * sizeof **items);
  *scores = sr_malloc((size_t)(n * k + 1) * sizeof **scores);
  all_wide = sr_malloc((size_t)(n * k + 1) * sizeof *all_wide);
  if (rc == SR_OK) rc = sr_gather_rows_f32(dist, &rows, my_scores, k, *scores);
  if (rc == SR_OK) rc = sr_gather_i64(dist, &entries, wide, all_wide);
  for (int64_t i = 0; rc == SR_OK && i < n * k; i++) (*items)[i] = (int32_t)all_wide[i];
  sr_exchange_layout_free(&rows);
  sr_exchange_layout_free(&entries);
  free(my_items);
  free(my_scores);
  free(wide);
  free(all_wide);
  return rc;
}

static int recommend_main(const sr_dist *dist, const recommend_args *a) {
  inputs in;
  memset(&in, 0, sizeof in);
  int rc = load_inputs(a, &in);
  if (sr_dist_agree(dist, rc)) {
    if (dist->rank == 0) sr_log_current_error(); /* every failed rank's message */
    inputs_free(&in);
    return SR_CLI_AGREED_FAILURE;
  }
  sr_cli_set_blas_threads(&in.md.cfg, dist);
  int32_t *items = NULL;
  float *scores = NULL;
  rc = recommend_users(dist, a, &in, &items, &scores);
  const int64_t n = in.rows.n_rows;
  if (rc == SR_OK && dist->rank == 0) {
    rc = a->h5 ? write_h5(a, &in, n, in.k, items, scores) : write_tsv(a->io.out_path, &in, n, in.k, items, scores);
    if (rc == SR_OK)
      sr_info("wrote %s: %d items for each of %lld users (%s)", a->io.out_path, in.k, (long long)n, a->users);
  }
  free(items);
  free(scores);
  inputs_free(&in);
  if (!sr_dist_agree(dist, rc)) return SR_OK;
  if (dist->rank == 0) sr_log_current_error();
  return SR_CLI_AGREED_FAILURE;
}

int sr_cmd_recommend(int argc, char **argv) {
  recommend_args a;
  int status = parse_recommend_args(argc, argv, &a);
  if (status >= 0) return status;
  sr_dist dist;
  status = sr_dist_init(NULL, NULL, &dist) ? sr_cmd_report_error() : recommend_main(&dist, &a);
  return sr_cli_finish(&dist, status);
}

/* cmd_eval.c — `shardrec eval CHECKPOINT [--data FILE] [--split valid|test]`. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "shardrec/checkpoint.h"
#include "shardrec/dataset.h"
#include "shardrec/error.h"
#include "shardrec/evaluate.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"
#include "shardrec/metrics.h"

static void eval_usage(FILE *out) {
  fprintf(out,
          "usage: shardrec eval CHECKPOINT.h5 [--data FILE.h5] [--split valid|test] [--metrics LIST]\n"
          "                     [--batch N] [--popularity] [--slices]\n"
          "\n"
          "Evaluates a trained model on a split of a dataset (default: the dataset and\n"
          "metrics of the config stored in the checkpoint, split test). LIST is comma\n"
          "separated, e.g. recall@20,ndcg@100,recall_plain@50. --popularity also\n"
          "prints the most-popular-items baseline. --slices (or eval.slices in the\n"
          "stored config) also prints every metric for the held-out items of the head,\n"
          "torso and tail of training popularity, and of cold-start items\n"
          "(eval.popularity_shares sets the thresholds).\n");
}

/* Fills names[0..*n) from a comma-separated list (modifies `list`). */
static int split_metric_list(char *list, const char **names, int max, int *n) {
  *n = 0;
  for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
    if (*n == max) return SR_FAIL(SR_EINVAL, "--metrics: at most %d metrics", max);
    names[(*n)++] = tok;
  }
  return *n ? SR_OK : SR_FAIL(SR_EINVAL, "--metrics: empty list");
}

static void print_metrics(const sr_dist *dist, const char *label, const sr_metrics *m) {
  if (dist->rank != 0) return;
  char line[1024];
  sr_metrics_format(m, line, sizeof line);
  printf("%-12s %s  (%lld users)\n", label, line, (long long)m->n_users);
  for (int s = 0; s < m->n_slices; s++) {
    if (s == SR_SLICE_COLD && m->slice_items[s] == 0) continue; /* no cold-start items in this data */
    sr_metrics_format_slice(m, s, line, sizeof line);
    printf("%-12s %s\n", "", line);
  }
  fflush(stdout);
}

typedef struct {
  const char *checkpoint, *data_path, *split_name;
  char *metric_list;
  long long batch; /* 0: the config's train.eval_batch_size */
  int popularity;
  int slices; /* --slices: popularity slices whatever the stored config says */
} eval_args;

/* The model, then (--popularity) the baseline, on `split` into metrics. */
static int evaluate_with(const sr_dist *dist, sr_model *model, const eval_args *a, int64_t bs, sr_metrics *metrics,
                         const sr_dataset *data, const sr_eval_split *split) {
  sr_evaluate_rows(model, split, 0, split->n_users, bs, metrics);
  SR_TRY(sr_metrics_reduce(dist, metrics));
  print_metrics(dist, a->split_name, metrics);
  if (!a->popularity) return SR_OK;
  float *popularity = sr_malloc((size_t)data->n_items * sizeof(float));
  int rc = sr_global_popularity(dist, &data->train, popularity);
  sr_metrics_reset(metrics);
  if (rc == SR_OK) {
    sr_evaluate_popularity(popularity, data->n_items, split, bs, metrics);
    rc = sr_metrics_reduce(dist, metrics);
  }
  free(popularity);
  if (rc == SR_OK) print_metrics(dist, "popularity", metrics);
  return rc;
}

/* Each rank scores its shard of the split; sums are reduced; rank 0 prints.
 * With slices, every item's slice comes from the whole training split. */
static int evaluate(const sr_dist *dist, sr_model *model, const sr_config *cfg, const eval_args *a,
                    sr_metrics *metrics, const sr_dataset *data) {
  const sr_eval_split *split = strcmp(a->split_name, "valid") == 0 ? &data->valid : &data->test;
  int64_t bs = a->batch > 0 ? a->batch : cfg->train.eval_batch_size;
  uint8_t *item_slice = NULL;
  if (a->slices || cfg->eval.n_slices > 0) {
    item_slice = sr_malloc((size_t)data->n_items);
    int rc = sr_popularity_slice_map(dist, &data->train, cfg->eval.popularity_shares, item_slice);
    if (rc != SR_OK) {
      free(item_slice);
      return rc;
    }
    sr_metrics_set_slices(metrics, item_slice, data->n_items);
  }
  int rc = evaluate_with(dist, model, a, bs, metrics, data, split);
  free(item_slice);
  return rc;
}

static int eval_main(const sr_dist *dist, const eval_args *a) {
  sr_config cfg;
  sr_config_defaults(&cfg);
  sr_model *model = NULL;
  int rc = sr_checkpoint_read_config(a->checkpoint, &cfg);
  sr_metrics metrics;
  const char *names[SR_MAX_METRICS];
  int n_names = cfg.eval.n_metrics;
  for (int i = 0; rc == SR_OK && i < n_names; i++) names[i] = cfg.eval.metrics[i];
  if (rc == SR_OK && a->metric_list) rc = split_metric_list(a->metric_list, names, SR_MAX_METRICS, &n_names);
  if (rc == SR_OK) rc = sr_metrics_init(&metrics, names, n_names);
  if (rc) { /* identical on every rank */
    if (dist->rank == 0) sr_log_current_error();
    return SR_CLI_AGREED_FAILURE;
  }
  sr_cli_set_blas_threads(&cfg, dist);
  /* The shard is read once; the model is built over it (its item count,
   * and the features of a feature-based model, which every shard holds). */
  const char *path = a->data_path ? a->data_path : cfg.data.path;
  sr_dataset data;
  rc = sr_dataset_read_shard(path, dist->rank, dist->size, &data);
  if (rc == SR_OK) rc = sr_checkpoint_read(a->checkpoint, &data, &cfg, &model);
  if (sr_dist_agree(dist, rc)) {
    if (dist->rank == 0) sr_log_current_error(); /* every failed rank's message */
    sr_model_destroy(model);                     /* built on the ranks that did not fail */
    sr_dataset_free(&data);
    return SR_CLI_AGREED_FAILURE;
  }
  rc = evaluate(dist, model, &cfg, a, &metrics, &data);
  sr_dataset_free(&data);
  sr_model_destroy(model);
  if (rc == SR_OK || rc == SR_CLI_AGREED_FAILURE) return rc;
  return sr_cmd_report_error();
}

int sr_cmd_eval(int argc, char **argv) {
  static const struct option longopts[] = {
      {"data", required_argument, NULL, 'd'},    {"split", required_argument, NULL, 's'},
      {"metrics", required_argument, NULL, 'm'}, {"batch", required_argument, NULL, 'b'},
      {"popularity", no_argument, NULL, 'p'},    {"slices", no_argument, NULL, 'S'},
      {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
  const char *data_path = NULL, *split_name = "test";
  char *metric_list = NULL;
  long long batch = 0;
  int popularity = 0, slices = 0, opt;
  optind = 1;
  while ((opt = sr_cli_getopt("eval", argc, argv, "d:s:m:b:ph", longopts, NULL)) != -1) {
    switch (opt) {
      case 'd':
        data_path = optarg;
        break;
      case 's':
        split_name = optarg;
        break;
      case 'm':
        metric_list = optarg;
        break;
      case 'b':
        if (sr_cli_parse_int("eval", "batch", optarg, 1, INT32_MAX, &batch)) return SR_CLI_EXIT_USAGE;
        break;
      case 'p':
        popularity = 1;
        break;
      case 'S':
        slices = 1;
        break;
      case 'h':
        eval_usage(stdout);
        return 0;
      default:
        return SR_CLI_EXIT_USAGE;
    }
  }
  static const char *const split_names[] = {"valid", "test", NULL};
  int split;
  if (sr_cli_parse_enum("eval", "split", split_name, split_names, &split)) return SR_CLI_EXIT_USAGE;
  if (optind != argc - 1)
    return sr_cli_usage_error("eval", "expected one checkpoint, got %d arguments", argc - optind);
  eval_args a = {argv[optind], data_path, split_names[split], metric_list, batch, popularity, slices};
  sr_dist dist;
  int status = sr_dist_init(NULL, NULL, &dist) ? sr_cmd_report_error() : eval_main(&dist, &a);
  return sr_cli_finish(&dist, status);
}

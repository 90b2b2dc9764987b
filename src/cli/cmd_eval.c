/* cmd_eval.c — `shardrec eval CHECKPOINT [--data FILE] [--split valid|test]`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "shardrec/checkpoint.h"
#include "shardrec/dataset.h"
#include "shardrec/error.h"
#include "shardrec/evaluate.h"
#include "shardrec/log.h"
#include "shardrec/metrics.h"

static void eval_usage(FILE *out) {
  fprintf(out,
          "usage: shardrec eval CHECKPOINT.h5 [--data FILE.h5] [--split valid|test] [--metrics LIST]\n"
          "                     [--batch N] [--popularity]\n"
          "\n"
          "Evaluates a trained model on a split of a dataset (default: the dataset and\n"
          "metrics of the config stored in the checkpoint, split test). LIST is comma\n"
          "separated, e.g. recall@20,ndcg@100,recall_plain@50. --popularity also\n"
          "prints the most-popular-items baseline.\n");
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

static void print_metrics(const char *label, const sr_metrics *m) {
  char line[512];
  sr_metrics_format(m, line, sizeof line);
  printf("%-12s %s  (%lld users)\n", label, line, (long long)m->n_users);
}

int sr_cmd_eval(int argc, char **argv) {
  static const struct option longopts[] = {{"data", required_argument, NULL, 'd'},
                                           {"split", required_argument, NULL, 's'},
                                           {"metrics", required_argument, NULL, 'm'},
                                           {"batch", required_argument, NULL, 'b'},
                                           {"popularity", no_argument, NULL, 'p'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  const char *data_path = NULL, *split_name = "test";
  char *metric_list = NULL;
  long batch = 0;
  int popularity = 0, opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "d:s:m:b:ph", longopts, NULL)) != -1) {
    switch (opt) {
      case 'd': data_path = optarg; break;
      case 's': split_name = optarg; break;
      case 'm': metric_list = optarg; break;
      case 'b': batch = strtol(optarg, NULL, 10); break;
      case 'p': popularity = 1; break;
      default: eval_usage(opt == 'h' ? stdout : stderr); return opt == 'h' ? 0 : 2;
    }
  }
  if (optind != argc - 1 || (strcmp(split_name, "valid") != 0 && strcmp(split_name, "test") != 0) ||
      batch < 0) {
    eval_usage(stderr);
    return 2;
  }
  sr_config cfg;
  sr_model *model = NULL;
  if (sr_checkpoint_read(argv[optind], &cfg, &model)) return sr_cmd_report_error();
  sr_metrics metrics;
  const char *names[SR_MAX_METRICS];
  int n_names = cfg.eval.n_metrics, rc = SR_OK;
  for (int i = 0; i < n_names; i++) names[i] = cfg.eval.metrics[i];
  if (metric_list) rc = split_metric_list(metric_list, names, SR_MAX_METRICS, &n_names);
  if (rc == SR_OK) rc = sr_metrics_init(&metrics, names, n_names);
  sr_dataset data;
  sr_dataset_init(&data);
  if (rc == SR_OK) rc = sr_dataset_read(data_path ? data_path : cfg.data.path, &data);
  if (rc == SR_OK && data.n_items != model->n_items)
    rc = SR_FAIL(SR_EINVAL, "%s has %lld items but the model was trained on %lld",
                 data_path ? data_path : cfg.data.path, (long long)data.n_items, (long long)model->n_items);
  if (rc == SR_OK) {
    const sr_eval_split *split = strcmp(split_name, "valid") == 0 ? &data.valid : &data.test;
    int64_t bs = batch > 0 ? batch : cfg.train.eval_batch_size;
    sr_evaluate_rows(model, split, 0, split->n_users, bs, &metrics);
    print_metrics(split_name, &metrics);
    if (popularity) {
      sr_metrics_reset(&metrics);
      sr_evaluate_popularity(&data.train, split, bs, &metrics);
      print_metrics("popularity", &metrics);
    }
  }
  sr_dataset_free(&data);
  sr_model_destroy(model);
  return rc ? sr_cmd_report_error() : 0;
}

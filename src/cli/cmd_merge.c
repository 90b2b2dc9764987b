/*
 * cmd_merge.c — `shardrec merge`: combines checkpoints of one architecture into
 * a model soup (merge.h, docs/merging.md), scoring ingredients and result on
 * the validation split when asked (always for greedy soups).
 *
 * A single process: evaluation needs no MPI (sr_evaluate_rows runs locally).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "shardrec/checkpoint.h"
#include "shardrec/dataset.h"
#include "shardrec/error.h"
#include "shardrec/evaluate.h"
#include "shardrec/fsutil.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"
#include "shardrec/merge.h"
#include "shardrec/metrics.h"

static void merge_usage(FILE *out) {
  fprintf(out,
          "usage: shardrec merge --method METHOD [options] -o OUT.h5 CKPT1.h5 CKPT2.h5 ...\n"
          "\n"
          "Merges checkpoints of one architecture into one model (docs/merging.md).\n"
          "METHOD is one of\n"
          "  uniform          mean of the checkpoints\n"
          "  greedy           uniform soup of the checkpoints that improve validation\n"
          "  task-arithmetic  base + lambda * sum of (checkpoint - base)       needs --base\n"
          "  ties             TIES-merging: trim, elect sign, disjoint mean     needs --base\n"
          "  delta            delta-guided, per parameter                       needs --base\n"
          "  delta-tensor     delta-guided, per tensor                          needs --base\n"
          "\n"
          "options:\n"
          "  -o, --output FILE   merged checkpoint to write (config of CKPT1)\n"
          "      --base CKPT     the checkpoint the ingredients were trained from\n"
          "      --lambda L      scale of the merged task vector (task-arithmetic 1/K,\n"
          "                      ties, delta and delta-tensor 1)\n"
          "      --gamma G       delta methods: weights proportional to |delta|^G (default 1)\n"
          "      --density D     ties: fraction of each task vector kept (default 0.2)\n"
          "      --eval          print validation metrics of every checkpoint and the result\n"
          "      --data FILE     dataset for validation (default: data.path of CKPT1)\n"
          "      --metric NAME   greedy selection metric (default: train.select_metric of CKPT1)\n"
          "  -h, --help          this help\n");
}

/* ---- arguments ------------------------------------------------------------------ */

typedef struct {
  sr_merge_opts opts;
  int method_given, gamma_given, density_given;
  const char *base_path, *data_path, *out_path, *metric;
  int eval; /* print the validation table (greedy always evaluates) */
  char **ingredients;
  int k;
} merge_args;

enum { OPT_METHOD = 256, OPT_BASE, OPT_LAMBDA, OPT_GAMMA, OPT_DENSITY, OPT_EVAL, OPT_DATA, OPT_METRIC };

static int apply_option(merge_args *a, int opt, const char *arg) {
  switch (opt) {
    case OPT_METHOD:
      a->method_given = 1;
      if (sr_merge_method_parse(arg, &a->opts.method) != SR_OK)
        return sr_cli_usage_error("merge", "%s", sr_error_message());
      return 0;
    case 'o':
      a->out_path = arg;
      return 0;
    case OPT_BASE:
      a->base_path = arg;
      return 0;
    case OPT_LAMBDA:
      a->opts.lambda_set = 1;
      return sr_cli_parse_number("merge", "lambda", arg, &a->opts.lambda);
    case OPT_GAMMA:
      a->gamma_given = 1;
      return sr_cli_parse_number("merge", "gamma", arg, &a->opts.gamma);
    case OPT_DENSITY:
      a->density_given = 1;
      return sr_cli_parse_number("merge", "density", arg, &a->opts.density);
    case OPT_EVAL:
      a->eval = 1;
      return 0;
    case OPT_DATA:
      a->data_path = arg;
      return 0;
    case OPT_METRIC:
      a->metric = arg;
      return 0;
    default:
      return sr_cli_usage_error("merge", "bad option");
  }
}

/* Options that the chosen method would silently ignore are mistakes. */
static int check_combination(const merge_args *a) {
  sr_merge_method m = a->opts.method;
  const char *name = sr_merge_method_name(m);
  if (sr_merge_needs_base(m) && !a->base_path)
    return sr_cli_usage_error(
        "merge", "--method %s needs --base CKPT (the checkpoint the ingredients were trained from)", name);
  if (a->opts.lambda_set && !sr_merge_needs_base(m))
    return sr_cli_usage_error("merge", "--lambda does not apply to --method %s", name);
  if (a->gamma_given && m != SR_MERGE_DELTA && m != SR_MERGE_DELTA_TENSOR)
    return sr_cli_usage_error("merge", "--gamma applies to --method delta and delta-tensor only");
  if (a->density_given && m != SR_MERGE_TIES)
    return sr_cli_usage_error("merge", "--density applies to --method ties only");
  if (sr_merge_opts_validate(&a->opts) != SR_OK) return sr_cli_usage_error("merge", "%s", sr_error_message());
  for (int i = 0; i <= a->k; i++) {
    const char *input = i < a->k ? a->ingredients[i] : a->base_path;
    if (input && sr_same_file(a->out_path, input))
      return sr_cli_usage_error("merge", "the output %s is also an input: it would be overwritten", a->out_path);
  }
  int evaluates = a->eval || m == SR_MERGE_GREEDY;
  if (!evaluates && (a->data_path || a->metric))
    return sr_cli_usage_error("merge", "--data and --metric are used only with --eval or --method greedy");
  sr_metric_spec spec;
  if (a->metric && sr_metric_parse(a->metric, &spec) != SR_OK)
    return sr_cli_usage_error("merge", "--metric: %s", sr_error_message());
  return 0;
}

/* Returns -1 to go on, else the exit status. */
static int parse_merge_args(int argc, char **argv, merge_args *a) {
  static const struct option options[] = {{"method", required_argument, NULL, OPT_METHOD},
                                          {"output", required_argument, NULL, 'o'},
                                          {"base", required_argument, NULL, OPT_BASE},
                                          {"lambda", required_argument, NULL, OPT_LAMBDA},
                                          {"gamma", required_argument, NULL, OPT_GAMMA},
                                          {"density", required_argument, NULL, OPT_DENSITY},
                                          {"eval", no_argument, NULL, OPT_EVAL},
                                          {"data", required_argument, NULL, OPT_DATA},
                                          {"metric", required_argument, NULL, OPT_METRIC},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
  memset(a, 0, sizeof *a);
  sr_merge_opts_default(&a->opts, SR_MERGE_UNIFORM);
  optind = 1;
  int opt;
  while ((opt = sr_cli_getopt("merge", argc, argv, "o:h", options, NULL)) != -1) {
    if (opt == 'h') return merge_usage(stdout), 0;
    if (opt == '?') return SR_CLI_EXIT_USAGE;
    int status = apply_option(a, opt, optarg);
    if (status) return status;
  }
  if (!a->method_given) return sr_cli_usage_error("merge", "missing --method");
  if (!a->out_path) return sr_cli_usage_error("merge", "missing -o OUT.h5");
  if (optind == argc) return sr_cli_usage_error("merge", "no checkpoints to merge");
  a->ingredients = argv + optind;
  a->k = argc - optind;
  int status = check_combination(a);
  return status ? status : -1;
}

/* ---- checkpoints ---------------------------------------------------------------- */

typedef struct {
  const char *path;
  sr_config cfg;
  sr_model *model;
} checkpoint;

/* `over`: what the model is built over (sr_checkpoint_read), or NULL. */
static int load_checkpoint(const char *path, const sr_dataset *over, checkpoint *c) {
  c->path = path;
  sr_config_defaults(&c->cfg);
  return sr_checkpoint_read(path, over, &c->cfg, &c->model);
}

/* Ingredients, then the base when given, all with the layout of the first. */
static int load_all(const merge_args *a, const sr_dataset *over, checkpoint *ingr, checkpoint *base) {
  for (int i = 0; i < a->k; i++) {
    SR_TRY(load_checkpoint(a->ingredients[i], over, &ingr[i]));
    SR_TRY(sr_merge_compatible(&ingr[0].model->params, &ingr[i].model->params, ingr[0].path, ingr[i].path));
  }
  if (!a->base_path) return SR_OK;
  SR_TRY(load_checkpoint(a->base_path, over, base));
  return sr_merge_compatible(&ingr[0].model->params, &base->model->params, ingr[0].path, base->path);
}

/* ---- validation ----------------------------------------------------------------- */

typedef struct {
  char data_path[SR_PATH_MAX]; /* a copy: the config it may come from is gone by the report */
  sr_dataset data;
  sr_metrics metrics; /* the metrics to report, sums zeroed */
  int select;         /* index of the greedy selection metric */
  int64_t batch;
} validation;

/* Metrics: the config's eval.metrics, plus the selection metric if missing. */
static int setup_metrics(validation *v, const sr_config *cfg, const char *metric) {
  const char *names[SR_MAX_METRICS + 1];
  int n = cfg->eval.n_metrics;
  for (int i = 0; i < n; i++) names[i] = cfg->eval.metrics[i];
  const char *select = metric ? metric : cfg->train.select_metric;
  SR_TRY(sr_metrics_init(&v->metrics, names, n));
  v->select = sr_metrics_find(&v->metrics, select);
  if (v->select >= 0) return SR_OK;
  names[n] = select;
  SR_TRY(sr_metrics_init(&v->metrics, names, n + 1));
  v->select = n;
  return SR_OK;
}

/* first_cfg: the first ingredient's config. The models are then built over
 * the dataset read here (checkpoint reads check its item count). */
static int setup_validation(validation *v, const merge_args *a, const sr_config *first_cfg) {
  snprintf(v->data_path, sizeof v->data_path, "%s", a->data_path ? a->data_path : first_cfg->data.path);
  v->batch = first_cfg->train.eval_batch_size;
  SR_TRY(setup_metrics(v, first_cfg, a->metric));
  return sr_dataset_read(v->data_path, &v->data);
}

static void validate_model(const validation *v, sr_model *m, sr_metrics *out) {
  *out = v->metrics;
  sr_evaluate_rows(m, &v->data.valid, 0, v->data.valid.n_users, v->batch, out);
}

typedef struct {
  const validation *v;
  sr_model *model; /* evaluates the candidates */
} greedy_ctx;

static double greedy_score(void *ctx, const sr_params *candidate) {
  greedy_ctx *g = ctx;
  if (candidate != &g->model->params) sr_params_copy_values(&g->model->params, candidate);
  sr_metrics m;
  validate_model(g->v, g->model, &m);
  return sr_metrics_mean(&m, g->v->select);
}

/* ---- the table ------------------------------------------------------------------ */

typedef struct {
  char label[SR_PATH_MAX + 32];
  const char *greedy; /* "kept", "rejected" or NULL */
  sr_metrics metrics;
} table_row;

static void print_table(const validation *v, const table_row *rows, int n_rows, int greedy) {
  int width = 5;
  for (int r = 0; r < n_rows; r++)
    if ((int)strlen(rows[r].label) > width) width = (int)strlen(rows[r].label);
  char name[SR_METRIC_NAME_MAX];
  sr_metric_name(&v->metrics.spec[v->select], name, sizeof name);
  printf("validation split of %s (%lld users)%s%s\n%-*s", v->data_path, (long long)rows[0].metrics.n_users,
         greedy ? "; greedy soup selected by " : "", greedy ? name : "", width, "model");
  for (int i = 0; i < v->metrics.n; i++) {
    sr_metric_name(&v->metrics.spec[i], name, sizeof name);
    printf("  %10s", name);
  }
  printf("%s\n", greedy ? "  greedy" : "");
  for (int r = 0; r < n_rows; r++) {
    printf("%-*s", width, rows[r].label);
    for (int i = 0; i < rows[r].metrics.n; i++) printf("  %10.4f", sr_metrics_mean(&rows[r].metrics, i));
    printf("%s%s\n", rows[r].greedy ? "  " : "", rows[r].greedy ? rows[r].greedy : "");
  }
  fflush(stdout);
}

/* ---- the command ---------------------------------------------------------------- */

typedef struct {
  checkpoint *ingr, base;
  sr_model *out;
  sr_dataset features; /* a feature-based model's features, when no validation dataset is read */
  validation v;
  table_row *rows; /* when evaluating: ingredients, base (if any), merged */
  int n_rows;
  int evaluates;
} session;

static void session_free(session *s, int k) {
  for (int i = 0; i < k; i++) sr_model_destroy(s->ingr[i].model);
  free(s->ingr);
  sr_model_destroy(s->base.model);
  sr_model_destroy(s->out);
  sr_dataset_free(&s->v.data);
  sr_dataset_free(&s->features);
  free(s->rows);
}

static int merge_into_output(session *s, const merge_args *a) {
  const sr_params **ingr = sr_malloc((size_t)a->k * sizeof *ingr);
  for (int i = 0; i < a->k; i++) ingr[i] = &s->ingr[i].model->params;
  int rc;
  if (a->opts.method == SR_MERGE_GREEDY) {
    double *scores = sr_malloc((size_t)a->k * sizeof *scores), soup_score;
    int *kept = sr_malloc((size_t)a->k * sizeof *kept);
    for (int i = 0; i < a->k; i++) scores[i] = sr_metrics_mean(&s->rows[i].metrics, s->v.select);
    greedy_ctx g = {&s->v, s->out};
    rc = sr_merge_greedy(ingr, scores, a->k, greedy_score, &g, &s->out->params, kept, &soup_score);
    for (int i = 0; rc == SR_OK && i < a->k; i++) s->rows[i].greedy = kept[i] ? "kept" : "rejected";
    free(scores);
    free(kept);
  } else {
    rc = sr_merge_params(&a->opts, a->base_path ? &s->base.model->params : NULL, ingr, a->k, &s->out->params);
  }
  free(ingr);
  return rc;
}

static void report(const merge_args *a) {
  const sr_merge_opts *o = &a->opts;
  double lambda = sr_merge_lambda(o, a->k);
  char detail[96] = "";
  if (o->method == SR_MERGE_TASK_ARITHMETIC)
    snprintf(detail, sizeof detail, ", lambda %g", lambda);
  else if (o->method == SR_MERGE_TIES)
    snprintf(detail, sizeof detail, ", lambda %g, density %g", lambda, o->density);
  else if (o->method == SR_MERGE_DELTA || o->method == SR_MERGE_DELTA_TENSOR)
    snprintf(detail, sizeof detail, ", lambda %g, gamma %g", lambda, o->gamma);
  sr_info("wrote %s: %s merge of %d checkpoint(s)%s", a->out_path, sr_merge_method_name(o->method), a->k, detail);
}

/* Ingredient rows, scored before merging (the greedy soup starts from them). */
static int score_ingredients(session *s, const merge_args *a) {
  s->n_rows = a->k + (a->base_path ? 1 : 0) + 1;
  s->rows = sr_calloc((size_t)s->n_rows, sizeof *s->rows);
  for (int i = 0; i < a->k; i++) {
    snprintf(s->rows[i].label, sizeof s->rows[i].label, "%s", a->ingredients[i]);
    validate_model(&s->v, s->ingr[i].model, &s->rows[i].metrics);
  }
  return SR_OK;
}

/* Base and merged rows, then the whole table. */
static void score_results(session *s, const merge_args *a) {
  if (a->base_path) {
    table_row *base = &s->rows[a->k];
    snprintf(base->label, sizeof base->label, "%s (base)", a->base_path);
    validate_model(&s->v, s->base.model, &base->metrics);
  }
  table_row *merged = &s->rows[s->n_rows - 1];
  snprintf(merged->label, sizeof merged->label, "merged: %s", sr_merge_method_name(a->opts.method));
  validate_model(&s->v, s->out, &merged->metrics);
  print_table(&s->v, s->rows, s->n_rows, a->opts.method == SR_MERGE_GREEDY);
}

/* What every model is built over, read once: the validation dataset when
 * evaluating, else a feature-based model's features; NULL for an
 * autoencoder (its item count is in the checkpoint). */
static int read_corpus(session *s, const merge_args *a, const sr_dataset **over) {
  sr_config first_cfg;
  SR_TRY(sr_checkpoint_read_config(a->ingredients[0], &first_cfg));
  *over = NULL;
  if (s->evaluates) {
    SR_TRY(setup_validation(&s->v, a, &first_cfg));
    *over = &s->v.data;
  } else if (first_cfg.model.type == SR_MODEL_TWOTOWER) {
    SR_TRY(sr_dataset_read_features(a->data_path ? a->data_path : first_cfg.data.path, &s->features));
    *over = &s->features;
  }
  return SR_OK;
}

static int run_merge(session *s, const merge_args *a) {
  const sr_dataset *over;
  SR_TRY(read_corpus(s, a, &over));
  SR_TRY(load_all(a, over, s->ingr, &s->base));
  const checkpoint *first = &s->ingr[0];
  /* The output has the first ingredient's architecture; the merge overwrites its values. */
  sr_dataset items;
  sr_dataset_init(&items);
  items.n_items = first->model->n_items;
  SR_TRY(sr_model_create(&first->cfg, over ? over : &items, &s->out));
  sr_cli_set_blas_threads(&first->cfg, NULL);
  if (s->evaluates) SR_TRY(score_ingredients(s, a));
  SR_TRY(merge_into_output(s, a));
  if (s->evaluates) score_results(s, a);
  SR_TRY(sr_checkpoint_write(a->out_path, s->out, &first->cfg));
  report(a);
  return SR_OK;
}

int sr_cmd_merge(int argc, char **argv) {
  merge_args a;
  int status = parse_merge_args(argc, argv, &a);
  if (status >= 0) return status;
  session s;
  memset(&s, 0, sizeof s);
  s.ingr = sr_calloc((size_t)a.k, sizeof *s.ingr);
  s.evaluates = a.eval || a.opts.method == SR_MERGE_GREEDY;
  sr_dataset_init(&s.v.data);
  sr_dataset_init(&s.features);
  int rc = run_merge(&s, &a);
  session_free(&s, a.k);
  return rc == SR_OK ? 0 : sr_cmd_report_error();
}

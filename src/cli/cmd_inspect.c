/*
 * cmd_inspect.c — `shardrec inspect CKPT [CKPT2] [--config]`: what a checkpoint
 * holds (metadata, attributes of any extra top-level group, per-tensor
 * statistics) and, given two, how every tensor differs between them.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "shardrec/checkpoint.h"
#include "shardrec/error.h"
#include "shardrec/h5io.h"
#include "shardrec/mem.h"

#define ATTR_TEXT_MAX 512
#define PARAMS_GROUP "params"

static void inspect_usage(FILE *out) {
  fprintf(out,
          "usage: shardrec inspect CKPT.h5 [CKPT2.h5] [--config]\n"
          "\n"
          "Prints a checkpoint's metadata (attributes of the file and of every top-level\n"
          "group besides /params) and a table of its tensors: shape, L2 norm, mean, min,\n"
          "max. With a second checkpoint, also the per-tensor difference CKPT - CKPT2:\n"
          "||a-b||, max |a-b| and ||a-b|| / ||b||, or \"identical\" when bitwise equal.\n"
          "--config prints the stored training configuration too.\n");
}

/* ---- metadata ------------------------------------------------------------------- */

/* The stored config is long: its size only, unless asked for. */
static int print_config_attr(const sr_h5file *f, int show_config) {
  char *yaml;
  int rc = sr_h5_read_attr_string_alloc(f, "/", "config_yaml", &yaml);
  if (rc == SR_OK && show_config)
    printf("  config_yaml:\n%s%s", yaml, yaml[0] && yaml[strlen(yaml) - 1] == '\n' ? "" : "\n");
  else if (rc == SR_OK)
    printf("  config_yaml: %zu bytes (--config prints it)\n", strlen(yaml));
  free(yaml);
  return rc;
}

static int print_attrs(const sr_h5file *f, const char *obj, const char *indent, int show_config) {
  char **names, text[ATTR_TEXT_MAX];
  int n, rc = sr_h5_list_attrs(f, obj, &names, &n);
  if (rc == SR_OK && n == 0) printf("%s(no attributes)\n", indent);
  int is_root = strcmp(obj, "/") == 0, has_config = 0;
  for (int i = 0; rc == SR_OK && i < n; i++) {
    if (is_root && strcmp(names[i], "config_yaml") == 0) {
      has_config = 1; /* last: with --config it is many lines */
      continue;
    }
    rc = sr_h5_format_attr(f, obj, names[i], text, sizeof text);
    if (rc == SR_OK) printf("%s%s: %s\n", indent, names[i], text);
  }
  sr_h5_free_names(names, n);
  return rc == SR_OK && has_config ? print_config_attr(f, show_config) : rc;
}

/* Attributes of the file, then of each top-level group other than /params
 * (e.g. a training-state group), printed without knowing what they mean. */
static int print_metadata_of(const sr_h5file *f, int show_config) {
  SR_TRY(print_attrs(f, "/", "  ", show_config));
  char **members;
  int n, rc = sr_h5_list_group(f, "/", &members, &n);
  for (int i = 0; rc == SR_OK && i < n; i++) {
    if (strcmp(members[i], PARAMS_GROUP) == 0) continue;
    char obj[SR_PATH_MAX];
    snprintf(obj, sizeof obj, "/%s", members[i]);
    printf("  %s\n", obj);
    rc = print_attrs(f, obj, "    ", 0);
  }
  sr_h5_free_names(members, n);
  return rc;
}

static int print_metadata(const char *path, int show_config) {
  sr_h5file f;
  SR_TRY(sr_h5_open(&f, path));
  printf("%s\n", path);
  int rc = print_metadata_of(&f, show_config);
  sr_h5_close(&f);
  return rc;
}

/* ---- tensors -------------------------------------------------------------------- */

static int name_width(const sr_params *a, const sr_params *b) {
  int w = 6;
  for (int pass = 0; pass < 2; pass++) {
    const sr_params *ps = pass ? b : a;
    for (int i = 0; ps && i < ps->count; i++)
      if ((int)strlen(ps->items[i].name) > w) w = (int)strlen(ps->items[i].name);
  }
  return w;
}

static void print_tensor_stats(const char *path, const sr_params *ps) {
  int w = name_width(ps, NULL);
  int64_t n_values = 0;
  printf("\ntensors of %s\n%-*s  %-12s  %12s  %12s  %12s  %12s\n", path, w, "tensor", "shape", "l2_norm", "mean",
         "min", "max");
  for (int i = 0; i < ps->count; i++) {
    const sr_param *p = &ps->items[i];
    double sq = 0.0, sum = 0.0, lo = INFINITY, hi = -INFINITY;
    for (int64_t j = 0; j < p->numel; j++) {
      double v = p->value[j];
      sq += v * v;
      sum += v;
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
    }
    char shape[64];
    sr_param_format_shape(p, shape, sizeof shape);
    printf("%-*s  %-12s  %12.6g  %12.6g  %12.6g  %12.6g\n", w, p->name, shape, sqrt(sq), sum / (double)p->numel, lo,
           hi);
    n_values += p->numel;
  }
  printf("%d tensors, %lld values\n", ps->count, (long long)n_values);
}

/* One row of the difference a - b of two tensors of the same name. */
static int print_tensor_diff(const sr_param *a, const sr_param *b, const char *path_a, const char *path_b, int w) {
  char sa[64], sb[64];
  sr_param_format_shape(a, sa, sizeof sa);
  sr_param_format_shape(b, sb, sizeof sb);
  if (strcmp(sa, sb) != 0) {
    printf("%-*s  shape %s in %s, %s in %s\n", w, a->name, sa, path_a, sb, path_b);
    return 0;
  }
  if (memcmp(a->value, b->value, (size_t)a->numel * sizeof(float)) == 0) {
    printf("%-*s  %-12s  identical\n", w, a->name, sa);
    return 1;
  }
  double diff_sq = 0.0, b_sq = 0.0, max_abs = 0.0;
  for (int64_t j = 0; j < a->numel; j++) {
    double d = (double)a->value[j] - b->value[j];
    diff_sq += d * d;
    b_sq += (double)b->value[j] * b->value[j];
    max_abs = fabs(d) > max_abs ? fabs(d) : max_abs;
  }
  printf("%-*s  %-12s  %12.6g  %12.6g  %12.6g\n", w, a->name, sa, sqrt(diff_sq), max_abs,
         b_sq > 0.0 ? sqrt(diff_sq / b_sq) : INFINITY);
  return 0;
}

static void print_diff(const char *path_a, sr_params *a, const char *path_b, sr_params *b) {
  int w = name_width(a, b), identical = 0;
  printf("\ndifference %s - %s\n%-*s  %-12s  %12s  %12s  %12s\n", path_a, path_b, w, "tensor", "shape", "||a-b||",
         "max|a-b|", "||a-b||/||b||");
  for (int i = 0; i < a->count; i++) {
    const sr_param *pb = sr_params_find(b, a->items[i].name);
    if (pb)
      identical += print_tensor_diff(&a->items[i], pb, path_a, path_b, w);
    else
      printf("%-*s  only in %s\n", w, a->items[i].name, path_a);
  }
  for (int i = 0; i < b->count; i++)
    if (!sr_params_find(a, b->items[i].name)) printf("%-*s  only in %s\n", w, b->items[i].name, path_b);
  printf("%d of %d tensors identical\n", identical, a->count > b->count ? a->count : b->count);
}

/* ---- the command ---------------------------------------------------------------- */

/* Tensors are read as stored: no model is rebuilt, so no dataset is needed. */
static int inspect(char **paths, int n_paths, int show_config) {
  sr_params tensors[2];
  memset(tensors, 0, sizeof tensors);
  int rc = SR_OK;
  for (int i = 0; i < n_paths && rc == SR_OK; i++) {
    if (i) printf("\n");
    rc = print_metadata(paths[i], show_config);
    if (rc == SR_OK) rc = sr_checkpoint_read_tensors(paths[i], &tensors[i]);
    if (rc == SR_OK) print_tensor_stats(paths[i], &tensors[i]);
  }
  if (rc == SR_OK && n_paths == 2) print_diff(paths[0], &tensors[0], paths[1], &tensors[1]);
  fflush(stdout);
  sr_params_free(&tensors[0]);
  sr_params_free(&tensors[1]);
  return rc;
}

int sr_cmd_inspect(int argc, char **argv) {
  static const struct option options[] = {
      {"config", no_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  int show_config = 0, opt;
  optind = 1;
  while ((opt = sr_cli_getopt("inspect", argc, argv, "h", options, NULL)) != -1) {
    if (opt == 'c') {
      show_config = 1;
      continue;
    }
    if (opt == 'h') inspect_usage(stdout);
    return opt == 'h' ? 0 : SR_CLI_EXIT_USAGE;
  }
  int n_paths = argc - optind;
  if (n_paths < 1 || n_paths > 2) {
    inspect_usage(stderr);
    return SR_CLI_EXIT_USAGE;
  }
  return inspect(argv + optind, n_paths, show_config) == SR_OK ? 0 : sr_cmd_report_error();
}

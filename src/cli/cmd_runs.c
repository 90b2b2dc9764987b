/* cmd_runs.c — `shardrec runs DIR...`: a table comparing training runs
 * (their config.yaml and metrics.jsonl), the seeds of one config grouped. */
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "shardrec/error.h"
#include "shardrec/fsutil.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"

typedef enum { FORMAT_TABLE, FORMAT_CSV, FORMAT_MD, FORMAT_JSON } runs_format;

/* Mean and sample standard deviation over the runs of a row that have the value. */
typedef struct {
  int n;
  double mean, sd; /* NAN when no run (sd: fewer than two) has it */
} runs_stat;

/* One row of the table: a configuration and its runs. */
typedef struct {
  char name[SR_PATH_MAX], model[16], config[1024], seeds[256];
  int runs, unfinished;
  runs_stat epochs, train_s, best, final, test;
} runs_row;

/* What a run directory says about its run. */
typedef struct {
  char dir[SR_PATH_MAX], name[SR_PATH_MAX];
  sr_config cfg;
  char *changes; /* "key: value" lines of its config that differ from the defaults (per-run keys left out) */
  int finished;  /* it wrote its test record */
  int64_t epochs;
  double train_s;
  double best, final, test; /* of the compared metric; NAN when absent */
  int64_t best_epoch;
} run_summary;

/* Keys that tell runs of one config apart, or only how they ran: left out of
 * "key config differences"; run.seed is what groups a config's runs. */
static int per_run_key(const char *line) {
  static const char *const keys[] = {
      "run.name:", "run.out_dir:", "run.seed:", "run.log_", "run.threads:", "checkpoint."};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (strncmp(line, keys[i], strlen(keys[i])) == 0) return 1;
  return 0;
}

static char *config_changes(const sr_config *cfg) {
  sr_config defaults;
  sr_config_defaults(&defaults);
  char *all = sr_config_changes(cfg, &defaults, "\n", NULL);
  size_t used = 0;
  for (char *line = all, *next; *line; line = next) {
    next = line + strcspn(line, "\n");
    const size_t len = (size_t)(next - line);
    if (*next) next++;
    if (per_run_key(line)) continue;
    memmove(all + used, line, len);
    used += len;
    all[used++] = '\n';
  }
  all[used] = '\0';
  return all;
}

/* The record's value of metric: "recall@50", or "SLICE/recall@50" for an
 * evaluation slice (eval.slices: head, torso, tail, cold); NAN when absent. */
static double metric_of(const json_t *r, const char *metric) {
  const char *slash = strchr(metric, '/');
  if (slash) {
    char slice[64];
    snprintf(slice, sizeof slice, "%.*s", (int)(slash - metric), metric);
    r = json_object_get(json_object_get(r, "slices"), slice);
    metric = slash + 1;
  }
  const json_t *v = json_object_get(r, metric);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Reads the run in dir; *found 0 when dir holds no run. */
static int read_run(const char *dir, const char *name, const char *metric_arg, run_summary *r, int *found) {
  char path[SR_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
  FILE *f = fopen(path, "r");
  *found = f != NULL;
  if (!f) return SR_OK;
  memset(r, 0, sizeof *r);
  snprintf(r->dir, sizeof r->dir, "%s", dir);
  snprintf(r->name, sizeof r->name, "%s", name);
  r->best = r->final = r->test = NAN;
  snprintf(path, sizeof path, "%s/config.yaml", dir);
  sr_config_defaults(&r->cfg);
  int rc = sr_config_load_file(&r->cfg, path);
  if (rc != SR_OK) {
    fclose(f);
    return rc;
  }
  r->changes = config_changes(&r->cfg);
  const char *metric = metric_arg ? metric_arg : r->cfg.train.select_metric;
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    json_t *rec = json_loads(line, 0, NULL);
    const char *type = json_string_value(json_object_get(rec, "type"));
    if (type && !json_is_true(json_object_get(rec, "superseded"))) {
      const json_t *t = json_object_get(rec, "total_train_s");
      if (json_is_number(t)) r->train_s = json_number_value(t);
      const int64_t epoch = json_integer_value(json_object_get(rec, "epoch"));
      if (strcmp(type, "epoch") == 0 && epoch > r->epochs) r->epochs = epoch;
      if (strcmp(type, "valid") == 0) {
        r->final = metric_of(rec, metric);
        if (isnan(r->best) || r->final > r->best) {
          r->best = r->final;
          r->best_epoch = epoch;
        }
      }
      if (strcmp(type, "test") == 0) {
        r->test = metric_of(rec, metric);
        r->finished = 1;
      }
    }
    json_decref(rec);
  }
  free(line);
  fclose(f);
  return SR_OK;
}

typedef struct {
  run_summary *items;
  size_t n, cap;
  const char *metric;
} run_list;

/* Whether c ends a part of a run name: a separator or the end. */
static int ends_a_part(char c) { return c == '\0' || strchr("_-,/", c) != NULL; }

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* dir itself when it holds a run, else the runs below it (sorted, 3 levels
 * deep: out_dir/sweep/run). */
static int collect(run_list *l, const char *dir, const char *name, int depth) {
  int found = 0;
  sr_grow(&l->items, &l->cap, l->n + 1);
  SR_TRY(read_run(dir, name, l->metric, &l->items[l->n], &found));
  if (found) {
    l->n++;
    return SR_OK;
  }
  if (depth == 0) return SR_OK;
  DIR *d = opendir(dir);
  if (!d) return SR_OK;
  char **subdirs = NULL;
  size_t n = 0, cap = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.') continue;
    sr_grow(&subdirs, &cap, n + 1);
    subdirs[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(subdirs, n, sizeof *subdirs, cmp_names);
  int rc = SR_OK;
  for (size_t i = 0; i < n; i++) {
    char sub[SR_PATH_MAX], sub_name[SR_PATH_MAX];
    snprintf(sub, sizeof sub, "%s/%s", dir, subdirs[i]);
    snprintf(sub_name, sizeof sub_name, "%s%s%s", name, name[0] ? "/" : "", subdirs[i]);
    struct stat st;
    if (rc == SR_OK && stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) rc = collect(l, sub, sub_name, depth - 1);
    free(subdirs[i]);
  }
  free(subdirs);
  return rc;
}

/* Whether the "key: value" lines `changes` hold this line. */
static int has_line(const char *changes, const char *line) {
  const size_t len = strlen(line);
  for (const char *at = changes; (at = strstr(at, line)) != NULL; at++)
    if ((at == changes || at[-1] == '\n') && (at[len] == '\n' || !at[len])) return 1;
  return 0;
}

/* The keys whose values differ between the runs ("key: value" lines that
 * some run lacks), as "key1\nkey2\n" (malloc'd). */
static char *varying_keys(const run_list *l) {
  size_t cap = 256, used = 0;
  char *keys = sr_malloc(cap);
  keys[0] = '\0';
  for (size_t r = 0; r < l->n; r++)
    for (const char *line = l->items[r].changes; *line;) {
      const size_t len = strcspn(line, "\n"), key_len = strcspn(line, ":");
      char text[512], key[256];
      snprintf(text, sizeof text, "%.*s", (int)len, line);
      snprintf(key, sizeof key, "%.*s", (int)key_len, line);
      int everywhere = 1;
      for (size_t i = 0; i < l->n && everywhere; i++) everywhere = has_line(l->items[i].changes, text);
      if (!everywhere && !has_line(keys, key)) {
        sr_grow(&keys, &cap, used + strlen(key) + 2);
        used += (size_t)sprintf(keys + used, "%s\n", key);
      }
      line += len + (line[len] ? 1 : 0);
    }
  return keys;
}

/* "key=value" of each varying key in this run's config ("-": none vary). */
static void distinguishing(const char *keys, const sr_config *cfg, char *out, size_t n) {
  size_t used = 0;
  out[0] = '\0';
  for (const char *key = keys; *key;) {
    const size_t len = strcspn(key, "\n");
    char path[256], value[512];
    snprintf(path, sizeof path, "%.*s", (int)len, key);
    if (sr_config_format_value(cfg, path, value, sizeof value) == SR_OK && used < n)
      used += (size_t)snprintf(out + used, n - used, "%s%s=%s", used ? " " : "", path, value);
    key += len + 1;
  }
  if (!out[0]) snprintf(out, n, "-");
}

static void summarize(double *v, int n, runs_stat *s) {
  int count = 0;
  double sum = 0, sq = 0;
  for (int i = 0; i < n; i++)
    if (!isnan(v[i])) {
      count++;
      sum += v[i];
    }
  s->n = count;
  s->mean = count ? sum / count : NAN;
  for (int i = 0; i < n; i++)
    if (!isnan(v[i])) sq += (v[i] - s->mean) * (v[i] - s->mean);
  s->sd = count > 1 ? sqrt(sq / (count - 1)) : NAN; /* sample standard deviation */
}

/* Groups the runs that differ only in per-run keys (seeds) into rows. */
static void group_rows(const run_list *l, runs_row **rows_out, int *n_rows) {
  runs_row *rows = sr_calloc(l->n ? l->n : 1, sizeof *rows);
  int *group = sr_calloc(l->n ? l->n : 1, sizeof *group), n = 0;
  for (size_t i = 0; i < l->n; i++) {
    group[i] = -1;
    for (size_t j = 0; j < i && group[i] < 0; j++)
      if (l->items[i].cfg.model.type == l->items[j].cfg.model.type &&
          strcmp(l->items[i].changes, l->items[j].changes) == 0)
        group[i] = group[j];
    if (group[i] < 0) group[i] = n++;
  }
  char *keys = varying_keys(l);
  double *v[5];
  for (int k = 0; k < 5; k++) v[k] = sr_malloc((l->n ? l->n : 1) * sizeof(double));
  for (int g = 0; g < n; g++) {
    runs_row *row = &rows[g];
    int m = 0;
    size_t used = 0;
    for (size_t i = 0; i < l->n; i++) {
      if (group[i] != g) continue;
      const run_summary *r = &l->items[i];
      if (m == 0) {
        snprintf(row->name, sizeof row->name, "%s", r->name);
        snprintf(row->model, sizeof row->model, "%s", sr_model_type_names[r->cfg.model.type]);
        distinguishing(keys, &r->cfg, row->config, sizeof row->config);
      } else { /* the names' common part, cut at a separator ("lr=1e-3_seed1", "lr=1e-3_seed2": "lr=1e-3") */
        size_t k = 0;
        while (row->name[k] && row->name[k] == r->name[k]) k++;
        if (k > 0 && ends_a_part(row->name[k]) && ends_a_part(r->name[k])) {
          row->name[k] = '\0'; /* already whole parts: "lr=1e-3" of a third seed's "lr=1e-3_seed3" */
        } else {
          while (k > 0 && !ends_a_part(row->name[k - 1])) k--;
          if (k > 1) row->name[k - 1] = '\0';
        }
      }
      used += (size_t)snprintf(row->seeds + used, used < sizeof row->seeds ? sizeof row->seeds - used : 0, "%s%lld",
                               m ? "," : "", (long long)r->cfg.run.seed);
      row->unfinished += !r->finished;
      v[0][m] = r->best;
      v[1][m] = r->final;
      v[2][m] = r->test;
      v[3][m] = (double)r->epochs;
      v[4][m] = r->train_s;
      m++;
    }
    row->runs = m;
    summarize(v[0], m, &row->best);
    summarize(v[1], m, &row->final);
    summarize(v[2], m, &row->test);
    summarize(v[3], m, &row->epochs);
    summarize(v[4], m, &row->train_s);
  }
  for (int k = 0; k < 5; k++) free(v[k]);
  free(keys);
  free(group);
  *rows_out = rows;
  *n_rows = n;
}

/* ---- output ---------------------------------------------------------------------- */

static int parse_format(const char *s, runs_format *f) {
  static const char *const names[] = {"table", "csv", "md", "json"};
  for (int i = 0; i < 4; i++)
    if (strcmp(s, names[i]) == 0) {
      *f = (runs_format)i;
      return 1;
    }
  return 0;
}

/* "0.4215 ± 0.0031" (sd over two or more runs), "0.4215", or "-". */
static void format_stat(const runs_stat *s, const char *number, char *buf, size_t n) {
  char mean[32], sd[32];
  if (s->n == 0) {
    snprintf(buf, n, "-");
    return;
  }
  snprintf(mean, sizeof mean, number, s->mean);
  if (s->n < 2) {
    snprintf(buf, n, "%s", mean);
    return;
  }
  snprintf(sd, sizeof sd, number, s->sd);
  snprintf(buf, n, "%s \u00b1 %s", mean, sd);
}

#define N_COLUMNS 9

/* The text of each cell of a row (table and md formats). */
static void cells_of(const runs_row *r, char cells[N_COLUMNS][1100]) {
  snprintf(cells[0], 1100, "%s%s", r->name, r->unfinished ? " (unfinished)" : "");
  snprintf(cells[1], 1100, "%s", r->model);
  snprintf(cells[2], 1100, "%s", r->config);
  snprintf(cells[3], 1100, "%s", r->seeds);
  format_stat(&r->epochs, "%.0f", cells[4], 1100);
  format_stat(&r->train_s, "%.1f", cells[5], 1100);
  format_stat(&r->best, "%.4f", cells[6], 1100);
  format_stat(&r->final, "%.4f", cells[7], 1100);
  format_stat(&r->test, "%.4f", cells[8], 1100);
}

/* Columns a UTF-8 string takes on a terminal (one per code point here). */
static int display_width(const char *s) {
  int w = 0;
  for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
  return w;
}

static void print_text(FILE *out, runs_format fmt, const char *metric, const runs_row *rows, int n) {
  char header[N_COLUMNS][1100] = {"run", "model", "config", "seeds", "epochs", "train s"};
  snprintf(header[6], 1100, "best %s", metric);
  snprintf(header[7], 1100, "final %s", metric);
  snprintf(header[8], 1100, "test %s", metric);
  char(*cells)[N_COLUMNS][1100] = sr_malloc((size_t)(n + 1) * sizeof *cells);
  memcpy(cells[0], header, sizeof header);
  for (int i = 0; i < n; i++) cells_of(&rows[i], cells[i + 1]);
  int width[N_COLUMNS] = {0};
  for (int i = 0; i <= n; i++)
    for (int c = 0; c < N_COLUMNS; c++)
      if (display_width(cells[i][c]) > width[c]) width[c] = display_width(cells[i][c]);
  for (int i = 0; i <= n; i++) {
    for (int c = 0; c < N_COLUMNS; c++) {
      const int pad = width[c] - display_width(cells[i][c]);
      if (fmt == FORMAT_MD)
        fprintf(out, "| %s%*s ", cells[i][c], pad, "");
      else
        fprintf(out, "%s%*s%s", cells[i][c], c + 1 < N_COLUMNS ? pad : 0, "", c + 1 < N_COLUMNS ? "  " : "");
    }
    fprintf(out, fmt == FORMAT_MD ? "|\n" : "\n");
    if (i == 0 && fmt == FORMAT_MD) { /* numbers right-aligned */
      for (int c = 0; c < N_COLUMNS; c++) {
        fprintf(out, "|");
        for (int k = 0; k < width[c] + 1; k++) fputc('-', out);
        fputc(c >= 4 ? ':' : '-', out);
      }
      fprintf(out, "|\n");
    }
  }
  free(cells);
}

/* A CSV field, quoted when it holds a comma, a quote or a space. */
static void csv_field(FILE *out, const char *s, int last) {
  if (strpbrk(s, ",\" ")) {
    fputc('"', out);
    for (; *s; s++) fprintf(out, *s == '"' ? "\"\"" : "%c", *s);
    fputc('"', out);
  } else {
    fputs(s, out);
  }
  fputc(last ? '\n' : ',', out);
}

static void csv_number(FILE *out, double v, int last) {
  if (!isnan(v)) fprintf(out, "%.10g", v); /* empty: no value */
  fputc(last ? '\n' : ',', out);
}

static void print_csv(FILE *out, const runs_row *rows, int n) {
  fprintf(out,
          "run,model,config,seeds,runs,unfinished,epochs,epochs_sd,train_s,train_s_sd,best,best_sd,final,"
          "final_sd,test,test_sd\n");
  for (int i = 0; i < n; i++) {
    const runs_row *r = &rows[i];
    csv_field(out, r->name, 0);
    csv_field(out, r->model, 0);
    csv_field(out, r->config, 0);
    csv_field(out, r->seeds, 0);
    fprintf(out, "%d,%d,", r->runs, r->unfinished);
    const runs_stat *stats[5] = {&r->epochs, &r->train_s, &r->best, &r->final, &r->test};
    for (int k = 0; k < 5; k++) {
      csv_number(out, stats[k]->mean, 0);
      csv_number(out, stats[k]->sd, k == 4);
    }
  }
}

static json_t *json_stat(const runs_stat *s) {
  return json_pack("{s:o, s:o, s:i}", "mean", isnan(s->mean) ? json_null() : json_real(s->mean), "sd",
                   isnan(s->sd) ? json_null() : json_real(s->sd), "n", s->n);
}

static void print_json(FILE *out, const char *metric, const runs_row *rows, int n) {
  json_t *all = json_array();
  for (int i = 0; i < n; i++) {
    const runs_row *r = &rows[i];
    json_t *seeds = json_array();
    for (const char *s = r->seeds; *s; s += strcspn(s, ",") + (s[strcspn(s, ",")] ? 1 : 0))
      json_array_append_new(seeds, json_integer(strtoll(s, NULL, 10)));
    json_array_append_new(
        all, json_pack("{s:s, s:s, s:s, s:s, s:o, s:i, s:i, s:o, s:o, s:o, s:o, s:o}", "run", r->name, "model",
                       r->model, "config", r->config, "metric", metric, "seeds", seeds, "runs", r->runs, "unfinished",
                       r->unfinished, "epochs", json_stat(&r->epochs), "train_s", json_stat(&r->train_s), "best",
                       json_stat(&r->best), "final", json_stat(&r->final), "test", json_stat(&r->test)));
  }
  json_dumpf(all, out, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
  fputc('\n', out);
  json_decref(all);
}

static void print_rows(FILE *out, runs_format fmt, const char *metric, const runs_row *rows, int n) {
  if (fmt == FORMAT_CSV)
    print_csv(out, rows, n);
  else if (fmt == FORMAT_JSON)
    print_json(out, metric, rows, n);
  else
    print_text(out, fmt, metric, rows, n);
  fflush(out);
}

int sr_cli_run_finished(const char *dir) {
  run_summary r;
  int found = 0;
  const int rc = read_run(dir, "", NULL, &r, &found);
  if (found && rc == SR_OK) free(r.changes);
  return found && rc == SR_OK && r.finished;
}

/* The table of the runs in or below dirs[0..n). */
static int print_runs(char *const *dirs, int n, const char *metric, runs_format fmt) {
  run_list l = {.metric = metric};
  int rc = SR_OK;
  for (int i = 0; i < n && rc == SR_OK; i++) {
    const size_t before = l.n;
    const char *base = strrchr(dirs[i], '/');
    rc = collect(&l, dirs[i], "", 3);
    if (rc == SR_OK && l.n == before + 1 && !l.items[before].name[0]) /* DIR is a run: named by its last component */
      snprintf(l.items[before].name, sizeof l.items[before].name, "%s", base && base[1] ? base + 1 : dirs[i]);
    if (rc == SR_OK && l.n == before)
      rc = SR_FAIL(SR_EINVAL, "%s: no run there (no metrics.jsonl in it or below)", dirs[i]);
  }
  if (rc == SR_OK) {
    runs_row *rows;
    int n_rows;
    group_rows(&l, &rows, &n_rows);
    char metric[80];
    snprintf(metric, sizeof metric, "%s", l.metric ? l.metric : l.items[0].cfg.train.select_metric);
    print_rows(stdout, fmt, metric, rows, n_rows);
    free(rows);
  }
  for (size_t i = 0; i < l.n; i++) free(l.items[i].changes);
  free(l.items);
  return rc ? sr_cmd_report_error() : 0;
}

int sr_cli_print_runs(const char *dir, const char *format) {
  runs_format fmt;
  if (!parse_format(format, &fmt))
    return sr_cli_usage_error("runs", "--format %s: expected table, csv, md or json", format);
  char *dirs[1] = {(char *)dir};
  return print_runs(dirs, 1, NULL, fmt);
}

static void runs_usage(FILE *out) {
  fprintf(out,
          "usage: shardrec runs DIR... [--format table|csv|md|json] [--metric NAME]\n"
          "\n"
          "Compares training runs: each DIR is a run directory (it holds metrics.jsonl and\n"
          "config.yaml) or a directory with runs below it (e.g. runs/, or a sweep's\n"
          "directory). One row per configuration: its model, the config keys that tell it\n"
          "from the other rows, the run.seed values of its runs, and over those runs the\n"
          "mean +- sample standard deviation of the epochs trained, the training time, the\n"
          "best and final validation value and the test value of the metric (default: each\n"
          "run's train.select_metric; SLICE/NAME, e.g. tail/recall@50, for an evaluation\n"
          "slice of eval.slices). Records a resume superseded are skipped; a row with\n"
          "unfinished runs (no test record yet) is marked.\n");
}

int sr_cmd_runs(int argc, char **argv) {
  static const struct option longopts[] = {{"format", required_argument, NULL, 'f'},
                                           {"metric", required_argument, NULL, 'm'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  const char *format = "table", *metric = NULL;
  optind = 1;
  for (int opt; (opt = getopt_long(argc, argv, "f:m:h", longopts, NULL)) != -1;) {
    if (opt == 'f') {
      format = optarg;
    } else if (opt == 'm') {
      metric = optarg;
    } else {
      runs_usage(opt == 'h' ? stdout : stderr);
      return opt == 'h' ? 0 : SR_CLI_EXIT_USAGE;
    }
  }
  runs_format fmt;
  if (!parse_format(format, &fmt))
    return sr_cli_usage_error("runs", "--format %s: expected table, csv, md or json", format);
  if (optind >= argc) {
    runs_usage(stderr);
    return SR_CLI_EXIT_USAGE;
  }
  return print_runs(argv + optind, argc - optind, metric, fmt);
}

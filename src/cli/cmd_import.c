/* cmd_import.c — `shardrec data import`: public recommender logs into a dataset file (import.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "shardrec/error.h"
#include "shardrec/fsutil.h"
#include "shardrec/import.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"

static void import_usage(FILE *out) {
  fprintf(out,
          "usage: shardrec data import [--format F] -o OUT.h5 INPUT... [options]\n"
          "\n"
          "Imports a public interaction log, preprocesses and splits it, and writes a\n"
          "dataset file (raw ids in /ids, the options and counts in /import).\n"
          "\n"
          "input:\n"
          "  -o, --output FILE          dataset to write (required; written atomically)\n"
          "      --format F             movielens, netflix, msd, lightgcn, csv, multvae, recbole (default:\n"
          "                             from the names: u.data, ratings.dat, ratings.csv, combined_data_*.txt,\n"
          "                             *triplets*, train.txt test.txt, *.csv, *.tsv, *.inter, a directory\n"
          "                             with unique_sid.txt)\n"
          "      --movies FILE          MovieLens movies.dat / movies.csv: item features (movielens, csv)\n"
          "      --users FILE           MovieLens ml-1m users.dat: user features (movielens, csv)\n"
          "      --columns SPEC         csv: user=0,item=1[,rating=2][,timestamp=3] (0-based numbers,\n"
          "                             or names with --header; weight= is rating=)\n"
          "      --header               csv: the first line names the columns\n"
          "      --delimiter D          csv: ',' (default; tab for *.tsv), 'tab', 'space' (runs of blanks)\n"
          "                             or any string such as '::'\n"
          "      --string-ids           csv: ids are strings, not integers\n"
          "      --skip-bad-lines       count and skip malformed lines instead of failing\n"
          "preprocessing (defaults depend on the format, see datasets/README.md):\n"
          "      --min-rating X|none    keep lines with rating >= X (movielens, netflix: 4)\n"
          "      --min-user-items N     keep users with >= N items (movielens, netflix: 5; msd: 20)\n"
          "      --min-item-users N     keep items with >= N users (msd: 200)\n"
          "      --iterate-min-counts   repeat both filters until stable (default: once, items first)\n"
          "      --duplicates P         last, first, max, sum, error (default last)\n"
          "      --keep-values          store ratings / play counts as values (default: binary)\n"
          "split:\n"
          "      --protocol P           strong (held-out users; default) or weak (same users;\n"
          "                             default for lightgcn)\n"
          "      --heldout-users N      strong: users in each of validation and test (default 10%%)\n"
          "      --holdout H            weak: random (default), temporal, given (lightgcn)\n"
          "      --heldout-fraction F   held-out share of an evaluation row (default 0.2)\n"
          "      --validation-fraction F  given: share of each user's training items drawn for\n"
          "                             validation (default 0: train on the whole training file)\n"
          "      --heldout-min-items N  rows with fewer items hold nothing out (default 5)\n"
          "      --cold-items F         hold this share of the items out of training entirely:\n"
          "                             cold-start items, evaluated by their features (default 0)\n"
          "      --seed S               split seed (default 98765)\n"
          "      --compression C        zstd (default), gzip or none; zstd:LEVEL (1..22, default 3),\n"
          "                             gzip:LEVEL (1..9, default 4) (docs/compression.md)\n"
          "  -h, --help                 this help\n");
}

enum {
  OPT_FORMAT = 256,
  OPT_MOVIES,
  OPT_USERS,
  OPT_COLUMNS,
  OPT_HEADER,
  OPT_DELIMITER,
  OPT_STRING_IDS,
  OPT_SKIP,
  OPT_MIN_RATING,
  OPT_MIN_USER_ITEMS,
  OPT_MIN_ITEM_USERS,
  OPT_ITERATE,
  OPT_DUPLICATES,
  OPT_KEEP_VALUES,
  OPT_PROTOCOL,
  OPT_HELDOUT_USERS,
  OPT_HOLDOUT,
  OPT_HELDOUT_FRACTION,
  OPT_VALIDATION_FRACTION,
  OPT_HELDOUT_MIN_ITEMS,
  OPT_SEED,
  OPT_COMPRESSION,
  OPT_COLD_ITEMS
};

static const struct option import_options[] = {
    {"output", required_argument, NULL, 'o'},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"movies", required_argument, NULL, OPT_MOVIES},
    {"users", required_argument, NULL, OPT_USERS},
    {"columns", required_argument, NULL, OPT_COLUMNS},
    {"header", no_argument, NULL, OPT_HEADER},
    {"delimiter", required_argument, NULL, OPT_DELIMITER},
    {"string-ids", no_argument, NULL, OPT_STRING_IDS},
    {"skip-bad-lines", no_argument, NULL, OPT_SKIP},
    {"min-rating", required_argument, NULL, OPT_MIN_RATING},
    {"min-user-items", required_argument, NULL, OPT_MIN_USER_ITEMS},
    {"min-item-users", required_argument, NULL, OPT_MIN_ITEM_USERS},
    {"iterate-min-counts", no_argument, NULL, OPT_ITERATE},
    {"duplicates", required_argument, NULL, OPT_DUPLICATES},
    {"keep-values", no_argument, NULL, OPT_KEEP_VALUES},
    {"protocol", required_argument, NULL, OPT_PROTOCOL},
    {"heldout-users", required_argument, NULL, OPT_HELDOUT_USERS},
    {"holdout", required_argument, NULL, OPT_HOLDOUT},
    {"heldout-fraction", required_argument, NULL, OPT_HELDOUT_FRACTION},
    {"validation-fraction", required_argument, NULL, OPT_VALIDATION_FRACTION},
    {"heldout-min-items", required_argument, NULL, OPT_HELDOUT_MIN_ITEMS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"compression", required_argument, NULL, OPT_COMPRESSION},
    {"cold-items", required_argument, NULL, OPT_COLD_ITEMS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

static int usage_of_error(void) {
  fprintf(stderr, "shardrec data import: %s\n", sr_error_message());
  return SR_CLI_EXIT_USAGE;
}

/* --delimiter: names for the characters a shell makes awkward. */
static const char *delimiter_of(const char *arg) {
  if (strcmp(arg, "tab") == 0 || strcmp(arg, "\\t") == 0) return "\t";
  if (strcmp(arg, "space") == 0 || strcmp(arg, " ") == 0) return " ";
  return arg;
}

/* Names in the order of sr_protocol and sr_holdout. */
static const char *const protocol_names[] = {"strong", "weak"};
static const char *const holdout_names[] = {"random", "temporal", "given"};

/* The index of arg among names[0..n), or -1 after printing a usage error. */
static int choice(const char *opt, const char *arg, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (strcmp(arg, names[i]) == 0) return i;
  sr_cli_usage_error("data", "--%s: unknown value '%s'", opt, arg);
  return -1;
}

/* Applies one option to o (the format's defaults already there); 0 or SR_CLI_EXIT_USAGE. */
static int apply_import_option(sr_import_opts *o, int opt, const char *name, const char *arg) {
  long long v;
  int rc = 0, c;
  switch (opt) {
    case OPT_MOVIES:
      o->movies_path = arg;
      break;
    case OPT_USERS:
      o->users_path = arg;
      break;
    case OPT_COLUMNS:
      o->columns = arg;
      break;
    case OPT_HEADER:
      o->header = 1;
      break;
    case OPT_DELIMITER:
      if (!*arg) return sr_cli_usage_error("data", "--delimiter: empty");
      o->delimiter = delimiter_of(arg);
      break;
    case OPT_STRING_IDS:
      o->string_ids = 1;
      break;
    case OPT_SKIP:
      o->skip_bad_lines = 1;
      break;
    case OPT_MIN_RATING:
      o->has_min_rating = strcmp(arg, "none") != 0;
      if (o->has_min_rating) rc = sr_cli_parse_number("data", name, arg, &o->min_rating);
      break;
    case OPT_MIN_USER_ITEMS:
      if (!(rc = sr_cli_parse_int("data", name, arg, 0, INT32_MAX, &v))) o->min_user_items = v;
      break;
    case OPT_MIN_ITEM_USERS:
      if (!(rc = sr_cli_parse_int("data", name, arg, 0, INT32_MAX, &v))) o->min_item_users = v;
      break;
    case OPT_ITERATE:
      o->iterate_min_counts = 1;
      break;
    case OPT_DUPLICATES:
      if (sr_duplicates_from_name(arg, &o->duplicates) != SR_OK) return usage_of_error();
      break;
    case OPT_KEEP_VALUES:
      o->keep_values = 1;
      break;
    case OPT_PROTOCOL:
      if ((c = choice(name, arg, protocol_names, 2)) < 0) return SR_CLI_EXIT_USAGE;
      o->protocol = (sr_protocol)c;
      break;
    case OPT_HOLDOUT:
      if ((c = choice(name, arg, holdout_names, 3)) < 0) return SR_CLI_EXIT_USAGE;
      o->holdout = (sr_holdout)c;
      break;
    case OPT_HELDOUT_USERS:
      if (!(rc = sr_cli_parse_int("data", name, arg, 1, INT32_MAX, &v))) o->split.n_heldout_users = v;
      break;
    case OPT_HELDOUT_FRACTION:
      rc = sr_cli_parse_number("data", name, arg, &o->split.heldout_fraction);
      break;
    case OPT_COLD_ITEMS:
      rc = sr_cli_parse_number("data", name, arg, &o->split.cold_item_fraction);
      break;
    case OPT_VALIDATION_FRACTION:
      rc = sr_cli_parse_number("data", name, arg, &o->split.validation_fraction);
      break;
    case OPT_HELDOUT_MIN_ITEMS:
      if (!(rc = sr_cli_parse_int("data", name, arg, 1, INT32_MAX, &v))) o->split.min_items_for_heldout = v;
      break;
    case OPT_SEED:
      if (!(rc = sr_cli_parse_int("data", name, arg, 0, INT64_MAX, &v))) o->split.seed = (uint64_t)v;
      break;
    case OPT_COMPRESSION:
      rc = sr_cli_parse_compression("data", name, arg, &o->compression);
      break;
    default:
      rc = SR_CLI_EXIT_USAGE;
  }
  return rc;
}

typedef struct {
  int opt;
  const char *name, *arg;
} given_option;

typedef struct {
  sr_import_opts opts;
  const char *output;
  char *command; /* the command line, recorded in the file */
} import_args;

/* "shardrec data import ARGS..." as one string. */
static char *join_command(int argc, char **argv) {
  size_t len = strlen("shardrec data") + 1;
  for (int i = 0; i < argc; i++) len += strlen(argv[i]) + 1;
  char *s = sr_malloc(len);
  strcpy(s, "shardrec data");
  for (int i = 0; i < argc; i++) strcat(strcat(s, " "), argv[i]);
  return s;
}

/* Two passes: the format (named or detected) decides the defaults, then the
 * other options apply over them in the order given. Returns -1 to go on, else
 * an exit status. */
static int parse_import_args(int argc, char **argv, import_args *a, given_option *given) {
  sr_import_format format = SR_IMPORT_AUTO;
  int n_given = 0, opt, index = 0;
  a->output = NULL;
  optind = 1;
  while ((opt = sr_cli_getopt("data import", argc, argv, "o:h", import_options, &index)) != -1) {
    if (opt == 'h') return import_usage(stdout), 0;
    if (opt == '?') return SR_CLI_EXIT_USAGE;
    if (opt == 'o') a->output = optarg;
    if (opt == OPT_FORMAT && sr_import_format_from_name(optarg, &format) != SR_OK) return usage_of_error();
    if (opt != 'o' && opt != OPT_FORMAT) given[n_given++] = (given_option){opt, import_options[index].name, optarg};
  }
  if (!a->output) return sr_cli_usage_error("data", "import: missing -o FILE");
  if (optind == argc) return sr_cli_usage_error("data", "import: no input file");
  const char *const *inputs = (const char *const *)argv + optind;
  for (int i = optind; i < argc; i++)
    if (sr_same_file(a->output, argv[i]))
      return sr_cli_usage_error("data", "import: the output %s is also an input: it would be overwritten", a->output);
  if (format == SR_IMPORT_AUTO && sr_import_detect_format(inputs, argc - optind, &format) != SR_OK)
    return usage_of_error();
  sr_import_opts_default(&a->opts, format);
  sr_import_set_inputs(&a->opts, inputs, argc - optind);
  int holdout_given = 0, heldout_fraction_given = 0;
  for (int i = 0; i < n_given; i++) {
    if (apply_import_option(&a->opts, given[i].opt, given[i].name, given[i].arg) != 0) return SR_CLI_EXIT_USAGE;
    holdout_given |= given[i].opt == OPT_HOLDOUT;
    heldout_fraction_given |= given[i].opt == OPT_HELDOUT_FRACTION;
  }
  if (heldout_fraction_given && a->opts.protocol == SR_PROTOCOL_WEAK && a->opts.holdout == SR_HOLDOUT_GIVEN)
    return sr_cli_usage_error("data",
                              "import: --heldout-fraction: with --holdout given the test file holds the test items; "
                              "--validation-fraction F draws validation items from the training file");
  const char *side_files[2] = {a->opts.movies_path, a->opts.users_path};
  for (int i = 0; i < 2; i++)
    if (side_files[i] && sr_same_file(a->output, side_files[i]))
      return sr_cli_usage_error("data", "import: the output %s is also an input: it would be overwritten", a->output);
  if (holdout_given && a->opts.protocol != SR_PROTOCOL_WEAK)
    return sr_cli_usage_error("data",
                              "import: --holdout applies to --protocol weak (the strong protocol holds out users)");
  a->command = join_command(argc, argv);
  a->opts.command = a->command;
  return -1;
}

static void print_loaded(const sr_import_opts *o, const sr_import_table *t) {
  const sr_import_stats *s = &t->stats;
  sr_info("read %lld lines, %lld interactions, from %d %s file(s) in %.2f s (%.2f M lines/s)", (long long)s->lines,
          (long long)s->records, o->n_inputs, sr_import_format_name(o->format), s->parse_seconds,
          s->parse_seconds > 0 ? (double)s->lines / s->parse_seconds / 1e6 : 0.0);
  if (s->skipped_lines > 0)
    sr_warn("skipped %lld bad lines (first: %s)", (long long)s->skipped_lines, s->first_skipped);
  sr_info(
      "kept %lld users, %lld items, %lld interactions (%lld below --min-rating, %lld duplicates merged, "
      "%lld users and %lld items removed by the minimum counts in %lld pass(es))",
      (long long)t->full.n_rows, (long long)t->full.n_cols, (long long)t->full.nnz, (long long)s->below_min_rating,
      (long long)s->duplicates, (long long)s->users_removed, (long long)s->items_removed,
      (long long)s->min_count_passes);
}

static void print_written(const char *path, const sr_dataset *d, double split_s, double write_s) {
  sr_info(
      "wrote %s: protocol %s, %lld items; train %lld users / %lld interactions; valid %lld users; test %lld "
      "users (split %.2f s, write %.2f s)",
      path, protocol_names[d->protocol], (long long)d->n_items, (long long)d->train.n_rows, (long long)d->train.nnz,
      (long long)d->valid.n_users, (long long)d->test.n_users, split_s, write_s);
}

static int run_import(const import_args *a) {
  sr_import_table t;
  sr_dataset d;
  sr_dataset_init(&d);
  int rc = sr_import_load(&a->opts, &t);
  if (rc == SR_OK) print_loaded(&a->opts, &t);
  double t0 = sr_now();
  if (rc == SR_OK) rc = sr_import_split(&a->opts, &t, &d);
  double t1 = sr_now();
  if (rc == SR_OK) rc = sr_import_write(&a->opts, &t, &d, a->output);
  if (rc == SR_OK) print_written(a->output, &d, t1 - t0, sr_now() - t1);
  sr_import_table_free(&t);
  sr_dataset_free(&d);
  return rc;
}

int sr_cmd_data_import(int argc, char **argv) {
  import_args a = {0};
  given_option *given = sr_calloc((size_t)argc, sizeof *given);
  int status = parse_import_args(argc, argv, &a, given);
  if (status < 0) {
    int rc = run_import(&a);
    if (rc != SR_OK) sr_cmd_report_error();
    /* Option values the data cannot satisfy (a --min-rating without ratings) are usage errors. */
    status = rc == SR_OK ? 0 : rc == SR_EINVAL ? SR_CLI_EXIT_USAGE : 1;
  }
  free(given);
  free(a.command);
  return status;
}

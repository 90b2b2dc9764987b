/* cmd_data.c — `shardrec data`: create (synth), inspect (info) and check (validate) HDF5
 * datasets; `data import` is in cmd_import.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "shardrec/dataset.h"
#include "shardrec/error.h"
#include "shardrec/log.h"
#include "shardrec/synth.h"

static void usage(FILE *out) {
  sr_synth_opts d;
  sr_synth_opts_default(&d);
  fprintf(
      out,
      "usage: shardrec data synth -o FILE [options]  generate a synthetic dataset, split for strong generalisation\n"
      "       shardrec data import -o FILE INPUT...  import a public dataset (data import --help)\n"
      "       shardrec data info FILE                print a summary of a dataset\n"
      "       shardrec data validate FILE            check every invariant of a dataset (exit 1 if bad)\n"
      "\n"
      "synth options:\n"
      "  -o, --output FILE     dataset to write (required)\n"
      "      --users N         users (default %lld)\n"
      "      --items N         items (default %lld)\n"
      "      --factors K       planted latent factors (default %d)\n"
      "      --mean-items X    mean clicks per user, >= 5 (default %g)\n"
      "      --skew S          Zipf exponent of item popularity, 0 = flat (default %g)\n"
      "      --temperature T   lower = users follow their factors more strictly (default %g)\n"
      "      --heldout N       users in each of validation and test (default 10%% of users)\n"
      "      --seed S          seed of the data and of the split (default %llu)\n"
      "      --no-features     do not generate item features\n"
      "      --causal-features item features determine the item factors (the long-tail benchmark):\n"
      "      --informative-features N  features that make the factors (default %d)\n"
      "      --noise-features N        features unrelated to anything (default %d)\n"
      "      --feature-values V        values of each such feature (default %d)\n"
      "      --factor-noise R          share of factor variance no feature explains (default %g)\n"
      "      --cold-items F    hold this share of the items out of training entirely (cold-start\n"
      "                        items: held-out items of evaluation rows only; default 0)\n"
      "      --compression C   zstd (default), gzip or none; zstd:LEVEL, gzip:LEVEL\n"
      "  -h, --help            this help\n"
      "\nThe file format is described in datasets/README.md.\n",
      (long long)d.n_users, (long long)d.n_items, d.n_factors, d.mean_items_per_user, d.popularity_skew,
      d.temperature, (unsigned long long)d.seed, d.n_informative_features, d.n_noise_features, d.feature_values,
      d.factor_noise);
}

typedef struct {
  sr_synth_opts synth;
  double cold_items; /* sr_split_opts.cold_item_fraction */
  long long heldout; /* -1 = 10% of users */
  sr_h5_compression compression;
  const char *output;
} synth_args;

enum {
  OPT_USERS = 256,
  OPT_ITEMS,
  OPT_FACTORS,
  OPT_MEAN,
  OPT_SKEW,
  OPT_TEMPERATURE,
  OPT_HELDOUT,
  OPT_SEED,
  OPT_NO_FEATURES,
  OPT_COMPRESSION,
  OPT_CAUSAL,
  OPT_INFORMATIVE,
  OPT_NOISE_FEATURES,
  OPT_FEATURE_VALUES,
  OPT_FACTOR_NOISE,
  OPT_COLD_ITEMS
};

/* One option of `data synth`; returns 0 or SR_CLI_EXIT_USAGE. */
static int apply_synth_option(synth_args *a, int opt, const char *name, const char *arg) {
  long long v;
  int rc = 0;
  switch (opt) {
    case 'o':
      a->output = arg;
      break;
    case OPT_USERS:
      if (!(rc = sr_cli_parse_int("data", name, arg, 1, INT32_MAX, &v))) a->synth.n_users = v;
      break;
    case OPT_ITEMS:
      if (!(rc = sr_cli_parse_int("data", name, arg, 1, INT32_MAX, &v))) a->synth.n_items = v;
      break;
    case OPT_FACTORS:
      if (!(rc = sr_cli_parse_int("data", name, arg, 1, 1024, &v))) a->synth.n_factors = (int)v;
      break;
    case OPT_MEAN:
      rc = sr_cli_parse_number("data", name, arg, &a->synth.mean_items_per_user);
      break;
    case OPT_SKEW:
      rc = sr_cli_parse_number("data", name, arg, &a->synth.popularity_skew);
      break;
    case OPT_TEMPERATURE:
      rc = sr_cli_parse_number("data", name, arg, &a->synth.temperature);
      break;
    case OPT_HELDOUT:
      rc = sr_cli_parse_int("data", name, arg, 1, INT32_MAX, &a->heldout);
      break;
    case OPT_SEED:
      if (!(rc = sr_cli_parse_int("data", name, arg, 0, INT64_MAX, &v))) a->synth.seed = (uint64_t)v;
      break;
    case OPT_NO_FEATURES:
      a->synth.with_item_features = 0;
      break;
    case OPT_COMPRESSION:
      rc = sr_cli_parse_compression("data", name, arg, &a->compression);
      break;
    case OPT_CAUSAL:
      a->synth.causal_features = 1;
      break;
    case OPT_INFORMATIVE:
      if (!(rc = sr_cli_parse_int("data", name, arg, 1, 16, &v))) a->synth.n_informative_features = (int)v;
      break;
    case OPT_NOISE_FEATURES:
      if (!(rc = sr_cli_parse_int("data", name, arg, 0, 16, &v))) a->synth.n_noise_features = (int)v;
      break;
    case OPT_FEATURE_VALUES:
      if (!(rc = sr_cli_parse_int("data", name, arg, 3, 1000000, &v))) a->synth.feature_values = (int)v;
      break;
    case OPT_FACTOR_NOISE:
      rc = sr_cli_parse_number("data", name, arg, &a->synth.factor_noise);
      break;
    case OPT_COLD_ITEMS:
      rc = sr_cli_parse_number("data", name, arg, &a->cold_items);
      break;
    default:
      rc = SR_CLI_EXIT_USAGE;
  }
  return rc;
}

static const struct option synth_options[] = {{"output", required_argument, NULL, 'o'},
                                              {"users", required_argument, NULL, OPT_USERS},
                                              {"items", required_argument, NULL, OPT_ITEMS},
                                              {"factors", required_argument, NULL, OPT_FACTORS},
                                              {"mean-items", required_argument, NULL, OPT_MEAN},
                                              {"skew", required_argument, NULL, OPT_SKEW},
                                              {"temperature", required_argument, NULL, OPT_TEMPERATURE},
                                              {"heldout", required_argument, NULL, OPT_HELDOUT},
                                              {"seed", required_argument, NULL, OPT_SEED},
                                              {"no-features", no_argument, NULL, OPT_NO_FEATURES},
                                              {"compression", required_argument, NULL, OPT_COMPRESSION},
                                              {"causal-features", no_argument, NULL, OPT_CAUSAL},
                                              {"informative-features", required_argument, NULL, OPT_INFORMATIVE},
                                              {"noise-features", required_argument, NULL, OPT_NOISE_FEATURES},
                                              {"feature-values", required_argument, NULL, OPT_FEATURE_VALUES},
                                              {"factor-noise", required_argument, NULL, OPT_FACTOR_NOISE},
                                              {"cold-items", required_argument, NULL, OPT_COLD_ITEMS},
                                              {"help", no_argument, NULL, 'h'},
                                              {NULL, 0, NULL, 0}};

/* Parses argv of `data synth` (argv[0] = "synth"). Returns -1 to go on, else an exit status. */
static int parse_synth_args(int argc, char **argv, synth_args *a) {
  sr_synth_opts_default(&a->synth);
  a->heldout = -1;
  a->cold_items = 0.0;
  a->compression = sr_h5_compression_of(SR_H5_ZSTD);
  a->output = NULL;
  optind = 1;
  int opt, index = 0;
  while ((opt = sr_cli_getopt("data synth", argc, argv, "o:h", synth_options, &index)) != -1) {
    if (opt == 'h') return usage(stdout), 0;
    if (opt == '?') return SR_CLI_EXIT_USAGE;
    const char *name = opt == 'o' ? "output" : synth_options[index].name;
    if (apply_synth_option(a, opt, name, optarg) != 0) return SR_CLI_EXIT_USAGE;
  }
  if (optind < argc) return sr_cli_usage_error("data", "synth: unexpected argument '%s'", argv[optind]);
  if (!a->output) return sr_cli_usage_error("data", "synth: missing -o FILE");
  if (a->heldout < 0) a->heldout = a->synth.n_users / 10;
  return -1;
}

static int run_synth(int argc, char **argv) {
  synth_args a;
  int status = parse_synth_args(argc, argv, &a);
  if (status >= 0) return status;
  double t0 = sr_now();
  sr_csr full;
  sr_feature *features = NULL;
  int n_features = 0;
  sr_dataset d;
  sr_dataset_init(&d);
  sr_split_opts split;
  sr_split_opts_default(&split);
  split.n_heldout_users = a.heldout;
  split.seed = a.synth.seed;
  split.cold_item_fraction = a.cold_items;
  int rc = sr_synth_generate(&a.synth, &full, &features, &n_features);
  double t1 = sr_now();
  if (rc == SR_OK) rc = sr_split_strong(&full, features, n_features, &split, &d, NULL);
  double t2 = sr_now();
  if (rc == SR_OK) rc = sr_dataset_write(a.output, &d, a.compression);
  double t3 = sr_now();
  if (rc == SR_OK)
    sr_info(
        "wrote %s: %lld users, %lld items (%lld cold-start), %lld training interactions (generate %.2f s, "
        "split %.2f s, write %.2f s)",
        a.output, (long long)d.n_users, (long long)d.n_items, (long long)d.n_cold_items, (long long)d.train.nnz,
        t1 - t0, t2 - t1, t3 - t2);
  sr_csr_free(&full);
  for (int i = 0; i < n_features; i++) sr_csr_free(&features[i].values);
  free(features);
  sr_dataset_free(&d);
  if (rc == SR_OK) return 0;
  sr_cmd_report_error();
  return rc == SR_EINVAL ? SR_CLI_EXIT_USAGE : 1; /* out-of-range option values are usage errors */
}

static const char info_help[] =
    "usage: shardrec data info FILE\n"
    "\n"
    "Prints a summary of a dataset: protocol, users and items, the interactions of\n"
    "each split and the item and user features with their vocabulary sizes.\n"
    "FILE is relative to the working directory. Exit status 1 if it cannot be read.\n";
static const char validate_help[] =
    "usage: shardrec data validate FILE\n"
    "\n"
    "Checks every invariant of a dataset (datasets/README.md, \"Validation\"): schema\n"
    "version, CSR structure, shapes, split consistency, features, ids. Prints one OK\n"
    "line, or the first problem naming the HDF5 object, and exits with status 1.\n"
    "FILE is relative to the working directory.\n";

/* `data info FILE` / `data validate FILE`: argv[1] is the file; help the
 * subcommand's own text. */
static int parse_file_arg(int argc, char **argv, const char *help, const char **path) {
  static const struct option options[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  char command[32];
  snprintf(command, sizeof command, "data %s", argv[0]);
  optind = 1;
  int opt;
  while ((opt = sr_cli_getopt(command, argc, argv, "h", options, NULL)) != -1) {
    if (opt == 'h') return fputs(help, stdout), 0;
    return SR_CLI_EXIT_USAGE;
  }
  if (argc - optind != 1) return sr_cli_usage_error(command, "expected exactly one FILE");
  *path = argv[optind];
  return -1;
}

static int run_info(int argc, char **argv) {
  const char *path = NULL;
  int status = parse_file_arg(argc, argv, info_help, &path);
  if (status >= 0) return status;
  sr_dataset d;
  if (sr_dataset_read(path, &d) != SR_OK) return sr_cmd_report_error();
  sr_dataset_print_info(&d, path);
  sr_dataset_free(&d);
  return 0;
}

static int run_validate(int argc, char **argv) {
  const char *path = NULL;
  int status = parse_file_arg(argc, argv, validate_help, &path);
  if (status >= 0) return status;
  sr_dataset d;
  if (sr_dataset_read(path, &d) != SR_OK) return sr_cmd_report_error();
  printf(
      "%s: OK (%lld users, %lld items; train %lld users / %lld interactions, valid %lld users, test %lld users; "
      "%d item features, %d user features)\n",
      path, (long long)d.n_users, (long long)d.n_items, (long long)d.train.n_rows, (long long)d.train.nnz,
      (long long)d.valid.n_users, (long long)d.test.n_users, d.n_item_features, d.n_user_features);
  sr_dataset_free(&d);
  return 0;
}

int sr_cmd_data(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*run)(int, char **);
  } subcommands[] = {
      {"synth", run_synth}, {"import", sr_cmd_data_import}, {"info", run_info}, {"validate", run_validate}};
  if (argc < 2) return usage(stderr), SR_CLI_EXIT_USAGE;
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) return usage(stdout), 0;
  enum { N_SUBCOMMANDS = sizeof subcommands / sizeof subcommands[0] };
  const char *names[N_SUBCOMMANDS];
  for (int i = 0; i < N_SUBCOMMANDS; i++) {
    if (strcmp(argv[1], subcommands[i].name) == 0) return subcommands[i].run(argc - 1, argv + 1);
    names[i] = subcommands[i].name;
  }
  const char *near = sr_nearest_name(argv[1], names, N_SUBCOMMANDS);
  if (near) return sr_cli_usage_error("data", "unknown subcommand '%s' (did you mean '%s'?)", argv[1], near);
  return sr_cli_usage_error("data", "unknown subcommand '%s' (synth, import, info or validate)", argv[1]);
}

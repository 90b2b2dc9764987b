/* main.c — the shardrec command-line entry point: dispatches subcommands. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "shardrec/blas.h"
#include "shardrec/config.h"
#include "shardrec/dist.h"
#include "shardrec/error.h"
#include "shardrec/log.h"
#include "shardrec/run_info.h"

typedef struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} command;

static const command commands[] = {
    {"train", sr_cmd_train, "train a model from a YAML config"},
    {"eval", sr_cmd_eval, "evaluate a trained model on a dataset split"},
    {"data", sr_cmd_data, "create, import, inspect and validate HDF5 datasets (synth, import, info, validate)"},
    {"merge", sr_cmd_merge, "merge checkpoints of one architecture into a model soup"},
    {"inspect", sr_cmd_inspect, "show a checkpoint's metadata and tensors, or compare two"},
    {"export", sr_cmd_export, "write a two-tower model's item and user embeddings for an ANN index"},
    {"runs", sr_cmd_runs, "compare training runs: a table of configs and metrics, seeds grouped"},
    {"sweep", sr_cmd_sweep, "train every combination of a grid of config values and seeds, then compare them"},
    {"recommend", sr_cmd_recommend, "write the top-K unseen items of each user (TSV or HDF5)"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
  fprintf(out, "usage: shardrec <command> [args]   (shardrec <command> --help for details)\n\ncommands:\n");
  for (size_t i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int sr_cmd_report_error(void) {
  sr_log_current_error();
  return 1;
}

int sr_cli_finish(const sr_dist *dist, int status) {
  /* Failures that every rank agreed on (config, data) end normally on every
   * rank; any other failure leaves peers inside collectives: abort the job. */
  if (status != 0 && dist->size > 1 && status != SR_CLI_AGREED_FAILURE && status != SR_CLI_STOPPED)
    sr_dist_abort(dist, status);
  sr_dist_finalize();
  return status == SR_CLI_AGREED_FAILURE ? 1 : status;
}

int main(int argc, char **argv) {
  sr_blas_configure_process(argv); /* may re-execute the program once (blas.h) */
  sr_run_info_set_command(argc, argv);
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    sr_cli_print_version(stdout);
    return 0;
  }
  const char *names[N_COMMANDS];
  for (size_t i = 0; i < N_COMMANDS; i++) {
    if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    names[i] = commands[i].name;
  }
  const char *near = sr_nearest_name(argv[1], names, (int)N_COMMANDS);
  if (near) {
    fprintf(stderr, "shardrec: unknown command '%s' (did you mean '%s'?)\n", argv[1], near);
    return 2;
  }
  fprintf(stderr, "shardrec: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}

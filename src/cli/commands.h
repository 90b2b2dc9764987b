/*
 * commands.h — the subcommands of the `shardrec` binary. Each takes the
 * arguments after its own name (argv[0] is the subcommand name) and returns the
 * process exit status: 0 success, 1 runtime failure (message already printed),
 * 2 usage error.
 */
#ifndef SHARDREC_CLI_COMMANDS_H
#define SHARDREC_CLI_COMMANDS_H

#include <stdio.h>

#include "shardrec/config.h"
#include "shardrec/dist.h"
#include "shardrec/h5io.h"
#include "shardrec/import.h"
#include "shardrec/model.h"

int sr_cmd_train(int argc, char **argv);
int sr_cmd_eval(int argc, char **argv);
int sr_cmd_data(int argc, char **argv);
int sr_cmd_merge(int argc, char **argv);
int sr_cmd_inspect(int argc, char **argv);
int sr_cmd_export(int argc, char **argv);
int sr_cmd_runs(int argc, char **argv);
int sr_cmd_sweep(int argc, char **argv);
int sr_cmd_recommend(int argc, char **argv);
/* Prints the `shardrec runs` table (format table, csv, md or json) of the
 * runs in or below dir; 0, or 1 after printing the error. */
int sr_cli_print_runs(const char *dir, const char *format);
/* Whether the run in dir finished: its metrics.jsonl holds a test record
 * that no resume superseded. */
int sr_cli_run_finished(const char *dir);
int sr_cmd_data_import(int argc, char **argv); /* `data import` (cmd_import.c) */

/* Exit status of a usage error (bad option or value). */
#define SR_CLI_EXIT_USAGE 2
/* Option helpers (cli_args.c): each prints "shardrec COMMAND: ..." and
 * returns SR_CLI_EXIT_USAGE, or 0 on success. */
__attribute__((format(printf, 2, 3))) int sr_cli_usage_error(const char *command, const char *fmt, ...);
/* A whole-string integer in [lo, hi], for option --opt. */
int sr_cli_parse_int(const char *command, const char *opt, const char *s, long long lo, long long hi, long long *out);
int sr_cli_parse_number(const char *command, const char *opt, const char *s, double *out);
/* --compression zstd|gzip|none[:LEVEL] (h5io.h). */
int sr_cli_parse_compression(const char *command, const char *opt, const char *s, sr_h5_compression *out);
/* One of names (NULL-terminated) for option --opt: *out = its index; else a
 * message listing them, with "did you mean" for a near miss. */
int sr_cli_parse_enum(const char *command, const char *opt, const char *s, const char *const *names, int *out);
/* getopt_long (opterr off) that reports an unknown option (with "did you
 * mean" for a long one) or a missing value itself and then returns '?'. */
struct option;
int sr_cli_getopt(const char *command, int argc, char **argv, const char *shortopts, const struct option *longopts,
                  int *index);

/* What the commands that read a model and write a file (export, recommend)
 * share: one checkpoint argument, -o/--output, --data, --batch, --compression. */
typedef struct {
  const char *checkpoint, *data_path, *out_path;
  long long batch; /* 0: the config's train.eval_batch_size */
  sr_h5_compression compression;
} sr_cli_model_output;
/* Their entries of a struct option table. */
/* clang-format off */
#define SR_CLI_MODEL_OUTPUT_OPTIONS                                                                   \
  {"output", required_argument, NULL, 'o'}, {"data", required_argument, NULL, 'd'},                 \
  {"batch", required_argument, NULL, 'b'}, {"compression", required_argument, NULL, 'c'}
/* clang-format on */
/* Nothing given yet; gzip output, which any HDF5 reader opens. */
void sr_cli_model_output_init(sr_cli_model_output *io);
/* Takes option opt ('o', 'd', 'b', 'c') into io: 0, or the usage exit
 * status; -1 when opt is none of them. */
int sr_cli_model_output_option(const char *command, int opt, const char *arg, sr_cli_model_output *io);
/* After the options: -o was given (else the error `missing`) and exactly one
 * argument, the checkpoint, is left. Returns 0 or the usage exit status. */
int sr_cli_model_output_finish(const char *command, const char *missing, int argc, char **argv,
                               sr_cli_model_output *io);

/* Loads a YAML config, applies "section.key=value" overrides in order,
 * validates, and sets the log level. */
int sr_cli_load_config(const char *path, char **overrides, int n_overrides, sr_config *cfg);

/* Sets the BLAS threads of one rank of this job (config, Slurm, rank
 * count); dist NULL: a single-process command. */
void sr_cli_set_blas_threads(const sr_config *cfg, const sr_dist *dist);
/* Status a distributed command returns for a failure that every rank knows
 * of (sr_dist_agree): the job can end normally, with exit code 1. */
#define SR_CLI_AGREED_FAILURE 101
/* Exit status of a training that every rank stopped on a signal (SIGTERM,
 * SIGINT, SIGUSR1) after writing a checkpoint: EX_TEMPFAIL, "run it again"
 * (with --resume auto). The job ends normally. */
#define SR_CLI_STOPPED 75
/* Ends a distributed command: status 0 finalizes MPI normally; a failure
 * aborts the whole job when other ranks may still be running (no hang). */
int sr_cli_finish(const sr_dist *dist, int status);

/* `shardrec --version`: version, git commit, build type and the versions of
 * the libraries it runs with (version.c). */
void sr_cli_print_version(FILE *out);

/* A checkpoint's model rebuilt over its dataset (read whole by this
 * process) with the dataset's raw ids: what export and recommend start from
 * (model_data.c). */
typedef struct {
  sr_config cfg;
  sr_dataset data;
  sr_model *model;
  const char *data_path;         /* the --data given, else the checkpoint's data.path */
  sr_raw_ids user_raw, item_raw; /* the dataset's /ids (no arrays when it has none) */
} sr_cli_model_data;
/* data_path NULL: the checkpoint's; wanted_type: the sr_model_type that
 * `command` needs, or -1 for any. Free with sr_cli_model_data_free even on
 * failure. */
int sr_cli_load_model_data(const char *checkpoint, const char *data_path, int wanted_type, const char *command,
                           sr_cli_model_data *in);
void sr_cli_model_data_free(sr_cli_model_data *in);

/* Prints the current error (with rank when distributed) and returns 1. */
int sr_cmd_report_error(void);

#endif

/*
 * commands.h — the subcommands of the `shardrec` binary. Each takes the
 * arguments after its own name (argv[0] is the subcommand name) and returns the
 * process exit status: 0 success, 1 runtime failure (message already printed),
 * 2 usage error.
 */
#ifndef SHARDREC_CLI_COMMANDS_H
#define SHARDREC_CLI_COMMANDS_H

#include "shardrec/config.h"

int sr_cmd_train(int argc, char **argv);
int sr_cmd_eval(int argc, char **argv);
int sr_cmd_data(int argc, char **argv);

/* Loads a YAML config, applies "section.key=value" overrides in order,
 * validates, and sets the log level. */
int sr_cli_load_config(const char *path, char **overrides, int n_overrides, sr_config *cfg);

/* Prints the current error (with rank when distributed) and returns 1. */
int sr_cmd_report_error(void);

#endif

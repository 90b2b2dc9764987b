/*
 * run_info.h — what identifies the program that ran a run: the command
 * line, the git commit built, and wall-clock timestamps. metrics.jsonl
 * headers carry them, so that a record read hours later (a Slurm log, a
 * sweep's runs) says what produced it.
 */
#ifndef SHARDREC_RUN_INFO_H
#define SHARDREC_RUN_INFO_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Room for a timestamp with its terminator (sr_utc_timestamp). */
#define SR_TIMESTAMP_MAX 32

/* Remembers the process's command line (main does, once); words with spaces
 * or quotes are single-quoted as a shell would need them. */
void sr_run_info_set_command(int argc, char *const *argv);
/* The command line set above ("" when none was). */
const char *sr_run_info_command(void);
/* The git commit the library was built from: 12 hex digits, "+dirty" when
 * the source differed from it, "unknown" when built outside a git checkout. */
const char *sr_run_info_git_commit(void);
/* The current UTC time, ISO 8601 with milliseconds: "2026-12-03T14:20:01.123Z". */
void sr_utc_timestamp(char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif

/*
 * run_info.h — what identifies a run and the program that ran it: the
 * command line, the version and git commit built, wall-clock timestamps and
 * run ids. metrics.jsonl headers and log lines carry them, so that a record
 * read hours later (a Slurm log, a sweep's runs) says what produced it.
 */
#ifndef SHARDREC_RUN_INFO_H
#define SHARDREC_RUN_INFO_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Room for a run id with its terminator (sr_run_id_new). */
#define SR_RUN_ID_MAX 40
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
/* A new run id, unique across machines and time: the UTC start time and 32
 * random bits, e.g. "20261203T142001Z-5f3a9c1e" (buf: SR_RUN_ID_MAX bytes). */
void sr_run_id_new(char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif

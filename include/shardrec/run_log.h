/*
 * run_log.h — a run's metrics.jsonl: one JSON object per line, appended by
 * rank 0 (format in docs/metrics.md).
 *
 * A record is written whole or not at all: a failed write (a full disk, an
 * I/O error) truncates the file back to its last complete record, and the
 * log remembers the failure, which training turns into an error like a
 * failed checkpoint write. On resume, the records written after the resumed
 * checkpoint belong to a history that no longer happens: they are kept and
 * marked "superseded": true (sr_run_log_supersede), so that readers skip them.
 */
#ifndef SHARDREC_RUN_LOG_H
#define SHARDREC_RUN_LOG_H

#include <jansson.h>
#include <stdint.h>

#include "shardrec/fsutil.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int fd; /* -1: closed */
  char path[SR_PATH_MAX];
  int64_t size; /* bytes of complete records */
  int failed;   /* sticky: a write failed; error says why */
  char error[SR_PATH_MAX + 128];
} sr_run_log;

/* Opens (creates) path for appending. */
int sr_run_log_open(sr_run_log *log, const char *path);
/* Appends `record` (reference stolen) as one line. After a failure every
 * later write fails at once with the first failure's message. */
int sr_run_log_write(sr_run_log *log, json_t *record);
/* SR_OK, or the first write failure again (its message restored). */
int sr_run_log_status(const sr_run_log *log);
/* Closes; returns sr_run_log_status. Closing a closed log does nothing. */
int sr_run_log_close(sr_run_log *log);

/* One record as the log writes it: compact JSON, floats with 10 significant
 * digits, no newline (malloc'd). */
char *sr_run_log_format(const json_t *record);

/* Marks every record after byte `offset` of the log at path, except "header"
 * records, as superseded (rewriting the file atomically). offset < 0 (a
 * checkpoint older than this field): records whose "step" is past `step`.
 * An offset beyond the file's end means the file is not the one the
 * checkpoint saw: nothing is marked (with a warning). Lines that are not
 * complete JSON objects are dropped. No file: nothing to do. */
int sr_run_log_supersede(const char *path, int64_t offset, int64_t step);

#ifdef __cplusplus
}
#endif
#endif

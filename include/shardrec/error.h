/*
 * error.h — error reporting for the whole library.
 *
 * Every fallible function returns an int: SR_OK (0) on success, or one of the
 * sr_code values below. The human-readable message lives in a thread-local
 * buffer filled by sr_fail_at(); callers add context on the way up with
 * sr_error_prefix(), so the user finally sees one line such as
 *
 *   reading dataset 'data/x.h5': /splits/train/indptr: not monotone at row 17
 *
 * naming the file, key, line or rank the problem is about. The source location
 * of the original failure is kept separately (sr_error_where()) for bug reports.
 *
 * Conditions that cannot be handled (out of memory, a broken invariant) abort
 * through sr_die_at() with file:line, like llm.c's checked wrappers.
 */
#ifndef SHARDREC_ERROR_H
#define SHARDREC_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SR_OK = 0,
  SR_EINVAL = 1,   /* bad argument or bad value from the user */
  SR_ENOMEM = 2,   /* allocation failed where we chose not to abort */
  SR_EIO = 3,      /* file system / OS error (missing file, full disk, ...) */
  SR_EFORMAT = 4,  /* a file exists but its content is wrong (HDF5, CSV, ...) */
  SR_ECONFIG = 5,  /* YAML config error: syntax, unknown key, type, range */
  SR_EDIST = 6,    /* MPI / distributed runtime failure */
  SR_ENUMERIC = 7, /* NaN / Inf encountered in training */
  SR_ESTOPPED = 8  /* training stopped on a signal after writing a checkpoint (train.h) */
} sr_code;

#define SR_ERROR_MAX 2048

/* Records an error (printf-style) and returns `code`, so callers can write
 * `return SR_FAIL(SR_EINVAL, "batch size %d < 1", b);`. */
int sr_fail_at(const char *src_file, int src_line, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define SR_FAIL(code, ...) sr_fail_at(__FILE__, __LINE__, (code), __VA_ARGS__)

/* Prepends "<context>: " to the current message. Returns the current code. */
int sr_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

const char *sr_error_message(void); /* "" when no error is recorded */
const char *sr_error_where(void);   /* "src/file.c:123" of the first failure */
int sr_error_code(void);
void sr_error_clear(void);
/* Whether the current error is one every rank of the job knows of (set by
 * sr_dist_agree, cleared by any new failure): the job may then end normally
 * instead of aborting ranks that wait in a collective. */
void sr_error_mark_agreed(void);
int sr_error_agreed(void);

/* Propagates a failure: evaluates `expr` once and returns its code if non-zero. */
#define SR_TRY(expr)                            \
  do {                                          \
    int sr_try_rc_ = (expr);                    \
    if (sr_try_rc_ != SR_OK) return sr_try_rc_; \
  } while (0)

/* Aborts the process after printing "fatal: <msg> (src:line)". For programming
 * errors and out-of-memory only; user-caused problems go through SR_FAIL. */
__attribute__((noreturn)) void sr_die_at(const char *src_file, int src_line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define SR_DIE(...) sr_die_at(__FILE__, __LINE__, __VA_ARGS__)
#define SR_ASSERT(cond)                                                        \
  do {                                                                         \
    if (!(cond)) sr_die_at(__FILE__, __LINE__, "assertion failed: %s", #cond); \
  } while (0)

/* Hook run by sr_die_at before exiting (the distributed runtime installs one
 * that calls MPI_Abort so a dying rank takes the job down instead of hanging). */
typedef void (*sr_die_hook)(int exit_code);
void sr_set_die_hook(sr_die_hook hook);

#ifdef __cplusplus
}
#endif
#endif

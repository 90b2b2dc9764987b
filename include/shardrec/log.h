/*
 * log.h — leveled, rank-aware logging to stderr.
 *
 * Under MPI only rank 0 prints by default (sr_log_configure(rank, size, all=0));
 * with all=1 every rank prints, prefixed "[rank r/size]". Errors are printed by
 * every rank because the failing rank is usually not rank 0.
 */
#ifndef SHARDREC_LOG_H
#define SHARDREC_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SR_LOG_DEBUG = 0, SR_LOG_INFO = 1, SR_LOG_WARN = 2, SR_LOG_ERROR = 3, SR_LOG_QUIET = 4 } sr_log_level;

void sr_log_configure(int rank, int size, int all_ranks);
void sr_log_set_level(sr_log_level level);
/* Every rank prints (1), or rank 0 alone (0): run.log_all_ranks. */
void sr_log_set_all_ranks(int all_ranks);
sr_log_level sr_log_get_level(void);

void sr_log(sr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define sr_debug(...) sr_log(SR_LOG_DEBUG, __VA_ARGS__)
#define sr_info(...) sr_log(SR_LOG_INFO, __VA_ARGS__)
#define sr_warn(...) sr_log(SR_LOG_WARN, __VA_ARGS__)

/* Prints the current error (sr_error_message) as "error: ..." on every rank. */
void sr_log_current_error(void);

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
double sr_now(void);
/* CPU seconds this process has used so far, all threads, user + system
 * (getrusage): what a step costs on a shared machine, where wall time also
 * counts other processes' time slices. */
double sr_cpu_seconds(void);

#ifdef __cplusplus
}
#endif
#endif

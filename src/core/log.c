/* log.c — rank-aware leveled logging (log.h). */
#include "shardrec/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "shardrec/error.h"

static int log_rank = 0, log_size = 1, log_all = 0;
static sr_log_level log_level = SR_LOG_INFO;
static int status_shown; /* a status line is on the terminal, without its newline */

void sr_log_configure(int rank, int size, int all_ranks) {
  log_rank = rank;
  log_size = size;
  log_all = all_ranks;
}
void sr_log_set_level(sr_log_level level) { log_level = level; }
void sr_log_set_all_ranks(int all_ranks) { log_all = all_ranks; }
sr_log_level sr_log_get_level(void) { return log_level; }

/* "2026-12-03T14:20:01Z": logs are read hours later (Slurm output files). */
static void line_timestamp(char *buf, size_t n) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void vlog(sr_log_level level, int every_rank, const char *fmt, va_list ap) {
  if (level < log_level) return;
  if (!every_rank && !log_all && log_rank != 0) return;
  char line[4096], stamp[32];
  vsnprintf(line, sizeof line, fmt, ap);
  line_timestamp(stamp, sizeof stamp);
  sr_log_status_clear();
  const char *tag = level >= SR_LOG_ERROR ? "error: " : level == SR_LOG_WARN ? "warning: " : "";
  if (log_size > 1)
    fprintf(stderr, "%s [rank %d/%d] %s%s\n", stamp, log_rank, log_size, tag, line);
  else
    fprintf(stderr, "%s %s%s\n", stamp, tag, line);
  fflush(stderr);
}

int sr_log_is_terminal(void) { return log_rank == 0 && log_level <= SR_LOG_INFO && isatty(STDERR_FILENO); }

void sr_log_status(const char *fmt, ...) {
  if (!sr_log_is_terminal()) return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\r%s\033[K", line); /* \033[K: erase the rest of the old line */
  fflush(stderr);
  status_shown = 1;
}

void sr_log_status_clear(void) {
  if (!status_shown) return;
  fputs("\r\033[K", stderr);
  status_shown = 0;
}

void sr_log(sr_log_level level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(level, level >= SR_LOG_ERROR, fmt, ap);
  va_end(ap);
}

void sr_log_current_error(void) {
  if (sr_log_get_level() <= SR_LOG_DEBUG && sr_error_where()[0])
    sr_log(SR_LOG_ERROR, "%s [%s]", sr_error_message(), sr_error_where());
  else
    sr_log(SR_LOG_ERROR, "%s", sr_error_message());
}

double sr_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double sr_cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

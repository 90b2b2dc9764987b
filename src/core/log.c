/* log.c — rank-aware leveled logging (log.h). */
#include "shardrec/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include "shardrec/error.h"

static int log_rank = 0, log_size = 1, log_all = 0;
static sr_log_level log_level = SR_LOG_INFO;

void sr_log_configure(int rank, int size, int all_ranks) {
  log_rank = rank;
  log_size = size;
  log_all = all_ranks;
}
void sr_log_set_level(sr_log_level level) { log_level = level; }
void sr_log_set_all_ranks(int all_ranks) { log_all = all_ranks; }
sr_log_level sr_log_get_level(void) { return log_level; }

static void vlog(sr_log_level level, int every_rank, const char *fmt, va_list ap) {
  if (level < log_level) return;
  if (!every_rank && !log_all && log_rank != 0) return;
  char line[4096];
  vsnprintf(line, sizeof line, fmt, ap);
  const char *tag = level >= SR_LOG_ERROR ? "error: " : level == SR_LOG_WARN ? "warning: " : "";
  if (log_size > 1)
    fprintf(stderr, "[rank %d/%d] %s%s\n", log_rank, log_size, tag, line);
  else
    fprintf(stderr, "%s%s\n", tag, line);
  fflush(stderr);
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

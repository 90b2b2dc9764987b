/* run_info.c — command line, build identity and timestamps (run_info.h). */
#include "shardrec/run_info.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "git_commit.h" /* generated at build time (cmake/git_commit.cmake) */

static char command_line[4096];

void sr_run_info_set_command(int argc, char *const *argv) {
  size_t used = 0;
  command_line[0] = '\0';
  for (int i = 0; i < argc && used < sizeof command_line; i++) {
    const char *w = argv[i];
    const int plain = w[0] && strpbrk(w, " \t\n'\"\\$`*?;&|<>()") == NULL;
    used +=
        (size_t)snprintf(command_line + used, sizeof command_line - used, plain ? "%s%s" : "%s'%s'", i ? " " : "", w);
  }
}

const char *sr_run_info_command(void) { return command_line; }

const char *sr_run_info_git_commit(void) { return SHARDREC_GIT_COMMIT; }

void sr_utc_timestamp(char *buf, size_t n) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char day_time[24];
  strftime(day_time, sizeof day_time, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, n, "%s.%03ldZ", day_time, ts.tv_nsec / 1000000);
}

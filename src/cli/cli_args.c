/* cli_args.c — option-value parsing and usage errors shared by the subcommands (commands.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"

int sr_cli_usage_error(const char *command, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "shardrec %s: ", command);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n(shardrec %s --help for usage)\n", command);
  va_end(ap);
  return SR_CLI_EXIT_USAGE;
}

int sr_cli_parse_int(const char *command, const char *opt, const char *s, long long lo, long long hi,
                     long long *out) {
  char *end;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end || v < lo || v > hi)
    return sr_cli_usage_error(command, "--%s: expected an integer in [%lld, %lld], got '%s'", opt, lo, hi, s);
  *out = v;
  return 0;
}

int sr_cli_parse_number(const char *command, const char *opt, const char *s, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end || !isfinite(v))
    return sr_cli_usage_error(command, "--%s: expected a finite number, got '%s'", opt, s);
  *out = v;
  return 0;
}

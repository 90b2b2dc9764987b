/* cli_args.c — option-value parsing and usage errors shared by the subcommands (commands.h). */
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "shardrec/config.h"
#include "shardrec/error.h"

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

int sr_cli_parse_compression(const char *command, const char *opt, const char *s, sr_h5_compression *out) {
  if (sr_h5_compression_parse(s, out) == SR_OK) return 0;
  return sr_cli_usage_error(command, "--%s: %s", opt, sr_error_message());
}

void sr_cli_model_output_init(sr_cli_model_output *io) {
  memset(io, 0, sizeof *io);
  io->compression = sr_h5_compression_of(SR_H5_GZIP);
}

int sr_cli_model_output_option(const char *command, int opt, const char *arg, sr_cli_model_output *io) {
  switch (opt) {
    case 'o':
      io->out_path = arg;
      return 0;
    case 'd':
      io->data_path = arg;
      return 0;
    case 'b':
      return sr_cli_parse_int(command, "batch", arg, 1, INT32_MAX, &io->batch);
    case 'c':
      return sr_cli_parse_compression(command, "compression", arg, &io->compression);
    default:
      return -1;
  }
}

int sr_cli_model_output_finish(const char *command, const char *missing, int argc, char **argv,
                               sr_cli_model_output *io) {
  if (!io->out_path) return sr_cli_usage_error(command, "%s", missing);
  if (optind != argc - 1) return sr_cli_usage_error(command, "expected one checkpoint, got %d", argc - optind);
  io->checkpoint = argv[optind];
  return 0;
}

int sr_cli_parse_enum(const char *command, const char *opt, const char *s, const char *const *names, int *out) {
  int n = 0;
  for (; names[n]; n++)
    if (strcmp(s, names[n]) == 0) {
      *out = n;
      return 0;
    }
  char list[256] = "";
  size_t used = 0;
  for (int i = 0; i < n && used < sizeof list; i++)
    used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
                             i == 0       ? ""
                             : i == n - 1 ? " or "
                                          : ", ",
                             names[i]);
  const char *near = sr_nearest_name(s, names, n);
  if (near)
    return sr_cli_usage_error(command, "--%s: expected %s, got '%s' (did you mean '%s'?)", opt, list, s, near);
  return sr_cli_usage_error(command, "--%s: expected %s, got '%s'", opt, list, s);
}

/* The long option nearest to the unknown "--name[=value]", as "--name", or NULL. */
static const char *nearest_long_option(const char *arg, const struct option *longopts, char *buf, size_t cap) {
  const char *names[128];
  int n = 0;
  for (; longopts[n].name && n < 128; n++) names[n] = longopts[n].name;
  char given[64];
  snprintf(given, sizeof given, "%.*s", (int)strcspn(arg + 2, "="), arg + 2);
  const char *near = sr_nearest_name(given, names, n);
  if (!near) return NULL;
  snprintf(buf, cap, "--%s", near);
  return buf;
}

int sr_cli_getopt(const char *command, int argc, char **argv, const char *shortopts, const struct option *longopts,
                  int *index) {
  char spec[128];
  snprintf(spec, sizeof spec, ":%s", shortopts); /* ':' first: a missing value is reported as ':' */
  opterr = 0;
  int opt = getopt_long(argc, argv, spec, longopts, index);
  if (opt != '?' && opt != ':') return opt;
  const char *arg = argv[optind - 1];
  if (opt == ':') {
    sr_cli_usage_error(command, "option '%s' needs a value", arg);
  } else if (strncmp(arg, "--", 2) == 0) {
    char near[80];
    if (nearest_long_option(arg, longopts, near, sizeof near))
      sr_cli_usage_error(command, "unknown or ambiguous option '%s' (did you mean '%s'?)", arg, near);
    else
      sr_cli_usage_error(command, "unknown or ambiguous option '%s'", arg);
  } else {
    sr_cli_usage_error(command, "unknown option '-%c'", optopt);
  }
  return '?';
}

/* error.c — thread-local error message with context prefixes (error.h). */
#include "shardrec/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char error_message[SR_ERROR_MAX];
static _Thread_local char error_where[128];
static _Thread_local int error_code;
static _Thread_local int error_agreed;
static sr_die_hook die_hook;

int sr_fail_at(const char *src_file, int src_line, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(error_message, sizeof error_message, fmt, ap);
  va_end(ap);
  snprintf(error_where, sizeof error_where, "%s:%d", src_file, src_line);
  error_code = code;
  error_agreed = 0;
  return code;
}

int sr_error_prefix(const char *fmt, ...) {
  char prefix[SR_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  /* Truncation keeps the start of the message, which carries the context. */
  char joined[2 * SR_ERROR_MAX + 2];
  snprintf(joined, sizeof joined, "%s: %s", prefix, error_message);
  size_t n = strlen(joined);
  if (n >= sizeof error_message) n = sizeof error_message - 1;
  memcpy(error_message, joined, n);
  error_message[n] = '\0';
  return error_code;
}

const char *sr_error_message(void) { return error_message; }
const char *sr_error_where(void) { return error_where; }
int sr_error_code(void) { return error_code; }

void sr_error_clear(void) {
  error_message[0] = '\0';
  error_where[0] = '\0';
  error_code = SR_OK;
  error_agreed = 0;
}

void sr_error_mark_agreed(void) { error_agreed = 1; }
int sr_error_agreed(void) { return error_agreed; }

void sr_set_die_hook(sr_die_hook hook) { die_hook = hook; }

_Noreturn void sr_die_at(const char *src_file, int src_line, const char *fmt, ...) {
  char msg[SR_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "shardrec: fatal: %s (%s:%d)\n", msg, src_file, src_line);
  fflush(stderr);
  if (die_hook) die_hook(EXIT_FAILURE);
  abort();
}

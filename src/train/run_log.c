/* run_log.c — metrics.jsonl, written whole records at a time (run_log.h). */
#include "shardrec/run_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shardrec/error.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"

int sr_run_log_open(sr_run_log *log, const char *path) {
  memset(log, 0, sizeof *log);
  snprintf(log->path, sizeof log->path, "%s", path);
  log->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (log->fd < 0) return SR_FAIL(SR_EIO, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(log->fd, &st) != 0) {
    int err = errno;
    close(log->fd);
    log->fd = -1;
    return SR_FAIL(SR_EIO, "cannot stat %s: %s", path, strerror(err));
  }
  log->size = (int64_t)st.st_size;
  return SR_OK;
}

char *sr_run_log_format(const json_t *record) {
  char *text = json_dumps(record, JSON_COMPACT | JSON_REAL_PRECISION(10));
  if (!text) SR_DIE("cannot format a metrics record (out of memory)");
  return text;
}

/* Writes all of buf, retrying short writes; 0 or the errno. */
static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

int sr_run_log_write(sr_run_log *log, json_t *record) {
  char *text = sr_run_log_format(record);
  json_decref(record);
  if (log->failed || log->fd < 0) {
    free(text);
    return sr_run_log_status(log);
  }
  const size_t len = strlen(text);
  text[len] = '\0';
  char *line = sr_malloc(len + 2);
  memcpy(line, text, len);
  line[len] = '\n';
  free(text);
  int err = write_all(log->fd, line, len + 1);
  free(line);
  if (err == 0) {
    log->size += (int64_t)len + 1;
    return SR_OK;
  }
  /* Part of the line may be in the file: cut it back to the last whole record. */
  log->failed = 1;
  snprintf(log->error, sizeof log->error, "cannot write %s: %s (the run stops: its record would be incomplete)",
           log->path, strerror(err));
  if (ftruncate(log->fd, (off_t)log->size) != 0)
    sr_warn("%s: cannot remove a partly written record: %s", log->path, strerror(errno));
  return sr_run_log_status(log);
}

int sr_run_log_status(const sr_run_log *log) { return log->failed ? SR_FAIL(SR_EIO, "%s", log->error) : SR_OK; }

int sr_run_log_close(sr_run_log *log) {
  if (log->fd >= 0 && close(log->fd) != 0 && !log->failed) {
    log->failed = 1;
    snprintf(log->error, sizeof log->error, "cannot write %s: %s", log->path, strerror(errno));
  }
  log->fd = -1;
  return sr_run_log_status(log);
}

/* Reads the whole file at path (*text malloc'd, NUL-terminated); 1 when
 * there is no file. */
static int read_whole(const char *path, char **text, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT) return 1;
    return SR_FAIL(SR_EIO, "cannot open %s: %s", path, strerror(errno));
  }
  size_t cap = 1 << 16, used = 0;
  char *buf = sr_malloc(cap);
  size_t n;
  while ((n = fread(buf + used, 1, cap - used - 1, f)) > 0) {
    used += n;
    if (cap - used < 2) sr_grow(&buf, &cap, cap * 2);
  }
  int failed = ferror(f);
  fclose(f);
  if (failed) {
    free(buf);
    return SR_FAIL(SR_EIO, "cannot read %s", path);
  }
  buf[used] = '\0';
  *text = buf;
  *len = used;
  return SR_OK;
}

/* Whether the record on this line is superseded by a resume at (offset,
 * step): in the tail past the offset, or past the step when the checkpoint
 * recorded no offset. Headers describe invocations and stay as they are. */
static int superseded_by_resume(const json_t *r, int64_t line_start, int64_t offset, int64_t step) {
  const char *type = json_string_value(json_object_get(r, "type"));
  if (type && strcmp(type, "header") == 0) return 0;
  if (offset >= 0) return line_start >= offset;
  const json_t *s = json_object_get(r, "step");
  return json_is_integer(s) && json_integer_value(s) > step;
}

int sr_run_log_supersede(const char *path, int64_t offset, int64_t step) {
  char *text = NULL;
  size_t len = 0;
  int rc = read_whole(path, &text, &len);
  if (rc == 1) return SR_OK;
  SR_TRY(rc);
  if (offset > (int64_t)len) {
    sr_warn(
        "%s is shorter than when the resumed checkpoint was written (%lld < %lld bytes): no record is marked "
        "superseded",
        path, (long long)len, (long long)offset);
    free(text);
    return SR_OK;
  }
  size_t cap = len + 1024, used = 0;
  char *out = sr_malloc(cap);
  int changed = 0;
  for (char *line = text; *line;) {
    char *end = strchr(line, '\n');
    const size_t line_len = end ? (size_t)(end - line) : strlen(line);
    const int64_t start = (int64_t)(line - text);
    json_t *r = json_loadb(line, line_len, 0, NULL);
    char *formatted = NULL;
    const char *keep = line;
    size_t keep_len = line_len;
    if (!json_is_object(r)) { /* an incomplete last line, e.g. of a killed run */
      keep = NULL;
      changed = 1;
    } else if (superseded_by_resume(r, start, offset, step) && !json_is_true(json_object_get(r, "superseded"))) {
      json_object_set_new(r, "superseded", json_true());
      formatted = sr_run_log_format(r);
      keep = formatted;
      keep_len = strlen(formatted);
      changed = 1;
    }
    if (keep) {
      sr_grow(&out, &cap, used + keep_len + 2);
      memcpy(out + used, keep, keep_len);
      used += keep_len;
      out[used++] = '\n';
    }
    free(formatted);
    json_decref(r);
    line += line_len + (end ? 1 : 0);
  }
  if (changed) rc = sr_write_file_atomic(path, out, used);
  free(out);
  free(text);
  return rc;
}

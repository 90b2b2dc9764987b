/* fsutil.c — durable, atomic file writes and directory creation (fsutil.h). */
#include "shardrec/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shardrec/error.h"

int sr_mkdir_p(const char *path) {
  char buf[SR_PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return SR_FAIL(SR_EINVAL, "path too long: %s", path);
  for (char *p = buf + 1;; p++) {
    int end = *p == '\0';
    if (*p == '/' || end) {
      *p = '\0';
      if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return SR_FAIL(SR_EIO, "cannot create directory %s: %s", buf, strerror(errno));
      if (end) break;
      *p = '/';
    }
  }
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return SR_FAIL(SR_EIO, "%s is not a directory", path);
  return SR_OK;
}

/* "<path>.tmp.<pid>" into buf. */
static void temp_path(const char *path, char *buf, size_t bufsize) {
  snprintf(buf, bufsize, "%s.tmp.%ld", path, (long)getpid());
}

static int fsync_path(const char *path, int flags) {
  int fd = open(path, flags);
  if (fd < 0) return SR_FAIL(SR_EIO, "cannot open %s: %s", path, strerror(errno));
  int rc = fsync(fd);
  int saved = errno;
  close(fd);
  if (rc != 0) return SR_FAIL(SR_EIO, "fsync %s: %s", path, strerror(saved));
  return SR_OK;
}

/* fsync(tmp), rename(tmp, path), fsync(dirname(path)). On failure tmp is removed. */
static int commit_file(const char *tmp, const char *path) {
  int rc = fsync_path(tmp, O_RDONLY);
  if (rc == SR_OK && rename(tmp, path) != 0) rc = SR_FAIL(SR_EIO, "rename %s -> %s: %s", tmp, path, strerror(errno));
  if (rc != SR_OK) {
    unlink(tmp);
    return rc;
  }
  char dir[SR_PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  return fsync_path(dirname(dir), O_RDONLY | O_DIRECTORY);
}

int sr_write_file_atomic(const char *path, const void *data, size_t len) {
  char tmp[SR_PATH_MAX + 32];
  temp_path(path, tmp, sizeof tmp);
  FILE *f = fopen(tmp, "wb");
  if (!f) return SR_FAIL(SR_EIO, "cannot create %s: %s", tmp, strerror(errno));
  size_t written = fwrite(data, 1, len, f);
  int close_rc = fclose(f);
  if (written != len || close_rc != 0) {
    int rc = SR_FAIL(SR_EIO, "cannot write %s: %s", path, strerror(errno));
    unlink(tmp);
    return rc;
  }
  return commit_file(tmp, path);
}

int sr_has_suffix(const char *name, const char *suffix) {
  size_t n = strlen(name), m = strlen(suffix);
  return n >= m && strcmp(name + n - m, suffix) == 0;
}

int sr_same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* checkpoint_dir.c — checkpoint naming, pointers, retention and resume discovery (checkpoint_dir.h). */
#include "shardrec/checkpoint_dir.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shardrec/config.h"
#include "shardrec/error.h"
#include "shardrec/fsutil.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"

#define NAME_PREFIX "ckpt-"
#define NAME_SUFFIX ".h5"

void sr_ckptdir_path(const char *dir, int64_t step, char *buf, size_t bufsize) {
  snprintf(buf, bufsize, "%s/" NAME_PREFIX "%010lld" NAME_SUFFIX, dir, (long long)step);
}

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static int is_checkpoint_name(const char *name) {
  size_t n = strlen(name), p = strlen(NAME_PREFIX), s = strlen(NAME_SUFFIX);
  return n > p + s && strncmp(name, NAME_PREFIX, p) == 0 && strcmp(name + n - s, NAME_SUFFIX) == 0;
}

/* The file name a pointer holds ("" when the pointer does not exist). */
static void read_pointer(const char *dir, const char *pointer, char *name, size_t n) {
  char path[SR_PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/%s", dir, pointer);
  name[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f) return;
  if (fgets(name, (int)n, f)) name[strcspn(name, "\r\n")] = '\0';
  fclose(f);
}

static int write_pointer(const char *dir, const char *pointer, const char *name) {
  char path[SR_PATH_MAX + 16], line[SR_PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, pointer);
  int len = snprintf(line, sizeof line, "%s\n", name);
  return sr_write_file_atomic(path, line, (size_t)len);
}

/* The pid of a temporary "<name>.tmp.<pid>", or 0 for any other name. */
static long temporary_pid(const char *name) {
  const char *tag = strstr(name, ".tmp.");
  if (!tag) return 0;
  char *end;
  long pid = strtol(tag + 5, &end, 10);
  return *end == '\0' && end != tag + 5 && pid > 0 ? pid : 0;
}

/* Creating (and removing) a file is the only test of writability that holds
 * for root and for read-only mounts alike. */
static int check_writable(const char *dir) {
  char probe[SR_PATH_MAX + 64];
  snprintf(probe, sizeof probe, "%s/.write-test.%ld", dir, (long)getpid());
  FILE *f = fopen(probe, "w");
  if (!f) return SR_FAIL(SR_EIO, "checkpoint directory %s is not writable: %s", dir, strerror(errno));
  fclose(f);
  unlink(probe);
  return SR_OK;
}

static int clean_stale(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return errno == ENOENT ? SR_OK : SR_FAIL(SR_EIO, "cannot list %s: %s", dir, strerror(errno));
  int rc = SR_OK;
  for (struct dirent *e; (e = readdir(d)) != NULL && rc == SR_OK;) {
    const long pid = temporary_pid(e->d_name);
    if (pid == 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* not one, or its writer lives */
    char path[SR_PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (unlink(path) == 0)
      sr_info("removed %s, left by process %ld (killed while writing)", path, pid);
    else if (errno != ENOENT)
      rc = SR_FAIL(SR_EIO, "cannot remove the stale temporary %s: %s", path, strerror(errno));
  }
  closedir(d);
  return rc;
}

int sr_ckptdir_prepare(const char *dir) {
  SR_TRY(sr_mkdir_p(dir));
  SR_TRY(check_writable(dir));
  return clean_stale(dir);
}

static int compare_desc(const void *a, const void *b) { return strcmp(*(char *const *)b, *(char *const *)a); }

/* Checkpoint file names in dir, newest first (names sort by step). */
static int list_checkpoints(const char *dir, char ***names, int *n) {
  *names = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return errno == ENOENT ? SR_OK : SR_FAIL(SR_EIO, "cannot list %s: %s", dir, strerror(errno));
  size_t cap = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (!is_checkpoint_name(e->d_name)) continue;
    sr_grow(names, &cap, (size_t)*n + 1);
    (*names)[(*n)++] = sr_strdup(e->d_name);
  }
  closedir(d);
  if (*n > 1) qsort(*names, (size_t)*n, sizeof **names, compare_desc);
  return SR_OK;
}

static void free_names(char **names, int n) {
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
}

int sr_ckptdir_has_checkpoints(const char *dir) {
  char latest[SR_PATH_MAX], **names;
  int n;
  read_pointer(dir, "latest", latest, sizeof latest);
  if (latest[0]) return 1;
  if (list_checkpoints(dir, &names, &n) != SR_OK) return 0;
  free_names(names, n);
  return n > 0;
}

int sr_ckptdir_clear(const char *dir) {
  char **names;
  int n;
  SR_TRY(list_checkpoints(dir, &names, &n));
  int rc = SR_OK;
  const char *pointers[2] = {"latest", "best"};
  for (int i = 0; i < n + 2 && rc == SR_OK; i++) {
    char path[SR_PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/%s", dir, i < n ? names[i] : pointers[i - n]);
    if (unlink(path) != 0 && errno != ENOENT) rc = SR_FAIL(SR_EIO, "cannot remove %s: %s", path, strerror(errno));
  }
  free_names(names, n);
  return rc;
}

int sr_ckptdir_forget_best(const char *dir) {
  char path[SR_PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/best", dir);
  if (unlink(path) != 0 && errno != ENOENT) return SR_FAIL(SR_EIO, "cannot remove %s: %s", path, strerror(errno));
  return SR_OK;
}

/* Whether retention may delete `name`: a file of this run (the run id it
 * records is run_id). Files of other runs, and files that do not say (an
 * older shardrec's, or unreadable), are never deleted. */
static int belongs_to_run(const char *dir, const char *name, const char *run_id) {
  char path[SR_PATH_MAX + 300], theirs[SR_RUN_ID_SIZE];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (sr_checkpoint_read_run_id(path, theirs, sizeof theirs) != SR_OK) {
    sr_warn("retention keeps %s: %s", path, sr_error_message());
    return 0;
  }
  return run_id[0] && strcmp(theirs, run_id) == 0;
}

int sr_ckptdir_commit(const char *dir, const char *path, int is_best, int keep_last, const char *run_id) {
  const char *name = base_name(path);
  SR_TRY(write_pointer(dir, "latest", name));
  if (is_best) SR_TRY(write_pointer(dir, "best", name));
  char best[SR_PATH_MAX], **names;
  int n;
  read_pointer(dir, "best", best, sizeof best);
  SR_TRY(list_checkpoints(dir, &names, &n));
  int rc = SR_OK;
  /* names[] is newest first; `ours` counts this run's files seen so far. */
  for (int i = 0, ours = 0; i < n && rc == SR_OK; i++) {
    if (strcmp(names[i], name) == 0) {
      ours++;
      continue;
    }
    if (!belongs_to_run(dir, names[i], run_id) || ++ours <= keep_last || strcmp(names[i], best) == 0) continue;
    char victim[SR_PATH_MAX + 64];
    snprintf(victim, sizeof victim, "%s/%s", dir, names[i]);
    if (unlink(victim) != 0 && errno != ENOENT) rc = SR_FAIL(SR_EIO, "cannot remove %s: %s", victim, strerror(errno));
  }
  free_names(names, n);
  return rc;
}

/* Tries one candidate; on failure logs why and returns the error. */
static int try_resume(const char *path, sr_model *m, sr_optim *o, sr_train_state *state) {
  int rc = sr_checkpoint_read_training(path, m, o, state);
  if (rc != SR_OK) sr_warn("skipping checkpoint %s: %s", path, sr_error_message());
  return rc;
}

int sr_ckptdir_resume(const char *dir, const char *which, sr_model *m, sr_optim *o, sr_train_state *state,
                      char *chosen, size_t chosen_size) {
  if (strcmp(which, "auto") != 0) {
    snprintf(chosen, chosen_size, "%s", which);
    return sr_checkpoint_read_training(which, m, o, state);
  }
  char latest[SR_PATH_MAX], **names;
  int n;
  read_pointer(dir, "latest", latest, sizeof latest);
  SR_TRY(list_checkpoints(dir, &names, &n));
  chosen[0] = '\0';
  if (!latest[0] && n == 0) return SR_OK; /* nothing written yet: a fresh start */
  int rc = SR_EIO;
  /* `latest` first (it is what the run last committed), then newest first. */
  for (int i = -1; i < n && rc != SR_OK; i++) {
    const char *name = i < 0 ? latest : names[i];
    if (!name[0] || (i >= 0 && strcmp(name, latest) == 0)) continue;
    snprintf(chosen, chosen_size, "%s/%s", dir, name);
    rc = try_resume(chosen, m, o, state);
  }
  free_names(names, n);
  if (rc != SR_OK) return SR_FAIL(SR_EIO, "--resume auto: no loadable checkpoint in %s", dir);
  return SR_OK;
}

/*
 * fsutil.h — file-system helpers for "nothing lost" writes: every output file
 * is written under a temporary name, fsync'ed, renamed over the final name and
 * the directory fsync'ed, so a crash leaves either the old or the new file.
 */
#ifndef SHARDREC_FSUTIL_H
#define SHARDREC_FSUTIL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* mkdir -p; errors name the component that failed. */
int sr_mkdir_p(const char *path);
/* "<path>.tmp.<pid>" into buf. */
void sr_temp_path(const char *path, char *buf, size_t bufsize);
/* fsync(tmp), rename(tmp, path), fsync(dirname(path)). On failure tmp is removed. */
int sr_commit_file(const char *tmp, const char *path);
/* Writes `len` bytes atomically to path (temp + sr_commit_file). */
int sr_write_file_atomic(const char *path, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif

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

/* Longest path the library builds or accepts (bytes, with the terminator). */
#define SR_PATH_MAX 1024

/* mkdir -p; errors name the component that failed. */
int sr_mkdir_p(const char *path);
/* Writes `len` bytes atomically to path: to "<path>.tmp.<pid>", fsync, rename
 * over path, fsync of the directory. On failure the temporary file is removed
 * and path is untouched. */
int sr_write_file_atomic(const char *path, const void *data, size_t len);
/* 1 when both paths exist and name the same file (hard links, ./, symlinks
 * included), else 0: an output that would replace one of its inputs. */
int sr_same_file(const char *a, const char *b);
/* Whether the file name name ends in suffix (".h5"): the format it asks for. */
int sr_has_suffix(const char *name, const char *suffix);

#ifdef __cplusplus
}
#endif
#endif

/*
 * h5zstd_filter.c — the zstd HDF5 filter function (id 32015).
 *
 * Byte-compatible with hdf5plugin's zstd filter that h5py users load: a chunk
 * is stored as one zstd frame (with its content size in the header) and
 * cd_values[0], when present, is the compression level. This file needs only
 * HDF5 headers and libzstd, so it is compiled both into libshardrec
 * (registered in-process by h5zstd.c) and into the standalone plugin module.
 */
#include <hdf5.h>
#include <stdlib.h>
#include <zstd.h>

#include "shardrec/h5zstd.h"

#define SR_ZSTD_DEFAULT_LEVEL 3

/* HDF5 filter callback: returns the new data size, or 0 on failure (HDF5 then
 * reports the failing dataset and chunk). *buf is replaced by a malloc'd buffer. */
static size_t zstd_filter(unsigned int flags, size_t cd_nelmts, const unsigned int cd_values[], size_t nbytes,
                          size_t *buf_size, void **buf) {
  if (flags & H5Z_FLAG_REVERSE) {
    unsigned long long size = ZSTD_getFrameContentSize(*buf, nbytes);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) return 0;
    void *out = malloc(size ? (size_t)size : 1);
    if (!out) return 0;
    size_t got = ZSTD_decompress(out, (size_t)size, *buf, nbytes);
    if (ZSTD_isError(got) || got != size) {
      free(out);
      return 0;
    }
    free(*buf);
    *buf = out;
    *buf_size = (size_t)size;
    return got;
  }
  int level = cd_nelmts > 0 ? (int)cd_values[0] : SR_ZSTD_DEFAULT_LEVEL;
  size_t bound = ZSTD_compressBound(nbytes);
  void *out = malloc(bound);
  if (!out) return 0;
  size_t got = ZSTD_compress(out, bound, *buf, nbytes, level);
  if (ZSTD_isError(got)) {
    free(out);
    return 0;
  }
  free(*buf);
  *buf = out;
  *buf_size = bound;
  return got;
}

const H5Z_class2_t sr_h5zstd_class = {
    H5Z_CLASS_T_VERS,                 /* version of this struct */
    (H5Z_filter_t)SR_H5Z_FILTER_ZSTD, /* filter id */
    1,                                /* encoder present */
    1,                                /* decoder present */
    "zstd (shardrec, hdf5plugin-compatible)",
    NULL, /* can_apply */
    NULL, /* set_local */
    zstd_filter,
};

/* h5zstd.c — registers the zstd filter with the running HDF5 library. */
#include "shardrec/h5zstd.h"

#include <hdf5.h>

#include "shardrec/error.h"

extern const H5Z_class2_t sr_h5zstd_class;

int sr_h5zstd_register(void) {
  htri_t avail = H5Zfilter_avail(SR_H5Z_FILTER_ZSTD);
  if (avail > 0) return SR_OK;
  if (H5Zregister(&sr_h5zstd_class) < 0)
    return SR_FAIL(SR_EFORMAT, "cannot register the zstd HDF5 filter (id %d)", SR_H5Z_FILTER_ZSTD);
  return SR_OK;
}

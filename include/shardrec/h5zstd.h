/*
 * h5zstd.h — the zstd HDF5 filter (registered id 32015), compatible with the
 * one hdf5plugin ships for h5py: each chunk is one zstd frame, cd_values[0] is
 * the compression level. The same source is built into the library (registered
 * in-process) and into a standalone plugin .so for h5dump/h5ls
 * (HDF5_PLUGIN_PATH).
 */
#ifndef SHARDREC_H5ZSTD_H
#define SHARDREC_H5ZSTD_H

#ifdef __cplusplus
extern "C" {
#endif

#define SR_H5Z_FILTER_ZSTD 32015

/* Registers the filter with the running HDF5 library (idempotent). */
int sr_h5zstd_register(void);

#ifdef __cplusplus
}
#endif
#endif

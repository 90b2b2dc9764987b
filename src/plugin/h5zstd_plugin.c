/*
 * h5zstd_plugin.c — entry points that make the zstd filter loadable by any
 * HDF5 tool: HDF5_PLUGIN_PATH=<build>/plugins h5dump file.h5
 */
#include <H5PLextern.h>

extern const H5Z_class2_t sr_h5zstd_class;

H5PL_type_t H5PLget_plugin_type(void) { return H5PL_TYPE_FILTER; }
const void *H5PLget_plugin_info(void) { return &sr_h5zstd_class; }

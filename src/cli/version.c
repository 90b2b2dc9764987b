/* version.c — `shardrec --version`: what this binary is and the libraries it runs with. */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>
#include <zstd.h>

#include "commands.h"
#include "shardrec/blas.h"

/* build_info.c, generated at build time (cmake/build_info.cmake). */
extern const char *const sr_build_commit;
extern const char *const sr_build_type;
/* libopenblas's build description ("OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY ..."). */
extern char *openblas_get_config(void);

/* MPI's library version is one or more lines ("Open MPI v4.1.4, package: ...");
 * the first is the one that names it. MPI allows the call before MPI_Init. */
static void mpi_version(char *buf, size_t cap) {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  if (MPI_Get_library_version(text, &len) != MPI_SUCCESS) len = 0;
  text[len < (int)sizeof text ? len : (int)sizeof text - 1] = '\0';
  text[strcspn(text, "\n,")] = '\0';
  snprintf(buf, cap, "%s", text[0] ? text : "unknown");
}

void sr_cli_print_version(FILE *out) {
  unsigned h5_major = 0, h5_minor = 0, h5_release = 0;
  H5get_libversion(&h5_major, &h5_minor, &h5_release);
  char mpi[256];
  mpi_version(mpi, sizeof mpi);
  const char *blas_config = openblas_get_config();
  fprintf(out, "shardrec %s\n", SHARDREC_VERSION);
  fprintf(out, "  commit    %s\n", sr_build_commit);
  fprintf(out, "  build     %s\n", sr_build_type);
  fprintf(out, "  MPI       %s\n", mpi);
  fprintf(out, "  HDF5      %u.%u.%u\n", h5_major, h5_minor, h5_release);
  fprintf(out, "  zstd      %s\n", ZSTD_versionString());
  fprintf(out, "  libyaml   %s\n", yaml_get_version_string());
  fprintf(out, "  OpenBLAS  %s (core %s)\n", blas_config ? blas_config : "unknown", sr_blas_core_name());
}

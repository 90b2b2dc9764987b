/* blas.c — OpenBLAS kernel selection and threading (blas.h). */
#include "shardrec/blas.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

/* Not in Debian's cblas.h for every flavour; provided by libopenblas. */
extern char *openblas_get_corename(void);
extern void openblas_set_num_threads(int);
extern int openblas_get_num_threads(void);

static const char *better_coretype(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return "SKYLAKEX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "HASWELL";
#endif
  return NULL;
}

void sr_blas_select_kernel(char **argv) {
  if (getenv("OPENBLAS_CORETYPE")) return; /* the user's or the site's choice */
  const char *autotune = getenv("SHARDREC_BLAS_AUTOTUNE");
  if (autotune && autotune[0] == '0') return;
  if (strcasecmp(sr_blas_core_name(), "Prescott") != 0) return; /* OpenBLAS knows this CPU */
  const char *core = better_coretype();
  if (!core) return;
  setenv("OPENBLAS_CORETYPE", core, 1);
  execv("/proc/self/exe", argv);
  /* Still here: the exec failed. Keep the slow kernels rather than fail. */
  fprintf(stderr, "warning: could not re-execute with OPENBLAS_CORETYPE=%s; dense math uses generic kernels\n", core);
  unsetenv("OPENBLAS_CORETYPE");
}

const char *sr_blas_core_name(void) {
  const char *name = openblas_get_corename();
  return name ? name : "unknown";
}

void sr_blas_set_threads(int n) {
  openblas_set_num_threads(n > 0 ? n : 1);
  omp_set_num_threads(n > 0 ? n : 1);
}
int sr_blas_get_threads(void) { return openblas_get_num_threads(); }

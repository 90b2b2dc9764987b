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
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq"))
    return "SKYLAKEX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "HASWELL";
#endif
  return NULL;
}

/* OPENBLAS_CORETYPE to set, or NULL: only when the user or site set none and
 * OpenBLAS fell back to Prescott on a CPU that can do better. */
static const char *coretype_to_set(void) {
  if (getenv("OPENBLAS_CORETYPE")) return NULL;                      /* the user's or the site's choice */
  if (strcasecmp(sr_blas_core_name(), "Prescott") != 0) return NULL; /* OpenBLAS knows this CPU */
  return better_coretype();
}

void sr_blas_configure_process(char **argv) {
  const char *autotune = getenv("SHARDREC_BLAS_AUTOTUNE");
  if ((autotune && autotune[0] == '0') || getenv("SHARDREC_CONFIGURED")) return;
  const char *core = coretype_to_set();
  /* OpenBLAS's and OpenMP's thread pools share the cores: OpenMP threads that
   * spin after a parallel loop (libgomp's default) steal them from the next
   * GEMM. Passive waiting made a Mult-VAE step ~15% faster (bench_vae). */
  int set_wait_policy = getenv("OMP_WAIT_POLICY") == NULL;
  /* OpenBLAS's idle workers likewise poll (sched_yield) for 2^28 cycles,
   * ~0.1 s, after each threaded call before they sleep: on a shared node
   * that is CPU time taken from the other processes (and counted as ours).
   * 2^4 cycles: they sleep at once; waking them costs microseconds, next to
   * milliseconds for the GEMMs that use them. */
  int set_thread_timeout = getenv("OPENBLAS_THREAD_TIMEOUT") == NULL;
  if (!core && !set_wait_policy && !set_thread_timeout) return;
  if (core) setenv("OPENBLAS_CORETYPE", core, 1);
  if (set_wait_policy) setenv("OMP_WAIT_POLICY", "passive", 1);
  if (set_thread_timeout) setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
  setenv("SHARDREC_CONFIGURED", "1", 1); /* once: the new image must not loop */
  execv("/proc/self/exe", argv);
  /* Still here: the exec failed. Run as we are rather than fail. */
  fprintf(stderr, "warning: could not re-execute with tuned OpenBLAS/OpenMP settings; dense math may be slower\n");
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

/* lapack.c — LAPACK through OpenBLAS's Fortran interface (lapack.h). */
#include "shardrec/lapack.h"

#include <limits.h>

#include "shardrec/error.h"

/* OpenBLAS implements these in C without the hidden string-length
 * arguments of gfortran's calling convention; integers are 32-bit in
 * Debian's libopenblas (libopenblas64 is the 64-bit one). */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
extern void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info);

int sr_spd_inverse_lower(double *a, int64_t n, int64_t *minor) {
  *minor = 0;
  if (n > INT_MAX)
    return SR_FAIL(SR_EINVAL, "a %lld x %lld matrix is beyond LAPACK's 32-bit sizes", (long long)n, (long long)n);
  /* A row-major lower triangle is the column-major upper one. */
  const char uplo = 'U';
  const int N = (int)n;
  int info = 0;
  dpotrf_(&uplo, &N, a, &N, &info);
  if (info > 0) {
    *minor = info;
    return SR_FAIL(SR_ENUMERIC, "the matrix is not positive definite (leading minor of order %d)", info);
  }
  if (info == 0) dpotri_(&uplo, &N, a, &N, &info);
  if (info != 0) return SR_FAIL(SR_ENUMERIC, "LAPACK dpotrf/dpotri failed (info %d)", info);
  return SR_OK;
}

/*
 * lapack.h — the LAPACK routines shardrec uses, from the LAPACK that
 * OpenBLAS ships (Debian's libopenblas exports the Fortran symbols dpotrf_
 * and dpotri_, with 32-bit integers, and no LAPACKE header).
 */
#ifndef SHARDREC_LAPACK_H
#define SHARDREC_LAPACK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Inverts the symmetric positive-definite n x n matrix a (row-major, leading
 * dimension n) in place, by Cholesky factorisation (dpotrf) and inversion
 * from the factor (dpotri). Only the lower triangle (j <= i) is read, and on
 * success it holds the inverse's lower triangle; the upper one is not
 * touched. Returns SR_OK, or SR_ENUMERIC when a is not positive definite
 * (*minor: the order of the first leading minor that is not), SR_EINVAL when
 * n exceeds LAPACK's 32-bit integers. */
int sr_spd_inverse_lower(double *a, int64_t n, int64_t *minor);

#ifdef __cplusplus
}
#endif
#endif

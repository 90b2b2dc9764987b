/*
 * blas.h — OpenBLAS kernel selection and threading.
 *
 * Debian's OpenBLAS 0.3.21 does not recognise recent AVX-512 Xeons and falls
 * back to its generic "Prescott" kernels, 4-5x slower for every dense layer
 * (../shared/toolchain-notes.md). OpenBLAS reads OPENBLAS_CORETYPE only when it
 * loads, so sr_blas_configure_process() re-executes the program once with the
 * variable set when (a) it is not set already — a value set by the user or the
 * site is never overridden, some machines set it because a kernel is wrong
 * there — and (b) OpenBLAS chose Prescott on a CPU that has AVX-512 (SKYLAKEX)
 * or AVX2+FMA (HASWELL). The same re-execution sets OMP_WAIT_POLICY=passive
 * when unset (OpenMP threads must not spin on cores OpenBLAS needs).
 * SHARDREC_BLAS_AUTOTUNE=0 disables it.
 */
#ifndef SHARDREC_BLAS_H
#define SHARDREC_BLAS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Call first thing in main(), before MPI_Init and before any thread starts.
 * Returns only if no re-exec was needed (or the exec failed, which is logged). */
void sr_blas_configure_process(char **argv);
/* The OpenBLAS core in use, e.g. "SkylakeX". */
const char *sr_blas_core_name(void);
/* Threads for dense math: OpenBLAS's and our own OpenMP loops (nn.c, optim.c). */
void sr_blas_set_threads(int n);
int sr_blas_get_threads(void);

#ifdef __cplusplus
}
#endif
#endif

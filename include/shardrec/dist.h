/*
 * dist.h — the distributed runtime over MPI (CPU reference path).
 *
 * Rank and size always come from MPI, never from environment variables. A
 * failure on any rank ends the whole job: errors are printed by the failing
 * rank (with its rank number) and sr_dist_abort() calls MPI_Abort, which
 * mpirun/srun turn into the termination of every rank — no rank waits forever
 * in a collective for a peer that died.
 */
#ifndef SHARDREC_DIST_H
#define SHARDREC_DIST_H

#include <mpi.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int rank, size;
  MPI_Comm comm;
} sr_dist;

/* Initialises MPI (if not yet) and the world context; configures rank-aware
 * logging and makes fatal errors abort the job. Fails with a clear message,
 * before MPI_Init, in tasks that srun started without an MPI plugin (srun
 * --mpi=none; under Open MPI even a single task, which its MPI_Init would
 * end), and after it if SLURM_NTASKS > 1 but MPI reports a single process
 * (N unrelated singletons). */
int sr_dist_init(int *argc, char ***argv, sr_dist *d);
/* A single-process context on MPI_COMM_SELF (reference runs in tests, tools). */
void sr_dist_self(sr_dist *d);
void sr_dist_finalize(void);
/* Ends the job: MPI_Abort on the context's communicator (exit code `code`). */
__attribute__((noreturn)) void sr_dist_abort(const sr_dist *d, int code);

/* Sums buf[0..n) over the ranks, in place. */
int sr_dist_sum_f64(const sr_dist *d, double *buf, int n);
int sr_dist_sum_i64(const sr_dist *d, int64_t *buf, int n);
int sr_dist_sum_f32(const sr_dist *d, float *buf, int64_t n);
/* The largest buf[0..n) over the ranks, in place. */
int sr_dist_max_i64(const sr_dist *d, int64_t *buf, int n);
/* all[r * n + k] = rank r's mine[k], k < n, on every rank. */
int sr_dist_allgather_i64(const sr_dist *d, const int64_t *mine, int n, int64_t *all);
/* Point-to-point float transfers (n <= INT_MAX): streaming tensor slices to
 * the rank that writes a file. */
int sr_dist_send_f32(const sr_dist *d, int dest, const float *buf, int64_t n);
int sr_dist_recv_f32(const sr_dist *d, int source, float *buf, int64_t n);
/* Element-wise maximum of buf[0..n) over the ranks, in place. */
int sr_dist_max_i64(const sr_dist *d, int64_t *buf, int n);
/* Fails (on every rank) unless all ranks hold the same 64-bit hash of
 * data[0..bytes) (a replica check, not an integrity check); `what` names it
 * in the message, which lists the first mismatching rank. */
int sr_dist_check_identical(const sr_dist *d, const void *data, size_t bytes, const char *what);
/* *n = how many ranks of d share this rank's node (shared memory). Collective. */
int sr_dist_node_size(const sr_dist *d, int *n);
/* Fails on every rank if `local_rc` is an error on any rank; keeps ranks in
 * step after work that may fail on some of them only (e.g. reading a shard).
 * On failure rank 0's message becomes every failed rank's message, each
 * naming its rank ("rank 1: ...; ranks 2, 3: ..."), other failed ranks keep
 * their own, the others say which rank failed; the error is marked agreed
 * (error.h) on every rank, so that rank 0 alone reports it and the job ends
 * normally. */
int sr_dist_agree(const sr_dist *d, int local_rc);

#ifdef __cplusplus
}
#endif
#endif

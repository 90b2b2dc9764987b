/*
 * dist_internal.h — how the library's MPI calls report failures, shared by
 * the files that talk to MPI directly (dist.c, exchange.c, grad_reduce.c). Not installed:
 * the public interface is dist.h.
 */
#ifndef SHARDREC_DIST_INTERNAL_H
#define SHARDREC_DIST_INTERNAL_H

#include <mpi.h>

/* Records "<what> failed: <MPI's message for mpi_rc>" as SR_EDIST and
 * returns SR_EDIST. */
int sr_mpi_fail(int mpi_rc, const char *what);

/* Evaluates an MPI call once; returns sr_mpi_fail(...) unless it succeeded.
 * The communicators use MPI_ERRORS_RETURN (sr_dist_init), so failures do
 * come back as codes. */
#define MPI_TRY(call, what)                                        \
  do {                                                             \
    int mpi_rc_ = (call);                                          \
    if (mpi_rc_ != MPI_SUCCESS) return sr_mpi_fail(mpi_rc_, what); \
  } while (0)

#endif

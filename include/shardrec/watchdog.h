/*
 * watchdog.h — stall detection while training (dist.stall_timeout_s).
 *
 * Each rank tells the watchdog where it is: the optimizer step and the phase
 * of it (sr_watchdog_mark), and beats within long phases (an evaluation
 * batch, a checkpoint tensor). A thread per rank notices when its rank has
 * made no progress for the timeout (stuck I/O, a deadlocked collective, a
 * peer that died without MPI noticing). Rank 0's thread then asks every rank
 * where it is, over a communicator of its own (the watchdog needs
 * MPI_THREAD_MULTIPLE, which sr_dist_init asks for), waits a few seconds for
 * the answers, reports in one message which ranks have not reached the phase
 * the furthest ranks wait in (and which did not answer), and aborts the job
 * with exit status SR_EXIT_STALLED. A rank that rank 0 never asks (rank 0 is
 * gone) reports itself and aborts after twice the timeout. Without
 * MPI_THREAD_MULTIPLE every rank reports only itself.
 */
#ifndef SHARDREC_WATCHDOG_H
#define SHARDREC_WATCHDOG_H

#include <stdint.h>

#include "shardrec/dist.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Exit status of a job the watchdog ended (as timeout(1) reports a timeout). */
#define SR_EXIT_STALLED 124

/* The phases, in the order a rank passes them: with the optimizer steps done
 * so far, they order the ranks' positions. Validation and checkpoints come
 * after a step's update, before the next step. */
typedef enum {
  SR_PHASE_VALIDATE,
  SR_PHASE_CHECKPOINT,
  SR_PHASE_COMPUTE, /* forward/backward of a step */
  SR_PHASE_REDUCE,  /* its gradient and loss reductions */
  SR_PHASE_UPDATE,  /* its optimizer update */
  SR_PHASE_COUNT
} sr_phase;

/* Starts watching this process's rank of d (collective): no progress for
 * timeout_s seconds ends the job; timeout_s <= 0 watches nothing. */
int sr_watchdog_start(const sr_dist *d, double timeout_s);
/* The rank is at `phase`, with `steps_done` optimizer steps done. */
void sr_watchdog_mark(int64_t steps_done, sr_phase phase);
/* Progress within the current phase. */
void sr_watchdog_beat(void);
/* Stops watching (collective over the d of sr_watchdog_start). */
void sr_watchdog_stop(void);

#ifdef __cplusplus
}
#endif
#endif

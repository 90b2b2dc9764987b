/* watchdog.c — stall detection while training (watchdog.h). */
#include "shardrec/watchdog.h"

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dist_internal.h"
#include "shardrec/error.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"

enum { TAG_QUERY = 1, TAG_ANSWER = 2 };
/* How long rank 0 waits for the ranks' answers before reporting without them. */
#define ANSWER_WINDOW_S 5.0

static const char *const phase_names[SR_PHASE_COUNT] = {"validation", "checkpoint", "forward/backward",
                                                        "gradient reduction", "optimizer update"};

/* One watchdog per process: the rank's position is written by the training
 * thread and read by the watchdog thread (atomics); the rest is set before
 * the thread starts and after it ends. */
static struct {
  int running, rank, size;
  int can_ask; /* MPI_THREAD_MULTIPLE: the watchdog thread may use MPI */
  MPI_Comm comm;
  double timeout_s;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  int stopping;
  _Atomic int64_t position; /* steps done * SR_PHASE_COUNT + phase */
  _Atomic int64_t last_progress_ns;
} wd = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void sr_watchdog_beat(void) { atomic_store_explicit(&wd.last_progress_ns, now_ns(), memory_order_relaxed); }

void sr_watchdog_mark(int64_t steps_done, sr_phase phase) {
  atomic_store_explicit(&wd.position, steps_done * SR_PHASE_COUNT + phase, memory_order_relaxed);
  sr_watchdog_beat();
}

static double idle_seconds(void) {
  return 1e-9 * (double)(now_ns() - atomic_load_explicit(&wd.last_progress_ns, memory_order_relaxed));
}

/* "step 4 gradient reduction" (the 4th step in progress), "validation after step 12". */
static void describe(int64_t position, char *buf, size_t n) {
  const long long steps = position / SR_PHASE_COUNT;
  const int phase = (int)(position % SR_PHASE_COUNT);
  if (phase >= SR_PHASE_COMPUTE)
    snprintf(buf, n, "step %lld %s", steps + 1, phase_names[phase]);
  else
    snprintf(buf, n, "%s after step %lld", phase_names[phase], steps);
}

_Noreturn static void abort_job(void) {
  fflush(stdout);
  fflush(stderr);
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, SR_EXIT_STALLED);
  _exit(SR_EXIT_STALLED); /* a process without MPI (the training thread may be blocked) */
}

/* A rank that cannot learn where the others are reports only itself. */
_Noreturn static void report_self(const char *why) {
  char where[96];
  describe(atomic_load(&wd.position), where, sizeof where);
  sr_log(SR_LOG_ERROR, "training stalled: rank %d made no progress for %.0f s at %s (dist.stall_timeout_s: %g)%s; "
         "aborting the job", wd.rank, idle_seconds(), where, wd.timeout_s, why);
  abort_job();
}

/* Ranks > 0: answers rank 0's question, if it asked, with this rank's
 * position and idle milliseconds; returns whether it asked. */
static int answer_query(void) {
  int asked = 0, token = 0;
  if (MPI_Iprobe(0, TAG_QUERY, wd.comm, &asked, MPI_STATUS_IGNORE) != MPI_SUCCESS || !asked) return 0;
  MPI_Recv(&token, 1, MPI_INT, 0, TAG_QUERY, wd.comm, MPI_STATUS_IGNORE);
  int64_t answer[2] = {atomic_load(&wd.position), (int64_t)(idle_seconds() * 1000)};
  MPI_Send(answer, 2, MPI_INT64_T, 0, TAG_ANSWER, wd.comm);
  return 1;
}

/* Appends to buf (at *used) the ranks r with keep(r), as "rank 3" or "ranks 1, 2". */
static void list_ranks(char *buf, size_t size, size_t *used, const int *keep) {
  int n = 0;
  for (int r = 0; r < wd.size; r++) n += keep[r] != 0;
  if (*used < size) *used += (size_t)snprintf(buf + *used, size - *used, "rank%s", n > 1 ? "s" : "");
  for (int r = 0, k = 0; r < wd.size && *used < size; r++)
    if (keep[r]) *used += (size_t)snprintf(buf + *used, size - *used, "%s %d", k++ ? "," : "", r);
}

/* Rank 0: asks every rank where it is, then reports which ranks have not
 * reached the furthest position (or did not answer) and ends the job. */
_Noreturn static void report_all(void) {
  const int P = wd.size;
  int64_t *position = sr_calloc((size_t)P, sizeof *position), *answers = sr_calloc((size_t)P * 2, sizeof *answers);
  double *idle = sr_calloc((size_t)P, sizeof *idle);
  int *answered = sr_calloc((size_t)P, sizeof *answered), *mark = sr_calloc((size_t)P, sizeof *mark);
  MPI_Request *requests = sr_calloc((size_t)P * 2, sizeof *requests);
  position[0] = atomic_load(&wd.position), idle[0] = idle_seconds(), answered[0] = 1;
  int token = 0, pending = P - 1;
  for (int r = 1; r < P; r++) {
    MPI_Isend(&token, 1, MPI_INT, r, TAG_QUERY, wd.comm, &requests[2 * r]);
    MPI_Irecv(&answers[2 * r], 2, MPI_INT64_T, r, TAG_ANSWER, wd.comm, &requests[2 * r + 1]);
  }
  const int64_t deadline = now_ns() + (int64_t)(ANSWER_WINDOW_S * 1e9);
  while (pending > 0 && now_ns() < deadline) {
    for (int r = 1; r < P; r++) {
      int done = 0;
      if (answered[r] || MPI_Test(&requests[2 * r + 1], &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || !done) continue;
      answered[r] = 1, pending--;
      position[r] = answers[2 * r], idle[r] = 1e-3 * (double)answers[2 * r + 1];
    }
    nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  }
  int64_t furthest = -1;
  for (int r = 0; r < P; r++)
    if (answered[r] && position[r] > furthest) furthest = position[r];
  char msg[SR_ERROR_MAX], where[96];
  size_t used = (size_t)snprintf(msg, sizeof msg,
                                 "training stalled: no progress for %.0f s (dist.stall_timeout_s: %g); ", idle[0],
                                 wd.timeout_s);
  describe(furthest, where, sizeof where);
  for (int r = 0; r < P; r++) mark[r] = answered[r] && position[r] == furthest;
  list_ranks(msg, sizeof msg, &used, mark);
  if (used < sizeof msg) used += (size_t)snprintf(msg + used, sizeof msg - used, " reached %s", where);
  int behind = 0;
  for (int r = 0; r < P && used < sizeof msg; r++) {
    if (!answered[r] || position[r] == furthest) continue;
    describe(position[r], where, sizeof where);
    used += (size_t)snprintf(msg + used, sizeof msg - used, "%s rank %d is at %s (no progress for %.0f s)",
                             behind++ ? "," : "; behind them:", r, where, idle[r]);
  }
  for (int r = 0; r < P; r++) mark[r] = !answered[r];
  if (pending > 0 && used < sizeof msg) {
    used += (size_t)snprintf(msg + used, sizeof msg - used, "; no answer within %.0f s from ", ANSWER_WINDOW_S);
    list_ranks(msg, sizeof msg, &used, mark);
  }
  sr_log(SR_LOG_ERROR, "%s; aborting the job", msg);
  abort_job(); /* the buffers go with the process */
}

/* Every tick: answer rank 0, notice a stall, report it. */
static void check(void) {
  if (wd.can_ask && wd.rank > 0 && answer_query()) return; /* rank 0 is reporting: it ends the job */
  const double idle = idle_seconds();
  if (idle < wd.timeout_s) return;
  if (!wd.can_ask) report_self("");
  if (wd.rank == 0) report_all();
  if (idle >= 2 * wd.timeout_s + ANSWER_WINDOW_S) report_self("; rank 0 did not ask the ranks where they are");
}

static void *watch(void *unused) {
  (void)unused;
  double tick = wd.timeout_s / 4;
  if (tick > 1.0) tick = 1.0;
  pthread_mutex_lock(&wd.lock);
  while (!wd.stopping) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    const int64_t ns = until.tv_nsec + (int64_t)(tick * 1e9);
    until.tv_sec += (time_t)(ns / 1000000000), until.tv_nsec = (long)(ns % 1000000000);
    pthread_cond_timedwait(&wd.wake, &wd.lock, &until);
    if (wd.stopping) break;
    pthread_mutex_unlock(&wd.lock);
    check();
    pthread_mutex_lock(&wd.lock);
  }
  pthread_mutex_unlock(&wd.lock);
  return NULL;
}

int sr_watchdog_start(const sr_dist *d, double timeout_s) {
  if (timeout_s <= 0 || wd.running) return SR_OK;
  wd.rank = d->rank, wd.size = d->size, wd.timeout_s = timeout_s, wd.can_ask = 0, wd.stopping = 0;
  if (d->size > 1) {
    int level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&level);
    wd.can_ask = level == MPI_THREAD_MULTIPLE;
    MPI_TRY(MPI_Comm_dup(d->comm, &wd.comm), "MPI_Comm_dup");
  }
  sr_watchdog_beat();
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&wd.wake, &attr);
  pthread_condattr_destroy(&attr);
  int rc = pthread_create(&wd.thread, NULL, watch, NULL);
  if (rc != 0) {
    pthread_cond_destroy(&wd.wake);
    if (d->size > 1) MPI_Comm_free(&wd.comm);
    return SR_FAIL(SR_EDIST, "cannot start the stall watchdog thread: %s", strerror(rc));
  }
  wd.running = 1;
  return SR_OK;
}

void sr_watchdog_stop(void) {
  if (!wd.running) return;
  pthread_mutex_lock(&wd.lock);
  wd.stopping = 1;
  pthread_cond_signal(&wd.wake);
  pthread_mutex_unlock(&wd.lock);
  pthread_join(wd.thread, NULL);
  pthread_cond_destroy(&wd.wake);
  if (wd.size > 1) MPI_Comm_free(&wd.comm);
  wd.running = 0;
}

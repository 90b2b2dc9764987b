/* dist.c — MPI runtime: init, abort-on-failure, small collectives (dist.h). */
#include "shardrec/dist.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist_internal.h"
#include "shardrec/error.h"
#include "shardrec/hash.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"

static void abort_job(int exit_code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, exit_code); /* every job runs on the world */
}

int sr_mpi_fail(int mpi_rc, const char *what) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(mpi_rc, msg, &len);
  return SR_FAIL(SR_EDIST, "%s failed: %s", what, msg);
}

/* Tasks that Slurm started but that MPI cannot join into one job. */
static int slurm_launch_failure(const char *ntasks, const char *what) {
  return SR_FAIL(SR_EDIST,
                 "SLURM_NTASKS=%s but %s. Launch with `srun --mpi=pmix` (Debian's Open MPI supports no other srun "
                 "PMI) or with mpirun inside the allocation",
                 ntasks, what);
}

/* True in a task of an srun step (SLURM_STEP_ID is set in steps, not in batch
 * scripts) that Slurm started without an MPI plugin (srun sets SLURM_MPI_TYPE
 * for every plugin but none) and no MPI launcher started either (mpirun and
 * hydra set PMIX_RANK or PMI_RANK). Checked before MPI_Init because Open MPI's
 * MPI_Init ends such tasks, even a single one, blaming its own build for
 * lacking PMI support: that sends users to rebuild MPI instead of fixing the
 * srun line. Other MPIs start each task as a singleton, wrong for N > 1. */
static bool slurm_step_without_pmi(const char *ntasks) {
#ifdef OPEN_MPI
  const int min_tasks = 1;
#else
  const int min_tasks = 2;
#endif
  const char *mpi_type = getenv("SLURM_MPI_TYPE");
  return ntasks && atoi(ntasks) >= min_tasks && getenv("SLURM_STEP_ID") &&
         (!mpi_type || strcmp(mpi_type, "none") == 0) && !getenv("PMIX_RANK") && !getenv("PMI_RANK");
}

int sr_dist_init(int *argc, char ***argv, sr_dist *d) {
  int initialized = 0, provided = 0;
  d->rank = 0, d->size = 1, d->comm = MPI_COMM_WORLD;
  MPI_Initialized(&initialized);
  const char *ntasks = getenv("SLURM_NTASKS");
  if (!initialized && slurm_step_without_pmi(ntasks))
    return slurm_launch_failure(ntasks,
                                "srun started the tasks without an MPI plugin (--mpi=none or MpiDefault=none)");
  /* Open MPI's non-blocking all-reduce (libnbc) picks a binomial tree by
   * default, 2.5x slower than its ring for our ~100 MB of gradients (measured:
   * 104 vs 42 ms on 2 ranks). Other MPIs ignore the variable; a value already
   * set by the user wins. */
  setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0);
  /* MPI_THREAD_MULTIPLE for the stall watchdog's thread (watchdog.h), which
   * asks the ranks where they are while the training thread may be blocked
   * in a collective; with less, the watchdog reports each rank alone. */
  if (!initialized && MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
    return SR_FAIL(SR_EDIST, "MPI_Init failed");
  MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(d->comm, &d->rank);
  MPI_Comm_size(d->comm, &d->size);
  sr_set_die_hook(abort_job);
  sr_log_configure(d->rank, d->size, 0);
  /* An MPI that does not understand the plugin srun used starts N singletons. */
  if (d->size == 1 && ntasks && getenv("SLURM_STEP_ID") && atoi(ntasks) > 1)
    return slurm_launch_failure(ntasks,
                                "MPI sees a single process: every task was started as an unrelated singleton");
  return SR_OK;
}

void sr_dist_self(sr_dist *d) {
  d->comm = MPI_COMM_SELF;
  d->rank = 0;
  d->size = 1;
}

void sr_dist_finalize(void) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

void sr_dist_abort(const sr_dist *d, int code) {
  fflush(stdout);
  fflush(stderr);
  MPI_Abort(d->comm, code);
  exit(code); /* MPI_Abort does not return; this keeps the compiler informed */
}

/* In-place reduction `op` of n elements of `type` over the ranks. */
static int reduce_in_place(const sr_dist *d, void *buf, int64_t n, MPI_Datatype type, MPI_Op op) {
  if (d->size == 1) return SR_OK;
  if (n > INT_MAX) return SR_FAIL(SR_EDIST, "all-reduce of %lld elements exceeds one MPI count", (long long)n);
  MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, type, op, d->comm), "MPI_Allreduce");
  return SR_OK;
}

int sr_dist_sum_f64(const sr_dist *d, double *buf, int n) { return reduce_in_place(d, buf, n, MPI_DOUBLE, MPI_SUM); }
int sr_dist_sum_f32(const sr_dist *d, float *buf, int64_t n) {
  return reduce_in_place(d, buf, n, MPI_FLOAT, MPI_SUM);
}
int sr_dist_sum_i64(const sr_dist *d, int64_t *buf, int n) {
  return reduce_in_place(d, buf, n, MPI_INT64_T, MPI_SUM);
}
int sr_dist_max_i64(const sr_dist *d, int64_t *buf, int n) {
  return reduce_in_place(d, buf, n, MPI_INT64_T, MPI_MAX);
}

int sr_dist_allgather_i64(const sr_dist *d, const int64_t *mine, int n, int64_t *all) {
  MPI_TRY(MPI_Allgather(mine, n, MPI_INT64_T, all, n, MPI_INT64_T, d->comm), "MPI_Allgather");
  return SR_OK;
}

int sr_dist_send_f32(const sr_dist *d, int dest, const float *buf, int64_t n) {
  SR_ASSERT(n >= 0 && n <= INT_MAX);
  MPI_TRY(MPI_Send(buf, (int)n, MPI_FLOAT, dest, 0, d->comm), "MPI_Send");
  return SR_OK;
}

int sr_dist_recv_f32(const sr_dist *d, int source, float *buf, int64_t n) {
  SR_ASSERT(n >= 0 && n <= INT_MAX);
  MPI_TRY(MPI_Recv(buf, (int)n, MPI_FLOAT, source, 0, d->comm, MPI_STATUS_IGNORE), "MPI_Recv");
  return SR_OK;
}

int sr_dist_check_identical(const sr_dist *d, const void *data, size_t bytes, const char *what) {
  if (d->size == 1) return SR_OK;
  uint64_t mine = sr_hash64(data, bytes, SR_HASH64_INIT), root = mine;
  MPI_TRY(MPI_Bcast(&root, 1, MPI_UINT64_T, 0, d->comm), "MPI_Bcast");
  int64_t first_bad = mine == root ? INT64_MAX : d->rank;
  MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, &first_bad, 1, MPI_INT64_T, MPI_MIN, d->comm), "MPI_Allreduce");
  if (first_bad != INT64_MAX)
    return SR_FAIL(SR_EDIST, "%s differs between rank 0 and rank %lld", what, (long long)first_bad);
  return SR_OK;
}

int sr_dist_node_size(const sr_dist *d, int *n) {
  *n = 1;
  if (d->size == 1) return SR_OK; /* single-process contexts work without MPI_Init */
  MPI_Comm node;
  MPI_TRY(MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
  MPI_Comm_size(node, n);
  MPI_Comm_free(&node);
  return SR_OK;
}

/* Rank 0's message after a failed agreement: each failed rank's message
 * (all[r * SR_ERROR_MAX], "" for ranks that did not fail or whose failure
 * was agreed on before), ranks with the same message named together, after
 * `before` (rank 0's agreed message of an earlier agreement, or ""). */
static void join_messages(const sr_dist *d, char *all, const char *before, int code) {
  char joined[SR_ERROR_MAX];
  size_t used = (size_t)snprintf(joined, sizeof joined, "%s", before);
  for (int r = 0; r < d->size && used < sizeof joined; r++) {
    const char *msg = all + (size_t)r * SR_ERROR_MAX;
    if (!msg[0]) continue;
    char ranks[256];
    int n_ranks = 0;
    size_t len = 0;
    for (int q = r; q < d->size; q++) { /* r and the later ranks of the same message */
      char *other = all + (size_t)q * SR_ERROR_MAX;
      if (q > r && strcmp(other, msg) != 0) continue;
      if (len < sizeof ranks) len += (size_t)snprintf(ranks + len, sizeof ranks - len, "%s%d", n_ranks ? ", " : "", q);
      n_ranks++;
      if (q > r) other[0] = '\0';
    }
    used += (size_t)snprintf(joined + used, sizeof joined - used, "%srank%s %s: %s", used ? "; " : "",
                             n_ranks > 1 ? "s" : "", ranks, msg);
  }
  SR_FAIL(code, "%s", joined);
}

int sr_dist_agree(const sr_dist *d, int local_rc) {
  if (d->size == 1) return local_rc;
  int64_t first_failed = local_rc != SR_OK ? d->rank : INT64_MAX;
  MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, &first_failed, 1, MPI_INT64_T, MPI_MIN, d->comm), "MPI_Allreduce");
  if (first_failed == INT64_MAX) return SR_OK;
  /* Failed somewhere: every new failure's message goes to rank 0 (one agreed
   * on before, passed on through a later agreement, was collected then). */
  const int agreed_before = local_rc != SR_OK && sr_error_agreed();
  char mine[SR_ERROR_MAX] = "";
  if (local_rc != SR_OK) snprintf(mine, sizeof mine, "%s", sr_error_message());
  char *all = d->rank == 0 ? sr_malloc((size_t)d->size * SR_ERROR_MAX) : NULL;
  if (agreed_before && d->rank != 0) mine[0] = '\0';
  int rc = MPI_Gather(mine, SR_ERROR_MAX, MPI_CHAR, all, SR_ERROR_MAX, MPI_CHAR, 0, d->comm);
  if (rc != MPI_SUCCESS) {
    free(all);
    return sr_mpi_fail(rc, "MPI_Gather");
  }
  const int code = local_rc != SR_OK ? local_rc : SR_EDIST;
  if (d->rank == 0) {
    if (agreed_before) all[0] = '\0';
    join_messages(d, all, agreed_before ? mine : "", code);
  } else if (local_rc == SR_OK) {
    SR_FAIL(SR_EDIST, "rank %lld failed (rank 0 reports its message)", (long long)first_failed);
  }
  free(all);
  sr_error_mark_agreed();
  return code;
}

/* grad_reduce.c — bucketed, overlapped gradient all-reduce (grad_reduce.h). */
#include "shardrec/grad_reduce.h"

#include <limits.h>
#include <stdlib.h>

#include "shardrec/error.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"

void sr_grad_reducer_init(sr_grad_reducer *r, const sr_dist *dist, sr_params *params, int64_t bucket_bytes,
                          int overlap) {
  r->dist = dist;
  r->overlap = overlap;
  r->params = params;
  r->buckets = sr_calloc((size_t)(params->count > 0 ? params->count : 1), sizeof *r->buckets);
  r->bucket_of = sr_calloc((size_t)(params->count > 0 ? params->count : 1), sizeof *r->bucket_of);
  r->n_buckets = 0;
  r->wait_seconds = r->total_seconds = 0;
  const int64_t limit = bucket_bytes / (int64_t)sizeof(float);
  sr_grad_bucket *b = NULL;
  for (int i = params->count - 1; i >= 0; i--) {
    const sr_param *p = &params->items[i];
    /* Parameters are laid out in registration order, so walking backwards
     * keeps each bucket a contiguous [begin, end) of the arena. */
    int64_t end = i == params->count - 1 ? params->total : params->items[i + 1].offset;
    if (!b || b->end - p->offset > limit) {
      b = &r->buckets[r->n_buckets++];
      b->end = end;
      b->n_params = 0;
    }
    b->begin = p->offset;
    b->n_params++;
    r->bucket_of[i] = r->n_buckets - 1;
  }
  for (int k = 0; k < r->n_buckets; k++) r->buckets[k].request = MPI_REQUEST_NULL;
}

void sr_grad_reducer_free(sr_grad_reducer *r) {
  free(r->buckets);
  free(r->bucket_of);
}

void sr_grad_reducer_begin(sr_grad_reducer *r) {
  for (int k = 0; k < r->n_buckets; k++) r->buckets[k].n_ready = 0;
  r->next_launch = 0;
  r->first_launch = 0;
}

static void launch(sr_grad_reducer *r, sr_grad_bucket *b) {
  float *data = r->params->grads + b->begin;
  int64_t n = b->end - b->begin;
  SR_ASSERT(n <= INT_MAX); /* one MPI count; buckets this large would need splitting */
  if (r->first_launch == 0) r->first_launch = sr_now();
  int rc = MPI_Iallreduce(MPI_IN_PLACE, data, (int)n, MPI_FLOAT, MPI_SUM, r->dist->comm, &b->request);
  if (rc != MPI_SUCCESS) SR_DIE("MPI_Iallreduce of a gradient bucket failed (code %d)", rc);
}

void sr_grad_reducer_ready(sr_grad_reducer *r, int index) {
  if (r->dist->size == 1 || !r->overlap) return;
  r->buckets[r->bucket_of[index]].n_ready++;
  /* Collectives must start in the same order on every rank: buckets launch
   * strictly in index order, whatever order the model finishes them in. */
  while (r->next_launch < r->n_buckets &&
         r->buckets[r->next_launch].n_ready == r->buckets[r->next_launch].n_params)
    launch(r, &r->buckets[r->next_launch++]);
  /* Open MPI progresses non-blocking collectives only inside MPI calls: give
   * the ones in flight a turn between layers. */
  for (int k = 0; k < r->n_buckets; k++) {
    if (r->buckets[k].request == MPI_REQUEST_NULL) continue;
    int done = 0;
    MPI_Test(&r->buckets[k].request, &done, MPI_STATUS_IGNORE);
  }
}

void sr_grad_reducer_ready_cb(void *reducer, int index) { sr_grad_reducer_ready(reducer, index); }

/* Without overlap: one blocking all-reduce per bucket, back to back. */
static int reduce_blocking(sr_grad_reducer *r) {
  for (int k = 0; k < r->n_buckets; k++) {
    sr_grad_bucket *b = &r->buckets[k];
    int rc = MPI_Allreduce(MPI_IN_PLACE, r->params->grads + b->begin, (int)(b->end - b->begin), MPI_FLOAT, MPI_SUM,
                           r->dist->comm);
    if (rc != MPI_SUCCESS) return SR_FAIL(SR_EDIST, "gradient all-reduce failed (MPI error %d)", rc);
  }
  return SR_OK;
}

int sr_grad_reducer_finish(sr_grad_reducer *r) {
  if (r->dist->size == 1) return SR_OK;
  double t0 = sr_now();
  if (!r->overlap) {
    int rc = reduce_blocking(r);
    r->wait_seconds += sr_now() - t0;
    r->total_seconds += sr_now() - t0;
    return rc;
  }
  while (r->next_launch < r->n_buckets) launch(r, &r->buckets[r->next_launch++]);
  for (int k = 0; k < r->n_buckets; k++) {
    int rc = MPI_Wait(&r->buckets[k].request, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return SR_FAIL(SR_EDIST, "gradient all-reduce failed (MPI error %d)", rc);
  }
  double t1 = sr_now();
  r->wait_seconds += t1 - t0;
  r->total_seconds += t1 - (r->first_launch ? r->first_launch : t0);
  return SR_OK;
}

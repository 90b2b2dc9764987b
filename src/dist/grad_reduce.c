/* grad_reduce.c — bucketed, overlapped gradient all-reduce (grad_reduce.h). */
#include "shardrec/grad_reduce.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dist_internal.h"
#include "shardrec/error.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"
#include "shardrec/nn.h"

/* Slice `part` (of P) of bucket b: equal slices, the last ones shorter. */
static sr_arena_range slice_of(const sr_grad_bucket *b, int part, int P) {
  int64_t n = b->end - b->begin, each = (n + P - 1) / P;
  int64_t lo = b->begin + part * each, hi = lo + each;
  if (lo > b->end) lo = b->end;
  if (hi > b->end) hi = b->end;
  return (sr_arena_range){lo, hi};
}

/* In a ring reduce-scatter, rank r ends with the sum of slice (r + 1) mod P. */
static int owned_slice(int rank, int P) { return (rank + 1) % P; }

sr_arena_range sr_grad_bucket_slice(const sr_grad_bucket *b, int part, int P) { return slice_of(b, part, P); }

int sr_grad_slice_owner(int part, int P) { return (part + P - 1) % P; }

void sr_grad_reducer_init(sr_grad_reducer *r, const sr_dist *dist, sr_params *params, int64_t bucket_bytes,
                          int overlap, int shard_optimizer) {
  const int n_params = params->n_dense;
  r->dist = dist;
  r->overlap = overlap && !shard_optimizer; /* the ring runs after backward */
  r->shard_optimizer = shard_optimizer;
  r->params = params;
  r->buckets = sr_calloc((size_t)(n_params > 0 ? n_params : 1), sizeof *r->buckets);
  r->bucket_of = sr_calloc((size_t)(params->count > 0 ? params->count : 1), sizeof *r->bucket_of);
  r->n_buckets = 0;
  r->wait_seconds = r->total_seconds = 0;
  r->reduced_elements = r->dense_elements = 0;
  const int64_t limit = bucket_bytes / (int64_t)sizeof(float);
  sr_grad_bucket *b = NULL;
  int bucket_alone = 0;
  for (int i = n_params - 1; i >= 0; i--) {
    const sr_param *p = &params->items[i];
    /* Parameters are laid out in registration order, so walking backwards
     * keeps each bucket a contiguous [begin, end) of the arena. */
    int64_t end = i == params->count - 1 ? params->total : params->items[i + 1].offset;
    /* A sharded tensor gets a bucket of its own: the buckets of replicated
     * tensors are then the same on every shard whatever the slices' sizes,
     * so their sums are added in the same order and the replicas of an item
     * group stay bit-identical (item_parallel.h). */
    /* So does a row-sparse one: its bucket is packed row by row. */
    const int alone = p->shard.dim >= 0 || p->touched_rows;
    if (!b || b->end - p->offset > limit || alone || bucket_alone) {
      b = &r->buckets[r->n_buckets++];
      b->end = end;
      b->n_params = 0;
      b->row_sparse = p->touched_rows ? i : -1;
    }
    b->begin = p->offset;
    b->n_params++;
    bucket_alone = alone;
    r->bucket_of[i] = r->n_buckets - 1;
  }
  /* Every collective below passes a bucket (or a slice of one) as one MPI
   * int count; buckets this large would need splitting. */
  for (int k = 0; k < r->n_buckets; k++) SR_ASSERT(r->buckets[k].end - r->buckets[k].begin <= INT_MAX);
  for (int k = 0; k < r->n_buckets; k++) r->buckets[k].request = MPI_REQUEST_NULL;
  r->owned = sr_calloc((size_t)(r->n_buckets > 0 ? r->n_buckets : 1), sizeof *r->owned);
  int64_t widest = 1;
  for (int k = 0; k < r->n_buckets; k++) {
    /* Without sharding (or alone) a rank owns every bucket whole. */
    r->owned[k] = shard_optimizer ? slice_of(&r->buckets[k], owned_slice(dist->rank, dist->size), dist->size)
                                  : (sr_arena_range){r->buckets[k].begin, r->buckets[k].end};
    sr_arena_range first = slice_of(&r->buckets[k], 0, dist->size);
    if (first.end - first.begin > widest) widest = first.end - first.begin;
  }
  r->scratch = shard_optimizer && dist->size > 1 ? sr_aligned_calloc((size_t)widest * sizeof(float)) : NULL;
}

void sr_grad_reducer_free(sr_grad_reducer *r) {
  for (int k = 0; k < r->n_buckets; k++) {
    free(r->buckets[k].packed_rows);
    free(r->buckets[k].packed);
  }
  free(r->buckets);
  free(r->bucket_of);
  free(r->owned);
  free(r->scratch);
}

/* Blocking communication since t0: all of it is time spent waiting. */
static void count_blocking(sr_grad_reducer *r, double t0) {
  double dt = sr_now() - t0;
  r->wait_seconds += dt;
  r->total_seconds += dt;
}

/* ---- row-sparse buckets ---------------------------------------------------------- */

/* Elements per row of a row-sparse bucket's parameter. */
static int64_t row_length(const sr_grad_reducer *r, const sr_grad_bucket *b) {
  const sr_param *p = &r->params->items[b->row_sparse];
  return p->numel / p->shape[0];
}

/* ORs the ranks' touched-row flags of b's parameter and packs the gradient
 * rows set into b->packed, in row order. Collective. */
static int pack_touched_rows(sr_grad_reducer *r, sr_grad_bucket *b) {
  sr_param *p = &r->params->items[b->row_sparse];
  const int64_t n_rows = p->shape[0], row_len = row_length(r, b);
  MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, p->touched_rows, (int)n_rows, MPI_UINT8_T, MPI_BOR, r->dist->comm),
          "touched-row flags");
  sr_grow(&b->packed_rows, &b->packed_rows_cap, (size_t)(n_rows > 0 ? n_rows : 1));
  int64_t n = 0;
  for (int64_t row = 0; row < n_rows; row++)
    if (p->touched_rows[row]) b->packed_rows[n++] = row;
  b->n_packed_rows = n;
  sr_grow(&b->packed, &b->packed_cap, (size_t)(n > 0 ? n * row_len : 1));
  const float *grads = r->params->grads + b->begin; /* the parameter's gradient: the bucket holds it alone */
  for (int64_t k = 0; k < n; k++)
    memcpy(b->packed + k * row_len, grads + b->packed_rows[k] * row_len, (size_t)row_len * sizeof(float));
  r->reduced_elements += n * row_len;
  return SR_OK;
}

/* Packed elements [lo, hi) back to their places in the gradient arena. */
static void unpack_touched_rows(sr_grad_reducer *r, const sr_grad_bucket *b, int64_t lo, int64_t hi) {
  const int64_t row_len = row_length(r, b);
  float *grads = r->params->grads + b->begin;
  while (lo < hi) {
    const int64_t k = lo / row_len, in_row = lo % row_len;
    const int64_t n = hi - lo < row_len - in_row ? hi - lo : row_len - in_row;
    memcpy(grads + b->packed_rows[k] * row_len + in_row, b->packed + lo, (size_t)n * sizeof(float));
    lo += n;
  }
}

/* Where arena element `at` of bucket b falls in the data the bucket reduces
 * (reduced_data): its offset in the bucket, or for a row-sparse bucket how
 * many packed elements lie before it. */
static int64_t reduced_offset(const sr_grad_reducer *r, const sr_grad_bucket *b, int64_t at) {
  const int64_t x = at - b->begin;
  if (b->row_sparse < 0) return x;
  const int64_t row_len = row_length(r, b);
  int64_t lo = 0, hi = b->n_packed_rows; /* rows [0, lo) end at or before x */
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if ((b->packed_rows[mid] + 1) * row_len <= x)
      lo = mid + 1;
    else
      hi = mid;
  }
  const int64_t row_start = lo < b->n_packed_rows ? b->packed_rows[lo] * row_len : x;
  return lo * row_len + (row_start < x ? x - row_start : 0);
}

void sr_grad_reducer_begin(sr_grad_reducer *r) {
  for (int k = 0; k < r->n_buckets; k++) r->buckets[k].n_ready = 0;
  r->next_launch = 0;
  r->first_launch = 0;
}

/* What bucket b reduces: its n elements of the arena, or its packed rows
 * (packed here: collective). */
static int reduced_data(sr_grad_reducer *r, sr_grad_bucket *b, float **data, int64_t *n) {
  r->dense_elements += b->end - b->begin;
  if (b->row_sparse < 0) {
    *data = r->params->grads + b->begin;
    *n = b->end - b->begin;
    r->reduced_elements += *n;
    return SR_OK;
  }
  SR_TRY(pack_touched_rows(r, b));
  *data = b->packed;
  *n = b->n_packed_rows * row_length(r, b);
  return SR_OK;
}

static void launch(sr_grad_reducer *r, sr_grad_bucket *b) {
  if (r->first_launch == 0) r->first_launch = sr_now();
  float *data;
  int64_t n;
  if (reduced_data(r, b, &data, &n) != SR_OK) SR_DIE("%s", sr_error_message());
  int rc = MPI_Iallreduce(MPI_IN_PLACE, data, (int)n, MPI_FLOAT, MPI_SUM, r->dist->comm, &b->request);
  if (rc != MPI_SUCCESS) SR_DIE("MPI_Iallreduce of a gradient bucket failed (code %d)", rc);
}

void sr_grad_reducer_ready(sr_grad_reducer *r, int index) {
  if (r->dist->size == 1 || !r->overlap || index >= r->params->n_dense) return;
  r->buckets[r->bucket_of[index]].n_ready++;
  /* Collectives must start in the same order on every rank: buckets launch
   * strictly in index order, whatever order the model finishes them in. */
  while (r->next_launch < r->n_buckets && r->buckets[r->next_launch].n_ready == r->buckets[r->next_launch].n_params)
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
    float *data;
    int64_t n;
    SR_TRY(reduced_data(r, b, &data, &n));
    MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, data, (int)n, MPI_FLOAT, MPI_SUM, r->dist->comm), "gradient all-reduce");
    if (b->row_sparse >= 0) unpack_touched_rows(r, b, 0, n);
  }
  return SR_OK;
}

/* Ring reduce-scatter of data whose slice q (of P) is parts[q]: at step s
 * rank r passes its partial sum of slice (r - s) to rank r + 1 and adds what
 * rank r - 1 sends of slice (r - s - 1). After P - 1 steps slice (r + 1)
 * holds the total; the other slices hold partial sums. */
static int ring_reduce_scatter(sr_grad_reducer *r, float *data, const sr_arena_range *parts) {
  const int P = r->dist->size, rank = r->dist->rank;
  const int right = (rank + 1) % P, left = (rank + P - 1) % P;
  for (int s = 0; s < P - 1; s++) {
    sr_arena_range out = parts[(rank - s + P) % P], in = parts[(rank - s - 1 + 2 * P) % P];
    MPI_TRY(MPI_Sendrecv(data + out.begin, (int)(out.end - out.begin), MPI_FLOAT, right, 0, r->scratch,
                         (int)(in.end - in.begin), MPI_FLOAT, left, 0, r->dist->comm, MPI_STATUS_IGNORE),
            "gradient reduce-scatter");
    sr_axpy(data + in.begin, 1.0f, r->scratch, in.end - in.begin);
  }
  return SR_OK;
}

/* Reduce-scatter of one bucket: the arena's slices stay partial sums until
 * sr_grad_reducer_gather_values, the owned one ends with the total. A
 * row-sparse bucket runs the ring on its packed rows, each packed slice
 * holding the elements of the arena slice of the same index (so every element
 * is summed in the same order as unpacked), and unpacks the owned slice. */
static int reduce_scatter_bucket(sr_grad_reducer *r, sr_grad_bucket *b) {
  const int P = r->dist->size;
  float *data;
  int64_t n;
  SR_TRY(reduced_data(r, b, &data, &n));
  sr_arena_range *parts = sr_malloc((size_t)P * sizeof *parts);
  for (int q = 0; q < P; q++) {
    const sr_arena_range slice = slice_of(b, q, P);
    parts[q] = (sr_arena_range){reduced_offset(r, b, slice.begin), reduced_offset(r, b, slice.end)};
  }
  SR_ASSERT(parts[0].begin == 0 && parts[P - 1].end == n);
  int rc = ring_reduce_scatter(r, data, parts);
  if (rc == SR_OK && b->row_sparse >= 0) {
    const sr_arena_range own = parts[owned_slice(r->dist->rank, P)];
    unpack_touched_rows(r, b, own.begin, own.end);
  }
  free(parts);
  return rc;
}

/* Every rank's slice of every bucket of `arena` to every rank. */
static int all_gather_slices(sr_grad_reducer *r, float *arena) {
  if (r->dist->size == 1 || !r->shard_optimizer) return SR_OK;
  const int P = r->dist->size;
  int *counts = sr_malloc((size_t)P * sizeof *counts), *displs = sr_malloc((size_t)P * sizeof *displs);
  int rc = SR_OK;
  for (int k = 0; k < r->n_buckets && rc == SR_OK; k++) {
    const sr_grad_bucket *b = &r->buckets[k];
    for (int rank = 0; rank < P; rank++) {
      sr_arena_range s = slice_of(b, owned_slice(rank, P), P);
      counts[rank] = (int)(s.end - s.begin);
      displs[rank] = (int)(s.begin - b->begin);
    }
    int mpi = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, arena + b->begin, counts, displs, MPI_FLOAT,
                             r->dist->comm);
    if (mpi != MPI_SUCCESS) rc = sr_mpi_fail(mpi, "all-gather of optimizer slices");
  }
  free(counts);
  free(displs);
  return rc;
}

int sr_grad_reducer_gather_values(sr_grad_reducer *r) {
  if (r->dist->size == 1 || !r->shard_optimizer) return SR_OK;
  /* The optimizer consumed (zeroed) the owned slices; the others hold partial
   * sums (and any parameter penalty added since): clear them for the next step. */
  const int P = r->dist->size;
  for (int k = 0; k < r->n_buckets; k++) {
    for (int part = 0; part < P; part++) {
      if (part == owned_slice(r->dist->rank, P)) continue;
      sr_arena_range other = slice_of(&r->buckets[k], part, P);
      memset(r->params->grads + other.begin, 0, (size_t)(other.end - other.begin) * sizeof(float));
    }
  }
  double t0 = sr_now();
  int rc = all_gather_slices(r, r->params->values);
  count_blocking(r, t0);
  return rc;
}

int sr_grad_reducer_gather_optimizer_state(sr_grad_reducer *r) {
  SR_TRY(all_gather_slices(r, r->params->adam_m));
  return all_gather_slices(r, r->params->adam_v);
}

int sr_grad_reducer_finish(sr_grad_reducer *r) {
  if (r->dist->size == 1) return SR_OK;
  double t0 = sr_now();
  if (r->shard_optimizer) {
    int rc = SR_OK;
    for (int k = 0; k < r->n_buckets && rc == SR_OK; k++) rc = reduce_scatter_bucket(r, &r->buckets[k]);
    count_blocking(r, t0);
    return rc;
  }
  if (!r->overlap) {
    int rc = reduce_blocking(r);
    count_blocking(r, t0);
    return rc;
  }
  while (r->next_launch < r->n_buckets) launch(r, &r->buckets[r->next_launch++]);
  for (int k = 0; k < r->n_buckets; k++) {
    sr_grad_bucket *b = &r->buckets[k];
    MPI_TRY(MPI_Wait(&b->request, MPI_STATUS_IGNORE), "gradient all-reduce");
    if (b->row_sparse >= 0) unpack_touched_rows(r, b, 0, b->n_packed_rows * row_length(r, b));
  }
  double t1 = sr_now();
  r->wait_seconds += t1 - t0;
  r->total_seconds += t1 - (r->first_launch ? r->first_launch : t0);
  return SR_OK;
}

double sr_grad_reducer_owned_sq_norm(const sr_grad_reducer *r, int count_replicated) {
  if (!r->shard_optimizer && r->dist->rank != 0) return 0.0;
  const sr_params *ps = r->params;
  double sum = 0.0;
  for (int k = 0; k < r->n_buckets; k++) {
    for (int i = 0; i < ps->n_dense; i++) { /* the part of each parameter inside the owned slice */
      const sr_param *p = &ps->items[i];
      if (p->shard.dim < 0 && !count_replicated) continue;
      const int64_t lo = r->owned[k].begin > p->offset ? r->owned[k].begin : p->offset;
      const int64_t hi = r->owned[k].end < p->offset + p->numel ? r->owned[k].end : p->offset + p->numel;
      for (int64_t j = lo; j < hi; j++) sum += (double)ps->grads[j] * ps->grads[j];
    }
  }
  return sum;
}

void sr_grad_reducer_scale(sr_grad_reducer *r, float s) {
  for (int k = 0; k < r->n_buckets; k++) {
    float *g = r->params->grads;
    for (int64_t j = r->owned[k].begin; j < r->owned[k].end; j++) g[j] *= s;
  }
}

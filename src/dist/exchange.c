/* exchange.c — rows gathered across ranks, the reduce-scatter that returns
 * their gradients, and the sparse gradient all-reduce (exchange.h). */
#include "shardrec/exchange.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dist_internal.h"
#include "shardrec/error.h"
#include "shardrec/mem.h"

/* ---- layout ------------------------------------------------------------------------------ */

static int gather_counts(const sr_dist *dist, int64_t n_local, int64_t *count) {
  count[dist->rank] = n_local;
  if (dist->size == 1) return SR_OK;
  MPI_TRY(MPI_Allgather(&n_local, 1, MPI_INT64_T, count, 1, MPI_INT64_T, dist->comm), "MPI_Allgather of row counts");
  return SR_OK;
}

int sr_exchange_layout_init(sr_exchange_layout *l, const sr_dist *dist, int64_t n_local) {
  SR_ASSERT(n_local >= 0);
  l->size = dist->size;
  l->count = sr_calloc((size_t)dist->size, sizeof *l->count);
  l->offset = sr_calloc((size_t)dist->size, sizeof *l->offset);
  l->total = 0;
  int rc = gather_counts(dist, n_local, l->count);
  if (rc != SR_OK) {
    sr_exchange_layout_free(l);
    return rc;
  }
  for (int r = 0; r < l->size; r++) {
    l->offset[r] = l->total;
    l->total += l->count[r];
  }
  return SR_OK;
}

void sr_exchange_layout_free(sr_exchange_layout *l) {
  free(l->count);
  free(l->offset);
  memset(l, 0, sizeof *l);
}

/* ---- gathers and their adjoint ---------------------------------------------------------- */

/* MPI takes counts and displacements as int, in elements: counts[r] =
 * count[r] * dim and, unless displs is NULL, displs[r] = offset[r] * dim.
 * Every one of them is at most total * dim, so checking that bound once
 * rules out a silent overflow. Free both with free(). */
static int element_counts(const sr_exchange_layout *l, int64_t dim, const char *what, int **counts, int **displs) {
  SR_ASSERT(dim >= 1);
  if (l->total > INT_MAX / dim)
    return SR_FAIL(SR_EINVAL, "%s: %lld rows of %lld values exceed MPI's int count limit (%d elements)", what,
                   (long long)l->total, (long long)dim, INT_MAX);
  *counts = sr_malloc((size_t)l->size * sizeof **counts);
  if (displs) *displs = sr_malloc((size_t)l->size * sizeof **displs);
  for (int r = 0; r < l->size; r++) {
    (*counts)[r] = (int)(l->count[r] * dim);
    if (displs) (*displs)[r] = (int)(l->offset[r] * dim);
  }
  return SR_OK;
}

/* On one rank every collective is a copy; no MPI call is made, so
 * single-process runs on sr_dist_self need no MPI_Init. */
static void copy_elements(void *dst, const void *src, int64_t n, size_t elem) {
  if (n > 0) memcpy(dst, src, (size_t)n * elem);
}

/* all (total * dim elements of `type`) = every rank's local (count[r] * dim),
 * in rank order. */
static int gather(const sr_dist *dist, const sr_exchange_layout *l, const void *local, int64_t dim, MPI_Datatype type,
                  size_t elem, void *all, const char *what) {
  SR_ASSERT(l->size == dist->size);
  if (dist->size == 1) {
    copy_elements(all, local, l->total * dim, elem);
    return SR_OK;
  }
  int *counts = NULL, *displs = NULL;
  SR_TRY(element_counts(l, dim, what, &counts, &displs));
  int rc = MPI_Allgatherv(local, counts[dist->rank], type, all, counts, displs, type, dist->comm);
  free(counts);
  free(displs);
  return rc == MPI_SUCCESS ? SR_OK : sr_mpi_fail(rc, what);
}

int sr_gather_rows_f32(const sr_dist *dist, const sr_exchange_layout *l, const float *local, int64_t dim,
                       float *all) {
  return gather(dist, l, local, dim, MPI_FLOAT, sizeof *local, all, "MPI_Allgatherv of float rows");
}

int sr_gather_i64(const sr_dist *dist, const sr_exchange_layout *l, const int64_t *local, int64_t *all) {
  return gather(dist, l, local, 1, MPI_INT64_T, sizeof *local, all, "MPI_Allgatherv of int64 values");
}

int sr_gather_csr_rows(const sr_dist *dist, const sr_csr *local, sr_csr *all) {
  sr_exchange_layout rows, entries;
  SR_TRY(sr_exchange_layout_init(&rows, dist, local->n_rows));
  int rc = sr_exchange_layout_init(&entries, dist, local->nnz);
  if (rc != SR_OK) {
    sr_exchange_layout_free(&rows);
    return rc;
  }
  sr_csr_alloc(all, rows.total, local->n_cols, entries.total, local->values != NULL);
  int64_t *lengths = sr_malloc((size_t)(local->n_rows > 0 ? local->n_rows : 1) * sizeof *lengths);
  for (int64_t r = 0; r < local->n_rows; r++) lengths[r] = sr_csr_row_len(local, r);
  rc = sr_gather_i64(dist, &rows, lengths, all->indptr + 1); /* row lengths, then their prefix sums */
  for (int64_t r = 0; rc == SR_OK && r < all->n_rows; r++) all->indptr[r + 1] += all->indptr[r];
  if (rc == SR_OK)
    rc = gather(dist, &entries, local->indices, 1, MPI_INT32_T, sizeof *local->indices, all->indices,
                "MPI_Allgatherv of CSR indices");
  if (rc == SR_OK && local->values) rc = sr_gather_rows_f32(dist, &entries, local->values, 1, all->values);
  free(lengths);
  sr_exchange_layout_free(&rows);
  sr_exchange_layout_free(&entries);
  if (rc != SR_OK) sr_csr_free(all);
  return rc;
}

int sr_scatter_sum_rows_f32(const sr_dist *dist, const sr_exchange_layout *l, const float *all_grad, int64_t dim,
                            float *local) {
  SR_ASSERT(l->size == dist->size);
  const char *what = "MPI_Reduce_scatter of row gradients";
  if (dist->size == 1) {
    copy_elements(local, all_grad, l->total * dim, sizeof *local);
    return SR_OK;
  }
  int *counts = NULL;
  SR_TRY(element_counts(l, dim, what, &counts, NULL));
  /* Rank r receives the block after ranks 0..r-1's: exactly rows
   * [offset[r], offset[r] + count[r]) of all_grad. */
  int rc = MPI_Reduce_scatter(all_grad, local, counts, MPI_FLOAT, MPI_SUM, dist->comm);
  free(counts);
  return rc == MPI_SUCCESS ? SR_OK : sr_mpi_fail(rc, what);
}

/* ---- sparse gradient all-reduce ----------------------------------------------------------- */

/* A gathered row: its table row id, and its position in the rank-ordered
 * concatenation of the lists. A rank's ids are unique, so among equal ids
 * the position orders the rows by rank. */
typedef struct {
  int64_t id, pos;
} gathered_row;

/* (id, pos) is a total order: the sort result does not depend on qsort. */
static int compare_gathered(const void *pa, const void *pb) {
  const gathered_row *a = pa, *b = pb;
  if (a->id != b->id) return a->id < b->id ? -1 : 1;
  return (a->pos > b->pos) - (a->pos < b->pos);
}

/* g = the coalesced sum of the gathered rows (total, dim) with their ids:
 * sorted by id, each id's row summed in rank order. */
static void coalesce(sr_sparse_grad *g, const int64_t *ids, const float *rows, int64_t total) {
  const int64_t D = g->dim;
  gathered_row *order = sr_malloc((size_t)total * sizeof *order);
  for (int64_t i = 0; i < total; i++) order[i] = (gathered_row){ids[i], i};
  qsort(order, (size_t)total, sizeof *order, compare_gathered);
  int64_t unique = 0;
  for (int64_t i = 0; i < total; i++) unique += i == 0 || order[i].id != order[i - 1].id;
  sr_sparse_grad_reserve(g, unique);
  int64_t u = -1;
  for (int64_t i = 0; i < total; i++) {
    const float *restrict src = rows + order[i].pos * D;
    if (i == 0 || order[i].id != order[i - 1].id) {
      g->ids[++u] = order[i].id;
      memcpy(g->rows + u * D, src, (size_t)D * sizeof *src);
      continue;
    }
    float *restrict dst = g->rows + u * D;
    for (int64_t j = 0; j < D; j++) dst[j] += src[j];
  }
  g->n = unique;
  free(order);
}

int sr_sparse_grad_allreduce(const sr_dist *dist, sr_sparse_grad *g) {
  if (dist->size == 1) return SR_OK;
  sr_exchange_layout l;
  SR_TRY(sr_exchange_layout_init(&l, dist, g->n));
  int64_t *ids = sr_malloc((size_t)l.total * sizeof *ids);
  float *rows = sr_malloc((size_t)(l.total * g->dim) * sizeof *rows);
  int rc = sr_gather_i64(dist, &l, g->ids, ids);
  if (rc == SR_OK) rc = sr_gather_rows_f32(dist, &l, g->rows, g->dim, rows);
  if (rc == SR_OK) coalesce(g, ids, rows, l.total);
  free(ids);
  free(rows);
  sr_exchange_layout_free(&l);
  if (rc != SR_OK) sr_error_prefix("sparse gradient all-reduce");
  return rc;
}

/* ---- row-sharded tables -------------------------------------------------------------------- */

/* An all-to-all of variable blocks: this rank sends count[r] items to rank r
 * and receives from[r] from it, each block at the exclusive prefix sum of
 * the counts (displacements in items). */
typedef struct {
  int *to, *to_displs, *from, *from_displs;
  int64_t total_from;
} alltoall_plan;

static void plan_free(alltoall_plan *p) {
  free(p->to);
  free(p->to_displs);
  free(p->from);
  free(p->from_displs);
}

/* The plan for sending ids[0..n) (sorted) to the owners of their rows. */
static int plan_by_owner(const sr_dist *dist, const int64_t *bounds, const int64_t *ids, int64_t n,
                         alltoall_plan *p) {
  const int P = dist->size;
  p->to = sr_calloc((size_t)P, sizeof *p->to);
  p->to_displs = sr_calloc((size_t)P, sizeof *p->to_displs);
  p->from = sr_calloc((size_t)P, sizeof *p->from);
  p->from_displs = sr_calloc((size_t)P, sizeof *p->from_displs);
  if (n > INT_MAX) return SR_FAIL(SR_EINVAL, "%lld table rows in one exchange exceed MPI's int count", (long long)n);
  int64_t k = 0;
  for (int r = 0; r < P; r++) {
    const int64_t first = k;
    while (k < n && ids[k] < bounds[r + 1]) k++;
    p->to[r] = (int)(k - first);
    p->to_displs[r] = (int)first;
  }
  SR_ASSERT(k == n); /* every id is below bounds[P] = V */
  MPI_TRY(MPI_Alltoall(p->to, 1, MPI_INT, p->from, 1, MPI_INT, dist->comm), "MPI_Alltoall of row counts");
  p->total_from = 0;
  for (int r = 0; r < P; r++) {
    p->from_displs[r] = (int)p->total_from;
    p->total_from += p->from[r];
    if (p->total_from > INT_MAX)
      return SR_FAIL(SR_EINVAL, "%lld table rows requested from one rank exceed MPI's int count",
                     (long long)p->total_from);
  }
  return SR_OK;
}

/* The same plan for rows of dim floats (n: the items this rank sends):
 * every count and displacement times dim. */
static int scale_plan(const alltoall_plan *p, int P, int64_t n, int64_t dim, alltoall_plan *out) {
  const int64_t biggest = n > p->total_from ? n : p->total_from;
  if (biggest > INT_MAX / dim)
    return SR_FAIL(SR_EINVAL, "%lld table rows of %lld values exceed MPI's int count", (long long)biggest,
                   (long long)dim);
  out->to = sr_malloc((size_t)P * sizeof *out->to);
  out->to_displs = sr_malloc((size_t)P * sizeof *out->to_displs);
  out->from = sr_malloc((size_t)P * sizeof *out->from);
  out->from_displs = sr_malloc((size_t)P * sizeof *out->from_displs);
  for (int r = 0; r < P; r++) {
    out->to[r] = (int)(p->to[r] * dim);
    out->to_displs[r] = (int)(p->to_displs[r] * dim);
    out->from[r] = (int)(p->from[r] * dim);
    out->from_displs[r] = (int)(p->from_displs[r] * dim);
  }
  out->total_from = p->total_from * dim;
  return SR_OK;
}

int sr_fetch_rows_f32(const sr_dist *dist, const int64_t *bounds, const float *local, int64_t dim, const int64_t *ids,
                      int64_t n, float *rows) {
  const int64_t mine = bounds[dist->rank];
  if (dist->size == 1) {
    for (int64_t i = 0; i < n; i++) memcpy(rows + i * dim, local + (ids[i] - mine) * dim, (size_t)dim * sizeof *rows);
    return SR_OK;
  }
  alltoall_plan ids_plan = {0}, rows_plan = {0};
  int64_t *wanted = NULL;
  float *found = NULL;
  int rc = plan_by_owner(dist, bounds, ids, n, &ids_plan);
  if (rc == SR_OK) rc = scale_plan(&ids_plan, dist->size, n, dim, &rows_plan);
  if (rc == SR_OK) {
    wanted = sr_malloc((size_t)(ids_plan.total_from > 0 ? ids_plan.total_from : 1) * sizeof *wanted);
    int mpi = MPI_Alltoallv(ids, ids_plan.to, ids_plan.to_displs, MPI_INT64_T, wanted, ids_plan.from,
                            ids_plan.from_displs, MPI_INT64_T, dist->comm);
    if (mpi != MPI_SUCCESS) rc = sr_mpi_fail(mpi, "MPI_Alltoallv of table row ids");
  }
  if (rc == SR_OK) {
    found = sr_malloc((size_t)(rows_plan.total_from > 0 ? rows_plan.total_from : 1) * sizeof *found);
    for (int64_t i = 0; i < ids_plan.total_from; i++) {
      SR_ASSERT(wanted[i] >= mine && wanted[i] < bounds[dist->rank + 1]);
      memcpy(found + i * dim, local + (wanted[i] - mine) * dim, (size_t)dim * sizeof *found);
    }
    /* The reverse exchange: what a rank received from r goes back to r. */
    int mpi = MPI_Alltoallv(found, rows_plan.from, rows_plan.from_displs, MPI_FLOAT, rows, rows_plan.to,
                            rows_plan.to_displs, MPI_FLOAT, dist->comm);
    if (mpi != MPI_SUCCESS) rc = sr_mpi_fail(mpi, "MPI_Alltoallv of table rows");
  }
  free(wanted);
  free(found);
  plan_free(&ids_plan);
  plan_free(&rows_plan);
  return rc;
}

int sr_sparse_grad_reduce_to_owners(const sr_dist *dist, const int64_t *bounds, sr_sparse_grad *g) {
  if (dist->size == 1) return SR_OK;
  alltoall_plan ids_plan = {0}, rows_plan = {0};
  int64_t *ids = NULL;
  float *rows = NULL;
  int rc = plan_by_owner(dist, bounds, g->ids, g->n, &ids_plan);
  if (rc == SR_OK) rc = scale_plan(&ids_plan, dist->size, g->n, g->dim, &rows_plan);
  if (rc == SR_OK) {
    /* Received blocks are in rank order, so coalescing sums in rank order. */
    ids = sr_malloc((size_t)(ids_plan.total_from > 0 ? ids_plan.total_from : 1) * sizeof *ids);
    rows = sr_malloc((size_t)(rows_plan.total_from > 0 ? rows_plan.total_from : 1) * sizeof *rows);
    int mpi = MPI_Alltoallv(g->ids, ids_plan.to, ids_plan.to_displs, MPI_INT64_T, ids, ids_plan.from,
                            ids_plan.from_displs, MPI_INT64_T, dist->comm);
    if (mpi == MPI_SUCCESS)
      mpi = MPI_Alltoallv(g->rows, rows_plan.to, rows_plan.to_displs, MPI_FLOAT, rows, rows_plan.from,
                          rows_plan.from_displs, MPI_FLOAT, dist->comm);
    if (mpi != MPI_SUCCESS) rc = sr_mpi_fail(mpi, "MPI_Alltoallv of sparse gradient rows");
  }
  if (rc == SR_OK) coalesce(g, ids, rows, ids_plan.total_from);
  free(ids);
  free(rows);
  plan_free(&ids_plan);
  plan_free(&rows_plan);
  if (rc != SR_OK) sr_error_prefix("sparse gradient reduction to the row owners");
  return rc;
}

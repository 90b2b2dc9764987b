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
  int *counts, *displs;
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

int sr_scatter_sum_rows_f32(const sr_dist *dist, const sr_exchange_layout *l, const float *all_grad, int64_t dim,
                            float *local) {
  SR_ASSERT(l->size == dist->size);
  const char *what = "MPI_Reduce_scatter of row gradients";
  if (dist->size == 1) {
    copy_elements(local, all_grad, l->total * dim, sizeof *local);
    return SR_OK;
  }
  int *counts;
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

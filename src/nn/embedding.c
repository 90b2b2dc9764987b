/* embedding.c — embedding bags, sparse gradients, value dropout and lazy
 * optimizer updates (embedding.h). */
#include "shardrec/embedding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/mem.h"
#include "shardrec/rng.h"

/* ---- sparse gradient ----------------------------------------------------------------- */

void sr_sparse_grad_init(sr_sparse_grad *g, int64_t dim) {
  SR_ASSERT(dim >= 1);
  memset(g, 0, sizeof *g);
  g->dim = dim;
}

void sr_sparse_grad_clear(sr_sparse_grad *g) { g->n = 0; }

/* g->cap counts rows of both arrays; doubling keeps repeated growth linear. */
void sr_sparse_grad_reserve(sr_sparse_grad *g, int64_t n) {
  if ((size_t)n <= g->cap) return;
  size_t cap = g->cap ? g->cap : 16;
  while (cap < (size_t)n) cap *= 2;
  g->ids = sr_realloc(g->ids, cap * sizeof *g->ids);
  g->rows = sr_realloc(g->rows, cap * (size_t)g->dim * sizeof *g->rows);
  g->cap = cap;
}

void sr_sparse_grad_free(sr_sparse_grad *g) {
  free(g->ids);
  free(g->rows);
  memset(g, 0, sizeof *g);
}

void sr_sparse_grad_add_to_dense(float *dense, const sr_sparse_grad *g) {
  for (int64_t i = 0; i < g->n; i++) {
    float *restrict dst = dense + g->ids[i] * g->dim;
    const float *restrict src = g->rows + i * g->dim;
    for (int64_t j = 0; j < g->dim; j++) dst[j] += src[j];
  }
}

/* ---- embedding bag ---------------------------------------------------------------------- */

static int64_t kept_count(const sr_csr *bag, const uint8_t *keep, int64_t r) {
  if (!keep) return sr_csr_row_len(bag, r);
  int64_t c = 0;
  for (int64_t k = bag->indptr[r]; k < bag->indptr[r + 1]; k++) c += keep[k] != 0;
  return c;
}

/* The rule of embedding.h: masked, or nothing left to average. */
static int is_default_row(const uint8_t *masked, int64_t kept, int64_t r) {
  return (masked && masked[r]) || kept == 0;
}

void sr_embedding_bag_forward(float *out, const sr_csr *bag, const uint8_t *keep, const uint8_t *masked,
                              const float *table, const float *default_row, int64_t D) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < bag->n_rows; r++) {
    float *restrict row = out + r * D;
    const int64_t kept = kept_count(bag, keep, r);
    if (is_default_row(masked, kept, r)) {
      SR_ASSERT(default_row || !(masked && masked[r])); /* masking needs something to mask with */
      for (int64_t j = 0; j < D; j++) row[j] = default_row ? default_row[j] : 0.0f;
      continue;
    }
    for (int64_t j = 0; j < D; j++) row[j] = 0.0f;
    for (int64_t k = bag->indptr[r]; k < bag->indptr[r + 1]; k++) {
      if (keep && !keep[k]) continue;
      const float *restrict src = table + (int64_t)bag->indices[k] * D;
      for (int64_t j = 0; j < D; j++) row[j] += src[j];
    }
    const float inv = 1.0f / (float)kept;
    for (int64_t j = 0; j < D; j++) row[j] *= inv;
  }
}

/* One table-row gradient term: dout[row] * scale goes to table row `id`. */
typedef struct {
  int64_t id, entry, row;
  float scale;
} contribution;

/* Sorts c[0..n) by id, stably, with byte-wise LSD radix passes (O(n) per
 * pass; a comparison sort was 12% of a two-tower step). c arrives in entry
 * order, so the result is in (id, entry) order: equal ids keep (row, entry)
 * order. Ids are table rows, non-negative and below 2^31. */
static void sort_by_id(contribution *c, int64_t n) {
  int64_t max_id = 0;
  for (int64_t k = 0; k < n; k++)
    if (c[k].id > max_id) max_id = c[k].id;
  contribution *tmp = sr_malloc((size_t)(n > 0 ? n : 1) * sizeof *tmp);
  contribution *from = c, *to = tmp;
  for (int shift = 0; shift < 32 && (max_id >> shift) > 0; shift += 8) {
    int64_t start[257] = {0};
    for (int64_t k = 0; k < n; k++) start[((from[k].id >> shift) & 0xff) + 1]++;
    for (int b = 0; b < 256; b++) start[b + 1] += start[b];
    for (int64_t k = 0; k < n; k++) to[start[(from[k].id >> shift) & 0xff]++] = from[k];
    contribution *t = from;
    from = to;
    to = t;
  }
  if (from != c) memcpy(c, from, (size_t)n * sizeof *c);
  free(tmp);
}

/* The kept entries of the non-default rows, sorted by (id, entry). */
static contribution *collect_contributions(const sr_csr *bag, const uint8_t *keep, const uint8_t *masked,
                                           int64_t *count) {
  contribution *c = sr_malloc((size_t)(bag->nnz > 0 ? bag->nnz : 1) * sizeof *c);
  int64_t n = 0;
  for (int64_t r = 0; r < bag->n_rows; r++) {
    const int64_t kept = kept_count(bag, keep, r);
    if (is_default_row(masked, kept, r)) continue;
    for (int64_t k = bag->indptr[r]; k < bag->indptr[r + 1]; k++)
      if (!keep || keep[k]) c[n++] = (contribution){bag->indices[k], k, r, 1.0f / (float)kept};
  }
  sort_by_id(c, n);
  *count = n;
  return c;
}

/* Number of distinct ids in the union of g's ids and the sorted contributions. */
static int64_t union_size(const sr_sparse_grad *g, const contribution *c, int64_t nc) {
  int64_t i = 0, j = 0, u = 0;
  while (i < g->n || j < nc) {
    const int64_t id = j == nc || (i < g->n && g->ids[i] <= c[j].id) ? g->ids[i] : c[j].id;
    while (i < g->n && g->ids[i] == id) i++;
    while (j < nc && c[j].id == id) j++;
    u++;
  }
  return u;
}

/* Merges the sorted contributions into g in place, from the back: output
 * slot d never lies below the existing row i it reads (d > i unless they
 * coincide), so nothing unread is overwritten and a moved row never overlaps
 * its destination. Each id's sum still runs forwards: its existing row,
 * then its contributions in order. */
static void merge_contributions(sr_sparse_grad *g, const contribution *c, int64_t nc, const float *dout) {
  const int64_t D = g->dim, u = union_size(g, c, nc);
  sr_sparse_grad_reserve(g, u);
  int64_t i = g->n - 1, j = nc - 1;
  for (int64_t d = u - 1; d >= 0; d--) {
    const int64_t id = i < 0 || (j >= 0 && c[j].id > g->ids[i]) ? c[j].id : g->ids[i];
    float *restrict row = g->rows + d * D;
    if (i >= 0 && g->ids[i] == id) {
      if (d != i) memcpy(row, g->rows + i * D, (size_t)D * sizeof *row);
      i--;
    } else {
      memset(row, 0, (size_t)D * sizeof *row);
    }
    int64_t first = j;
    while (first >= 0 && c[first].id == id) first--;
    for (int64_t t = first + 1; t <= j; t++) {
      const float *restrict src = dout + c[t].row * D;
      for (int64_t e = 0; e < D; e++) row[e] += c[t].scale * src[e];
    }
    j = first;
    g->ids[d] = id;
  }
  g->n = u;
}

void sr_embedding_bag_backward(sr_sparse_grad *dtable, float *ddefault, const float *dout, const sr_csr *bag,
                               const uint8_t *keep, const uint8_t *masked, int64_t D) {
  SR_ASSERT(dtable->dim == D);
  int64_t nc;
  contribution *c = collect_contributions(bag, keep, masked, &nc);
  merge_contributions(dtable, c, nc, dout);
  free(c);
  if (!ddefault) return;
  for (int64_t r = 0; r < bag->n_rows; r++)
    if (is_default_row(masked, kept_count(bag, keep, r), r))
      for (int64_t j = 0; j < D; j++) ddefault[j] += dout[r * D + j];
}

/* ---- value dropout ------------------------------------------------------------------------ */

void sr_embedding_bag_dropout(uint8_t *keep, const sr_csr *bag, float p, uint64_t seed, uint32_t purpose,
                              uint64_t step, const int64_t *sample_ids) {
  SR_ASSERT(p >= 0.0f && p <= 1.0f);
  for (int64_t r = 0; r < bag->n_rows; r++) {
    sr_rng rng;
    sr_rng_init(&rng, seed, purpose, step, (uint64_t)sample_ids[r]);
    for (int64_t k = bag->indptr[r]; k < bag->indptr[r + 1]; k++) keep[k] = sr_rng_uniform(&rng) >= p;
  }
}

/* ---- L2 penalty ------------------------------------------------------------------------------ */

double sr_embedding_bag_l2(sr_sparse_grad *dtable, const sr_csr *bag, const sr_csr *lookup, const uint8_t *keep,
                           const uint8_t *masked, const float *table, int64_t D, float scale) {
  SR_ASSERT(dtable->dim == D && lookup->nnz == bag->nnz);
  int64_t nc;
  contribution *c = collect_contributions(bag, keep, masked, &nc);
  double penalty = 0.0;
  for (int64_t t = 0; t < nc; t++) {
    /* The gradient source is the table row itself: c.row now indexes table. */
    c[t].row = lookup->indices[c[t].entry];
    const float *w = table + c[t].row * D;
    double sq = 0.0;
    for (int64_t j = 0; j < D; j++) sq += (double)w[j] * w[j];
    penalty += 0.5 * sq * c[t].scale;
    c[t].scale *= scale;
  }
  merge_contributions(dtable, c, nc, table);
  free(c);
  return penalty * scale;
}

/* ---- sparse optimizer updates -------------------------------------------------------------- */

void sr_sparse_adam_step(float *table, float *m, float *v, const sr_sparse_grad *g, const sr_sparse_adam *hp,
                         int64_t step) {
  SR_ASSERT(step >= 1);
  /* Bias corrections from the global step, in double as in optim.c. */
  const float bc1 = (float)(1.0 - pow((double)hp->beta1, (double)step));
  const float bc2 = (float)(1.0 - pow((double)hp->beta2, (double)step));
  const float b1 = hp->beta1, b2 = hp->beta2;
  for (int64_t i = 0; i < g->n; i++) {
    const int64_t base = g->ids[i] * g->dim;
    const float *restrict grad = g->rows + i * g->dim;
    for (int64_t j = 0; j < g->dim; j++) {
      const int64_t e = base + j;
      m[e] = b1 * m[e] + (1.0f - b1) * grad[j];
      v[e] = b2 * v[e] + (1.0f - b2) * grad[j] * grad[j];
      table[e] -= hp->lr * (m[e] / bc1) / (sqrtf(v[e] / bc2) + hp->eps);
    }
  }
}

void sr_sparse_adagrad_step(float *table, float *accum, const sr_sparse_grad *g, float lr, float eps) {
  for (int64_t i = 0; i < g->n; i++) {
    const int64_t base = g->ids[i] * g->dim;
    const float *restrict grad = g->rows + i * g->dim;
    for (int64_t j = 0; j < g->dim; j++) {
      const int64_t e = base + j;
      accum[e] += grad[j] * grad[j];
      table[e] -= lr * grad[j] / (sqrtf(accum[e]) + eps);
    }
  }
}

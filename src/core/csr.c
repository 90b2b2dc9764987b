/* csr.c — CSR matrix storage, validation and row selection (csr.h). */
#include "shardrec/csr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/mem.h"

void sr_csr_alloc(sr_csr *m, int64_t n_rows, int64_t n_cols, int64_t nnz, int with_values) {
  m->n_rows = n_rows;
  m->n_cols = n_cols;
  m->nnz = nnz;
  m->indptr = sr_calloc((size_t)n_rows + 1, sizeof *m->indptr);
  m->indices = sr_malloc((size_t)nnz * sizeof *m->indices);
  m->values = with_values ? sr_malloc((size_t)nnz * sizeof *m->values) : NULL;
}

void sr_csr_free(sr_csr *m) {
  free(m->indptr);
  free(m->indices);
  free(m->values);
  memset(m, 0, sizeof *m);
}

int sr_csr_validate(const sr_csr *m, const char *what) {
  if (m->n_rows < 0 || m->n_cols < 0 || m->nnz < 0)
    return SR_FAIL(SR_EFORMAT, "%s: negative shape (%lld rows, %lld cols, %lld nnz)", what, (long long)m->n_rows,
                   (long long)m->n_cols, (long long)m->nnz);
  if (m->n_cols > INT32_MAX)
    return SR_FAIL(SR_EFORMAT, "%s: %lld columns do not fit int32 indices", what, (long long)m->n_cols);
  if (m->indptr[0] != 0)
    return SR_FAIL(SR_EFORMAT, "%s: indptr[0] is %lld, expected 0", what, (long long)m->indptr[0]);
  for (int64_t r = 0; r < m->n_rows; r++) {
    int64_t b = m->indptr[r], e = m->indptr[r + 1];
    if (e < b)
      return SR_FAIL(SR_EFORMAT, "%s: indptr not monotone at row %lld (%lld > %lld)", what, (long long)r,
                     (long long)b, (long long)e);
    if (e > m->nnz)
      return SR_FAIL(SR_EFORMAT, "%s: indptr[%lld] = %lld exceeds nnz %lld", what, (long long)(r + 1), (long long)e,
                     (long long)m->nnz);
    for (int64_t k = b; k < e; k++) {
      int32_t c = m->indices[k];
      if (c < 0 || c >= m->n_cols)
        return SR_FAIL(SR_EFORMAT, "%s: row %lld has column %d out of range [0, %lld)", what, (long long)r, c,
                       (long long)m->n_cols);
      if (k > b && c <= m->indices[k - 1])
        return SR_FAIL(SR_EFORMAT, "%s: row %lld columns not strictly increasing (%d after %d: %s)", what,
                       (long long)r, c, m->indices[k - 1], c == m->indices[k - 1] ? "duplicate" : "unsorted");
      if (m->values && !isfinite(m->values[k]))
        return SR_FAIL(SR_EFORMAT, "%s: row %lld column %d has a non-finite value", what, (long long)r, c);
    }
  }
  if (m->indptr[m->n_rows] != m->nnz)
    return SR_FAIL(SR_EFORMAT, "%s: indptr ends at %lld but there are %lld entries", what,
                   (long long)m->indptr[m->n_rows], (long long)m->nnz);
  return SR_OK;
}

void sr_csr_gather_rows(const sr_csr *src, const int64_t *rows, int64_t n, sr_csr *out) {
  int64_t nnz = 0;
  for (int64_t i = 0; i < n; i++) nnz += sr_csr_row_len(src, rows[i]);
  sr_csr_alloc(out, n, src->n_cols, nnz, src->values != NULL);
  int64_t pos = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t b = src->indptr[rows[i]], len = sr_csr_row_len(src, rows[i]);
    memcpy(out->indices + pos, src->indices + b, (size_t)len * sizeof *out->indices);
    if (src->values) memcpy(out->values + pos, src->values + b, (size_t)len * sizeof *out->values);
    pos += len;
    out->indptr[i + 1] = pos;
  }
}

void sr_csr_slice_rows(const sr_csr *src, int64_t begin, int64_t end, sr_csr *out) {
  int64_t b = src->indptr[begin], nnz = src->indptr[end] - b;
  sr_csr_alloc(out, end - begin, src->n_cols, nnz, src->values != NULL);
  for (int64_t r = 0; r <= end - begin; r++) out->indptr[r] = src->indptr[begin + r] - b;
  memcpy(out->indices, src->indices + b, (size_t)nnz * sizeof *out->indices);
  if (src->values) memcpy(out->values, src->values + b, (size_t)nnz * sizeof *out->values);
}

void sr_csr_copy(const sr_csr *src, sr_csr *out) { sr_csr_slice_rows(src, 0, src->n_rows, out); }

void sr_csr_slice_columns(const sr_csr *src, int64_t begin, int64_t end, sr_csr *out, int64_t *source) {
  SR_ASSERT(0 <= begin && begin <= end && end <= src->n_cols);
  int64_t nnz = 0;
  for (int64_t k = 0; k < src->nnz; k++) nnz += src->indices[k] >= begin && src->indices[k] < end;
  sr_csr_alloc(out, src->n_rows, end - begin, nnz, src->values != NULL);
  int64_t pos = 0;
  for (int64_t r = 0; r < src->n_rows; r++) {
    for (int64_t k = src->indptr[r]; k < src->indptr[r + 1]; k++) {
      if (src->indices[k] < begin || src->indices[k] >= end) continue;
      out->indices[pos] = (int32_t)(src->indices[k] - begin);
      if (src->values) out->values[pos] = src->values[k];
      if (source) source[pos] = k;
      pos++;
    }
    out->indptr[r + 1] = pos;
  }
}

typedef struct {
  int32_t index;
  float value;
} csr_entry;

static int compare_entries(const void *a, const void *b) {
  int32_t x = ((const csr_entry *)a)->index, y = ((const csr_entry *)b)->index;
  return (x > y) - (x < y);
}

void sr_csr_sort_rows(sr_csr *m) {
  csr_entry *tmp = NULL;
  size_t cap = 0;
  for (int64_t r = 0; r < m->n_rows; r++) {
    int64_t b = m->indptr[r], len = sr_csr_row_len(m, r);
    sr_grow(&tmp, &cap, (size_t)len);
    for (int64_t k = 0; k < len; k++) tmp[k] = (csr_entry){m->indices[b + k], sr_csr_value(m, b + k)};
    qsort(tmp, (size_t)len, sizeof *tmp, compare_entries);
    for (int64_t k = 0; k < len; k++) {
      m->indices[b + k] = tmp[k].index;
      if (m->values) m->values[b + k] = tmp[k].value;
    }
  }
  free(tmp);
}

/*
 * csr.h — compressed sparse row matrices (users x items interactions,
 * entities x vocabulary feature values).
 *
 * Row r holds columns indices[indptr[r] .. indptr[r+1]), sorted ascending and
 * unique (validated on load). `values` is NULL for a binary matrix (all ones).
 */
#ifndef SHARDREC_CSR_H
#define SHARDREC_CSR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int64_t n_rows, n_cols, nnz;
  int64_t *indptr;  /* [n_rows + 1], indptr[0] == 0, indptr[n_rows] == nnz */
  int32_t *indices; /* [nnz] column of each entry */
  float *values;    /* [nnz] or NULL (binary) */
} sr_csr;

/* Allocates storage for the given shape; indptr is zeroed. with_values: 0/1. */
void sr_csr_alloc(sr_csr *m, int64_t n_rows, int64_t n_cols, int64_t nnz, int with_values);
void sr_csr_free(sr_csr *m);
static inline int64_t sr_csr_row_len(const sr_csr *m, int64_t r) { return m->indptr[r + 1] - m->indptr[r]; }
static inline float sr_csr_value(const sr_csr *m, int64_t k) { return m->values ? m->values[k] : 1.0f; }

/* Checks the invariants (indptr starts at 0, monotone, ends at nnz; indices in
 * [0, n_cols), strictly increasing per row; values finite). On failure returns
 * SR_EFORMAT with a message naming `what`, the row and the entry. */
int sr_csr_validate(const sr_csr *m, const char *what);

/* out = rows `rows[0..n)` of src, in that order (a batch). out is allocated. */
void sr_csr_gather_rows(const sr_csr *src, const int64_t *rows, int64_t n, sr_csr *out);
/* out = rows [begin, end) of src, copied. */
void sr_csr_slice_rows(const sr_csr *src, int64_t begin, int64_t end, sr_csr *out);
/* out = columns [begin, end) of src, renumbered from 0 (out->n_cols = end -
 * begin), every row kept; source (src->nnz or more, may be NULL) receives the
 * position in src of each of out's entries, to carry per-entry data along. */
void sr_csr_slice_columns(const sr_csr *src, int64_t begin, int64_t end, sr_csr *out, int64_t *source);
/* Deep copy. */
void sr_csr_copy(const sr_csr *src, sr_csr *out);
/* Sorts each row's indices (and values) ascending; used by builders. */
void sr_csr_sort_rows(sr_csr *m);

#ifdef __cplusplus
}
#endif
#endif

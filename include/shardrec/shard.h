/*
 * shard.h — how the rows of a dataset are divided among ranks.
 *
 * Training rows: contiguous ranges balanced by interactions (nonzeros), so
 * every rank stores and reads about the same amount of data. Which rows a rank
 * computes at a step is decided by the global batch order (train.h), not by
 * the shard; the shard only says which rows it holds.
 * Evaluation rows: contiguous ranges of (nearly) equal row counts, since
 * scoring costs the same per user.
 */
#ifndef SHARDREC_SHARD_H
#define SHARDREC_SHARD_H

#include <stdint.h>

#include "shardrec/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* [begin, end) of n rows for part `part` of `parts`; sizes differ by <= 1. */
void sr_shard_even_range(int64_t n, int part, int parts, int64_t *begin, int64_t *end);
/* [begin, end) of the rows of a CSR (indptr: n_rows + 1) for part `part`:
 * part p starts at the first row whose indptr reaches p/parts of the nonzeros,
 * so shards differ from an even share of nonzeros by less than one row. */
void sr_shard_nnz_range(const int64_t *indptr, int64_t n_rows, int part, int parts, int64_t *begin, int64_t *end);
/* In memory: out = part `part` of `parts` of `full` exactly as
 * sr_dataset_read_shard would read it from a file (deep copies). */
void sr_dataset_shard(const sr_dataset *full, int part, int parts, sr_dataset *out);

#ifdef __cplusplus
}
#endif
#endif

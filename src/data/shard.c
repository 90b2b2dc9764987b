/* shard.c — dividing dataset rows among ranks (shard.h). */
#include "shardrec/shard.h"

#include <string.h>

#include "shardrec/mem.h"

void sr_shard_even_range(int64_t n, int part, int parts, int64_t *begin, int64_t *end) {
  int64_t base = n / parts, extra = n % parts;
  *begin = part * base + (part < extra ? part : extra);
  *end = *begin + base + (part < extra ? 1 : 0);
}

/* First row r with indptr[r] >= target (binary search; indptr is monotone). */
static int64_t first_row_reaching(const int64_t *indptr, int64_t n_rows, int64_t target) {
  int64_t lo = 0, hi = n_rows;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (indptr[mid] < target)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static int64_t nnz_cut(const int64_t *indptr, int64_t n_rows, int part, int parts) {
  if (part >= parts) return n_rows;
  int64_t nnz = indptr[n_rows];
  /* target = nnz * part / parts without overflow for any realistic nnz */
  int64_t target = nnz / parts * part + nnz % parts * part / parts;
  return first_row_reaching(indptr, n_rows, target);
}

void sr_shard_nnz_range(const int64_t *indptr, int64_t n_rows, int part, int parts, int64_t *begin, int64_t *end) {
  *begin = nnz_cut(indptr, n_rows, part, parts);
  *end = nnz_cut(indptr, n_rows, part + 1, parts);
}

static int64_t *copy_ids(const int64_t *ids, int64_t begin, int64_t end) {
  int64_t *out = sr_malloc((size_t)(end > begin ? end - begin : 1) * sizeof *out);
  if (end > begin) memcpy(out, ids + begin, (size_t)(end - begin) * sizeof *out);
  return out;
}

static void shard_eval(const sr_eval_split *full, int part, int parts, sr_eval_split *out) {
  int64_t begin, end;
  sr_shard_even_range(full->n_users, part, parts, &begin, &end);
  out->row_begin = begin;
  out->n_users = end - begin;
  out->n_users_total = full->n_users;
  out->user_ids = copy_ids(full->user_ids, begin, end);
  sr_csr_slice_rows(&full->foldin, begin, end, &out->foldin);
  sr_csr_slice_rows(&full->heldout, begin, end, &out->heldout);
}

static sr_feature *copy_features(const sr_feature *features, int n) {
  sr_feature *out = sr_calloc((size_t)(n > 0 ? n : 1), sizeof *out);
  for (int i = 0; i < n; i++) {
    out[i] = features[i];
    sr_csr_copy(&features[i].values, &out[i].values);
  }
  return out;
}

void sr_dataset_shard(const sr_dataset *full, int part, int parts, sr_dataset *out) {
  sr_dataset_init(out);
  out->schema_version = full->schema_version;
  out->protocol = full->protocol;
  out->n_items = full->n_items;
  out->n_users = full->n_users;
  int64_t begin, end;
  sr_shard_nnz_range(full->train.indptr, full->train.n_rows, part, parts, &begin, &end);
  out->train_row_begin = begin;
  out->train_rows_total = full->train.n_rows;
  sr_csr_slice_rows(&full->train, begin, end, &out->train);
  out->train_user_ids = copy_ids(full->train_user_ids, begin, end);
  shard_eval(&full->valid, part, parts, &out->valid);
  shard_eval(&full->test, part, parts, &out->test);
  out->item_features = copy_features(full->item_features, full->n_item_features);
  out->n_item_features = full->n_item_features;
  out->user_features = copy_features(full->user_features, full->n_user_features);
  out->n_user_features = full->n_user_features;
  out->n_cold_items = full->n_cold_items;
  out->cold_items = sr_malloc((size_t)(full->n_cold_items > 0 ? full->n_cold_items : 1) * sizeof *out->cold_items);
  memcpy(out->cold_items, full->cold_items, (size_t)full->n_cold_items * sizeof *out->cold_items);
}

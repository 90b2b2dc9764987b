/* dataset_hash.c — content hashes of a dataset, whole or sharded (dataset.h). */
#include "shardrec/dataset.h"

#include "shardrec/hash.h"

/* One row of a CSR: its entries (and values), tagged by split and global row
 * number so that moving a row elsewhere changes the hash. */
static uint64_t row_hash(uint64_t split, int64_t global_row, int64_t user, const sr_csr *m, int64_t r) {
  const uint64_t key[3] = {split, (uint64_t)global_row, (uint64_t)user};
  uint64_t h = sr_hash64(key, sizeof key, SR_HASH64_INIT);
  const int64_t begin = m->indptr[r], n = m->indptr[r + 1] - begin;
  h = sr_hash64(m->indices + begin, (size_t)n * sizeof *m->indices, h);
  if (m->values) h = sr_hash64(m->values + begin, (size_t)n * sizeof *m->values, h);
  return sr_hash64(&n, sizeof n, h); /* ends the row: [1 2][3] and [1][2 3] differ */
}

static uint64_t split_rows_hash(const sr_eval_split *s, uint64_t tag) {
  uint64_t sum = 0;
  for (int64_t r = 0; r < s->n_users; r++)
    sum += row_hash(tag, s->row_begin + r, s->user_ids[r], &s->foldin, r) +
           row_hash(tag + 1, s->row_begin + r, s->user_ids[r], &s->heldout, r);
  return sum;
}

uint64_t sr_dataset_rows_hash(const sr_dataset *d) {
  uint64_t sum = 0;
  for (int64_t r = 0; r < d->train.n_rows; r++)
    sum += row_hash(0, d->train_row_begin + r, d->train_user_ids[r], &d->train, r);
  return sum + split_rows_hash(&d->valid, 1) + split_rows_hash(&d->test, 3);
}

static uint64_t features_hash(const sr_feature *fs, int n, uint64_t h) {
  for (int i = 0; i < n; i++) {
    const sr_feature *f = &fs[i];
    h = sr_hash64(f->name, sizeof f->name, h);
    const int64_t shape[4] = {f->multi_valued, f->vocab_size, f->values.n_rows, f->values.nnz};
    h = sr_hash64(shape, sizeof shape, h);
    h = sr_hash64(f->values.indptr, (size_t)(f->values.n_rows + 1) * sizeof *f->values.indptr, h);
    h = sr_hash64(f->values.indices, (size_t)f->values.nnz * sizeof *f->values.indices, h);
  }
  return h;
}

uint64_t sr_dataset_shared_hash(const sr_dataset *d) {
  const int64_t header[7] = {d->schema_version,   d->protocol,          d->n_items,        d->n_users,
                             d->train_rows_total, d->valid.n_users_total, d->test.n_users_total};
  uint64_t h = sr_hash64(header, sizeof header, SR_HASH64_INIT);
  h = features_hash(d->item_features, d->n_item_features, h);
  return features_hash(d->user_features, d->n_user_features, h);
}

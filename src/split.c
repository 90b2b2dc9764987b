/*
 * split.c — the strong-generalisation split of a user x item log
 * (methods.md §1, Liang et al. 2018), producing an sr_dataset.
 *
 * All randomness comes from SR_RNG_SPLIT streams: one shuffle of all users,
 * and one held-out draw per evaluation user keyed by that user's id, so a
 * user's fold-in/held-out partition does not depend on which other users exist
 * or in which order they are processed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/dataset.h"
#include "shardrec/error.h"
#include "shardrec/mem.h"
#include "shardrec/rng.h"

enum { SPLIT_STEP_SHUFFLE = 0, SPLIT_STEP_HELDOUT = 1 };

void sr_split_opts_default(sr_split_opts *o) {
  o->n_heldout_users = 0; /* depends on the data: the caller must choose it */
  o->heldout_fraction = 0.2;
  o->min_items_for_heldout = 5;
  o->seed = 98765;
}

static int check_inputs(const sr_csr *full, const sr_feature *item_features, int n_item_features,
                        const sr_split_opts *o) {
  if (o->n_heldout_users < 1)
    return SR_FAIL(SR_EINVAL, "split: n_heldout_users is %lld; set it to the number of validation (= test) users",
                   (long long)o->n_heldout_users);
  if (2 * o->n_heldout_users >= full->n_rows)
    return SR_FAIL(SR_EINVAL, "split: 2 x %lld held-out users leave no training user among %lld users",
                   (long long)o->n_heldout_users, (long long)full->n_rows);
  if (!(o->heldout_fraction > 0.0 && o->heldout_fraction < 1.0))
    return SR_FAIL(SR_EINVAL, "split: heldout_fraction %g outside (0, 1)", o->heldout_fraction);
  if (o->min_items_for_heldout < 1)
    return SR_FAIL(SR_EINVAL, "split: min_items_for_heldout %lld < 1", (long long)o->min_items_for_heldout);
  SR_TRY(sr_csr_validate(full, "split: interaction matrix"));
  for (int f = 0; f < n_item_features; f++) {
    char what[SR_NAME_MAX + 32];
    snprintf(what, sizeof what, "split: item feature '%s'", item_features[f].name);
    SR_TRY(sr_csr_validate(&item_features[f].values, what));
    if (item_features[f].values.n_rows != full->n_cols)
      return SR_FAIL(SR_EINVAL, "split: item feature '%s' has %lld rows, expected one per item (%lld)",
                     item_features[f].name, (long long)item_features[f].values.n_rows, (long long)full->n_cols);
  }
  return SR_OK;
}

/* new_id[old] = dense id of an item some training user has, in increasing old-id
 * order, else -1. Returns the new->old map (*n_items entries). */
static int32_t *map_training_items(const sr_csr *train, int64_t n_old, int32_t *new_id, int64_t *n_items) {
  for (int64_t i = 0; i < n_old; i++) new_id[i] = -1;
  for (int64_t k = 0; k < train->nnz; k++) new_id[train->indices[k]] = 0; /* 0 = seen, until numbered */
  int32_t n = 0;
  for (int64_t i = 0; i < n_old; i++)
    if (new_id[i] == 0) new_id[i] = n++;
  int32_t *old_id = sr_malloc((size_t)(n > 0 ? n : 1) * sizeof *old_id);
  for (int64_t i = 0; i < n_old; i++)
    if (new_id[i] >= 0) old_id[new_id[i]] = (int32_t)i;
  *n_items = n;
  return old_id;
}

/* Picks int(frac * n) of the n positions uniformly without replacement
 * (partial Fisher-Yates) from the stream of `user`; chosen[p] = 1 for those. */
static void choose_heldout(const sr_split_opts *o, int64_t user, int64_t n, int64_t *order, uint8_t *chosen) {
  memset(chosen, 0, (size_t)n);
  if (n < o->min_items_for_heldout) return;
  int64_t n_out = (int64_t)(o->heldout_fraction * (double)n);
  sr_rng rng;
  sr_rng_init(&rng, o->seed, SR_RNG_SPLIT, SPLIT_STEP_HELDOUT, (uint64_t)user);
  for (int64_t p = 0; p < n; p++) order[p] = p;
  for (int64_t i = 0; i < n_out; i++) {
    int64_t j = i + (int64_t)sr_rng_below(&rng, (uint64_t)(n - i));
    int64_t t = order[i];
    order[i] = order[j], order[j] = t;
    chosen[order[i]] = 1;
  }
}

static void append_entry(sr_csr *m, int32_t item, float value) {
  m->indices[m->nnz] = item;
  if (m->values) m->values[m->nnz] = value;
  m->nnz++;
}

/* Rows of `users` restricted to training items, each split into fold-in and
 * held-out (both stay sorted: the item map is increasing). */
static void build_eval_split(const sr_csr *full, const int64_t *users, int64_t n_users, const int32_t *new_id,
                             int64_t n_items, const sr_split_opts *o, sr_eval_split *s) {
  int64_t max_nnz = 0, max_row = 0;
  for (int64_t r = 0; r < n_users; r++) {
    int64_t len = sr_csr_row_len(full, users[r]);
    max_nnz += len;
    max_row = len > max_row ? len : max_row;
  }
  s->n_users = n_users;
  s->user_ids = sr_malloc((size_t)(n_users > 0 ? n_users : 1) * sizeof *s->user_ids);
  memcpy(s->user_ids, users, (size_t)n_users * sizeof *users);
  sr_csr_alloc(&s->foldin, n_users, n_items, max_nnz, full->values != NULL);
  sr_csr_alloc(&s->heldout, n_users, n_items, max_nnz, full->values != NULL);
  s->foldin.nnz = s->heldout.nnz = 0;
  int64_t *kept = sr_malloc((size_t)(max_row > 0 ? max_row : 1) * sizeof *kept);
  int64_t *order = sr_malloc((size_t)(max_row > 0 ? max_row : 1) * sizeof *order);
  uint8_t *chosen = sr_malloc((size_t)(max_row > 0 ? max_row : 1));
  for (int64_t r = 0; r < n_users; r++) {
    int64_t n_kept = 0; /* positions in `full` of the row's training items */
    for (int64_t k = full->indptr[users[r]]; k < full->indptr[users[r] + 1]; k++)
      if (new_id[full->indices[k]] >= 0) kept[n_kept++] = k;
    choose_heldout(o, users[r], n_kept, order, chosen);
    for (int64_t p = 0; p < n_kept; p++)
      append_entry(chosen[p] ? &s->heldout : &s->foldin, new_id[full->indices[kept[p]]], sr_csr_value(full, kept[p]));
    s->foldin.indptr[r + 1] = s->foldin.nnz;
    s->heldout.indptr[r + 1] = s->heldout.nnz;
  }
  free(kept);
  free(order);
  free(chosen);
}

static void remap_features(const sr_feature *in, int n, const int32_t *old_id, int64_t n_items, sr_feature **out) {
  *out = sr_calloc(n > 0 ? (size_t)n : 1, sizeof **out);
  int64_t *rows = sr_malloc((size_t)(n_items > 0 ? n_items : 1) * sizeof *rows);
  for (int64_t i = 0; i < n_items; i++) rows[i] = old_id[i];
  for (int f = 0; f < n; f++) {
    memcpy((*out)[f].name, in[f].name, sizeof in[f].name);
    (*out)[f].multi_valued = in[f].multi_valued;
    (*out)[f].vocab_size = in[f].vocab_size;
    sr_csr_gather_rows(&in[f].values, rows, n_items, &(*out)[f].values);
  }
  free(rows);
}

int sr_split_strong(const sr_csr *full, const sr_feature *item_features, int n_item_features,
                    const sr_split_opts *opts, sr_dataset *out, int32_t **item_map_out) {
  sr_dataset_init(out);
  if (item_map_out) *item_map_out = NULL;
  SR_TRY(check_inputs(full, item_features, n_item_features, opts));
  int64_t n_users = full->n_rows, n_eval = opts->n_heldout_users, n_train = n_users - 2 * n_eval;

  /* Users in shuffled order: [train | valid | test], as the reference code. */
  int64_t *perm = sr_malloc((size_t)n_users * sizeof *perm);
  sr_rng rng;
  sr_rng_init(&rng, opts->seed, SR_RNG_SPLIT, SPLIT_STEP_SHUFFLE, 0);
  sr_rng_permutation(&rng, perm, n_users);

  sr_csr_gather_rows(full, perm, n_train, &out->train);
  int32_t *new_id = sr_malloc((size_t)(full->n_cols > 0 ? full->n_cols : 1) * sizeof *new_id);
  int32_t *old_id = map_training_items(&out->train, full->n_cols, new_id, &out->n_items);
  for (int64_t k = 0; k < out->train.nnz; k++) out->train.indices[k] = new_id[out->train.indices[k]];
  out->train.n_cols = out->n_items;
  out->n_users = n_users;
  out->train_user_ids = sr_malloc((size_t)n_train * sizeof *out->train_user_ids);
  memcpy(out->train_user_ids, perm, (size_t)n_train * sizeof *perm);

  build_eval_split(full, perm + n_train, n_eval, new_id, out->n_items, opts, &out->valid);
  build_eval_split(full, perm + n_train + n_eval, n_eval, new_id, out->n_items, opts, &out->test);
  remap_features(item_features, n_item_features, old_id, out->n_items, &out->item_features);
  out->n_item_features = n_item_features;
  sr_dataset_set_whole(out);

  free(perm);
  free(new_id);
  if (item_map_out)
    *item_map_out = old_id;
  else
    free(old_id);
  return SR_OK;
}

/*
 * split.c — the strong-generalisation split of a user x item log
 * (methods.md §1, Liang et al. 2018) and the weak-generalisation split (same
 * users, per-user held-out items), producing an sr_dataset.
 *
 * All randomness comes from SR_RNG_SPLIT streams: one shuffle of all users,
 * and one held-out draw per user keyed by that user's id, so a user's
 * partition does not depend on which other users exist or in which order they
 * are processed. Cold-start items (cold_item_fraction) are one draw of
 * their own, and under the weak protocol each user's cold interactions go to
 * validation or test from a stream of that user's own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/dataset.h"
#include "shardrec/error.h"
#include "shardrec/mem.h"
#include "shardrec/rng.h"

enum {
  SPLIT_STEP_SHUFFLE = 0,
  SPLIT_STEP_HELDOUT = 1,
  SPLIT_STEP_WEAK = 2,
  SPLIT_STEP_COLD = 3,
  SPLIT_STEP_COLD_PART = 4
};

void sr_split_opts_default(sr_split_opts *o) {
  o->n_heldout_users = 0; /* depends on the data: the caller must choose it */
  o->heldout_fraction = 0.2;
  o->min_items_for_heldout = 5;
  o->seed = 98765;
  o->cold_item_fraction = 0.0;
  o->validation_fraction = 0.0;
  o->keep_all_items = 0;
}

/* Checks shared by both protocols. */
static int check_inputs(const sr_csr *full, const sr_feature *item_features, int n_item_features,
                        const sr_split_opts *o) {
  if (!(o->heldout_fraction > 0.0 && o->heldout_fraction < 1.0))
    return SR_FAIL(SR_EINVAL, "split: heldout_fraction %g outside (0, 1)", o->heldout_fraction);
  if (!(o->cold_item_fraction >= 0.0 && o->cold_item_fraction < 1.0))
    return SR_FAIL(SR_EINVAL, "split: cold_item_fraction %g outside [0, 1)", o->cold_item_fraction);
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

/* Partial Fisher-Yates: order[0..k) becomes a uniform random choice, without
 * replacement and in drawing order, of the n values in order[0..n). */
static void shuffle_prefix(sr_rng *rng, int64_t *order, int64_t n, int64_t k) {
  for (int64_t i = 0; i < k; i++) {
    int64_t j = i + (int64_t)sr_rng_below(rng, (uint64_t)(n - i));
    int64_t t = order[i];
    order[i] = order[j], order[j] = t;
  }
}

/* cold[item] = 1 for int(frac * n) of the n items that have an interaction,
 * drawn uniformly; NULL when the fraction is 0 (no cold-start items). */
static uint8_t *choose_cold_items(const sr_csr *full, const sr_split_opts *o) {
  if (o->cold_item_fraction <= 0.0) return NULL;
  const int64_t n_cols = full->n_cols;
  uint8_t *cold = sr_calloc((size_t)(n_cols > 0 ? n_cols : 1), 1);
  int64_t *active = sr_malloc((size_t)(n_cols > 0 ? n_cols : 1) * sizeof *active), n = 0;
  for (int64_t k = 0; k < full->nnz; k++) cold[full->indices[k]] = 1; /* 1 = has an interaction, for now */
  for (int64_t i = 0; i < n_cols; i++)
    if (cold[i]) active[n++] = i;
  memset(cold, 0, (size_t)n_cols);
  const int64_t n_cold = (int64_t)(o->cold_item_fraction * (double)n);
  sr_rng rng;
  sr_rng_init(&rng, o->seed, SR_RNG_SPLIT, SPLIT_STEP_COLD, 0);
  shuffle_prefix(&rng, active, n, n_cold);
  for (int64_t i = 0; i < n_cold; i++) cold[active[i]] = 1;
  free(active);
  return cold;
}

static int is_cold(const uint8_t *cold, int32_t item) { return cold && cold[item]; }

/* Removes the cold items' entries from training rows m (user ids in row_ids),
 * and the rows left empty with their ids. */
static void drop_cold_entries(sr_csr *m, int64_t *row_ids, const uint8_t *cold) {
  int64_t k = 0, rows = 0, begin = m->indptr[0];
  for (int64_t r = 0; r < m->n_rows; r++) {
    const int64_t end = m->indptr[r + 1], row_start = k;
    for (int64_t p = begin; p < end; p++) {
      if (cold[m->indices[p]]) continue;
      m->indices[k] = m->indices[p];
      if (m->values) m->values[k] = m->values[p];
      k++;
    }
    begin = end; /* row r + 1's start, read before indptr[r + 1] is overwritten below */
    if (k == row_start) continue;
    row_ids[rows] = row_ids[r];
    m->indptr[++rows] = k;
  }
  m->n_rows = rows;
  m->nnz = k;
}

/* new_id[old] = dense id of an item some training user has or a cold-start
 * item, in increasing old-id order, else -1. Returns the new->old map
 * (*n_items entries). */
static int32_t *map_training_items(const sr_csr *train, const uint8_t *cold, int64_t n_old, int32_t *new_id,
                                   int64_t *n_items) {
  for (int64_t i = 0; i < n_old; i++) new_id[i] = is_cold(cold, (int32_t)i) ? 0 : -1;
  for (int64_t k = 0; k < train->nnz; k++) new_id[train->indices[k]] = 0; /* 0 = kept, until numbered */
  int32_t n = 0;
  for (int64_t i = 0; i < n_old; i++)
    if (new_id[i] == 0) new_id[i] = n++;
  int32_t *old_id = sr_malloc((size_t)(n > 0 ? n : 1) * sizeof *old_id);
  for (int64_t i = 0; i < n_old; i++)
    if (new_id[i] >= 0) old_id[new_id[i]] = (int32_t)i;
  *n_items = n;
  return old_id;
}

/* Picks int(frac * n) of the n positions uniformly without replacement from
 * the stream of `user`; chosen[p] = 1 for those. */
static void choose_heldout(const sr_split_opts *o, int64_t user, int64_t n, int64_t *order, uint8_t *chosen) {
  memset(chosen, 0, (size_t)n);
  if (n < o->min_items_for_heldout) return;
  int64_t n_out = (int64_t)(o->heldout_fraction * (double)n);
  sr_rng rng;
  sr_rng_init(&rng, o->seed, SR_RNG_SPLIT, SPLIT_STEP_HELDOUT, (uint64_t)user);
  for (int64_t p = 0; p < n; p++) order[p] = p;
  shuffle_prefix(&rng, order, n, n_out);
  for (int64_t i = 0; i < n_out; i++) chosen[order[i]] = 1;
}

static void append_entry(sr_csr *m, int32_t item, float value) {
  m->indices[m->nnz] = item;
  if (m->values) m->values[m->nnz] = value;
  m->nnz++;
}

/* Rows of `users` restricted to kept items, each split into fold-in and
 * held-out (both stay sorted: the item map is increasing); cold-start items
 * are always held out, the others drawn as choose_heldout says. */
static void build_eval_split(const sr_csr *full, const int64_t *users, int64_t n_users, const int32_t *new_id,
                             const uint8_t *cold, int64_t n_items, const sr_split_opts *o, sr_eval_split *s) {
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
    int64_t n_kept = 0, n_warm = 0; /* positions in `full` of the row's training items, cold ones last */
    for (int64_t k = full->indptr[users[r]]; k < full->indptr[users[r] + 1]; k++)
      if (new_id[full->indices[k]] >= 0 && !is_cold(cold, full->indices[k])) kept[n_kept++] = k;
    n_warm = n_kept;
    for (int64_t k = full->indptr[users[r]]; k < full->indptr[users[r] + 1]; k++)
      if (is_cold(cold, full->indices[k])) kept[n_kept++] = k;
    choose_heldout(o, users[r], n_warm, order, chosen);
    for (int64_t p = n_warm; p < n_kept; p++) chosen[p] = 1;
    /* Both parts in item order: warm and cold entries merged. */
    for (int64_t a = 0, b = n_warm; a < n_warm || b < n_kept;) {
      const int64_t p = b == n_kept || (a < n_warm && kept[a] < kept[b]) ? a++ : b++;
      append_entry(chosen[p] ? &s->heldout : &s->foldin, new_id[full->indices[kept[p]]], sr_csr_value(full, kept[p]));
    }
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

/* Both protocols train on the items training rows use (or, with keep_all,
 * on every column: published splits count items seen only in held-out rows),
 * and keep the cold-start items: renumbers out->train's columns densely (sets
 * out->n_items, out->cold_items) and returns new_id[old] (-1 for an item
 * neither), for the evaluation rows; *old_id receives the new->old map for
 * finish_split. */
static int32_t *keep_training_items(sr_dataset *out, const uint8_t *cold, int64_t n_cols, int keep_all,
                                    int32_t **old_id) {
  int32_t *new_id = sr_malloc((size_t)(n_cols > 0 ? n_cols : 1) * sizeof *new_id);
  if (keep_all) { /* the identity: every column stays an item */
    *old_id = sr_malloc((size_t)(n_cols > 0 ? n_cols : 1) * sizeof **old_id);
    for (int64_t i = 0; i < n_cols; i++) new_id[i] = (*old_id)[i] = (int32_t)i;
    out->n_items = n_cols;
  } else {
    *old_id = map_training_items(&out->train, cold, n_cols, new_id, &out->n_items);
  }
  out->cold_items = sr_malloc((size_t)(n_cols > 0 ? n_cols : 1) * sizeof *out->cold_items);
  for (int64_t i = 0; i < n_cols; i++)
    if (is_cold(cold, (int32_t)i)) out->cold_items[out->n_cold_items++] = new_id[i];
  for (int64_t k = 0; k < out->train.nnz; k++) out->train.indices[k] = new_id[out->train.indices[k]];
  out->train.n_cols = out->n_items;
  return new_id;
}

/* Item features in the new numbering, the dataset marked whole; the map is
 * handed to the caller (item_map_out) or freed. */
static void finish_split(sr_dataset *out, const sr_feature *item_features, int n_item_features, int32_t *old_id,
                         int32_t **item_map_out) {
  remap_features(item_features, n_item_features, old_id, out->n_items, &out->item_features);
  out->n_item_features = n_item_features;
  sr_dataset_set_whole(out);
  if (item_map_out)
    *item_map_out = old_id;
  else
    free(old_id);
}

int sr_split_strong(const sr_csr *full, const sr_feature *item_features, int n_item_features,
                    const sr_split_opts *opts, sr_dataset *out, int32_t **item_map_out) {
  sr_dataset_init(out);
  if (item_map_out) *item_map_out = NULL;
  if (opts->n_heldout_users < 1)
    return SR_FAIL(SR_EINVAL, "split: n_heldout_users is %lld; set it to the number of validation (= test) users",
                   (long long)opts->n_heldout_users);
  if (2 * opts->n_heldout_users >= full->n_rows)
    return SR_FAIL(SR_EINVAL, "split: 2 x %lld held-out users leave no training user among %lld users",
                   (long long)opts->n_heldout_users, (long long)full->n_rows);
  SR_TRY(check_inputs(full, item_features, n_item_features, opts));
  int64_t n_users = full->n_rows, n_eval = opts->n_heldout_users, n_train = n_users - 2 * n_eval;

  /* Users in shuffled order: [train | valid | test], as the reference code. */
  int64_t *perm = sr_malloc((size_t)n_users * sizeof *perm);
  sr_rng rng;
  sr_rng_init(&rng, opts->seed, SR_RNG_SPLIT, SPLIT_STEP_SHUFFLE, 0);
  sr_rng_permutation(&rng, perm, n_users);

  sr_csr_gather_rows(full, perm, n_train, &out->train);
  out->n_users = n_users;
  out->train_user_ids = sr_malloc((size_t)n_train * sizeof *out->train_user_ids);
  memcpy(out->train_user_ids, perm, (size_t)n_train * sizeof *perm);
  uint8_t *cold = choose_cold_items(full, opts);
  if (cold) drop_cold_entries(&out->train, out->train_user_ids, cold);
  int32_t *old_id, *new_id = keep_training_items(out, cold, full->n_cols, opts->keep_all_items, &old_id);

  build_eval_split(full, perm + n_train, n_eval, new_id, cold, out->n_items, opts, &out->valid);
  build_eval_split(full, perm + n_train + n_eval, n_eval, new_id, cold, out->n_items, opts, &out->test);
  finish_split(out, item_features, n_item_features, old_id, item_map_out);

  free(perm);
  free(new_id);
  free(cold);
  return SR_OK;
}

/* ---- weak generalisation ------------------------------------------------------------ */

enum { PART_TRAIN = 0, PART_VALID = 1, PART_TEST = 2 };
#define PARTS(a) (1u << (a))

typedef struct {
  int64_t key;
  int32_t item;
  int64_t pos;
} timed_entry;

static int earlier(const void *a, const void *b) {
  const timed_entry *x = a, *y = b;
  if (x->key != y->key) return (x->key > y->key) - (x->key < y->key);
  return (x->item > y->item) - (x->item < y->item);
}

/* The n entries of a row (from `first` in full) in time order: order[0] earliest. */
static void sort_by_time(const sr_csr *full, const int64_t *keys, int64_t first, int64_t n, timed_entry *scratch,
                         int64_t *order) {
  for (int64_t p = 0; p < n; p++) scratch[p] = (timed_entry){keys[first + p], full->indices[first + p], p};
  qsort(scratch, (size_t)n, sizeof *scratch, earlier);
  for (int64_t p = 0; p < n; p++) order[p] = scratch[p].pos;
}

/* part[first + p] for the n entries of user `user`'s row. order/scratch: n
 * entries. A cold-start item's entry is validation or test, half and half. */
static void divide_row(const sr_csr *full, sr_holdout holdout, const int64_t *keys, const uint8_t *cold,
                       const sr_split_opts *o, int64_t user, int64_t *order, timed_entry *scratch, uint8_t *part) {
  int64_t first = full->indptr[user], n = sr_csr_row_len(full, user), m = 0;
  sr_rng cold_rng;
  sr_rng_init(&cold_rng, o->seed, SR_RNG_SPLIT, SPLIT_STEP_COLD_PART, (uint64_t)user);
  for (int64_t p = 0; p < n; p++) {
    int64_t given = holdout == SR_HOLDOUT_GIVEN ? keys[first + p] : SR_GIVEN_TRAIN;
    part[first + p] = given == SR_GIVEN_TEST ? PART_TEST : given == SR_GIVEN_VALID ? PART_VALID : PART_TRAIN;
    if (is_cold(cold, full->indices[first + p]) && part[first + p] == PART_TRAIN)
      part[first + p] = sr_rng_uniform(&cold_rng) < 0.5f ? PART_VALID : PART_TEST;
    if (part[first + p] == PART_TRAIN) order[m++] = p; /* candidate positions, increasing */
  }
  if (m < o->min_items_for_heldout) return;
  double fraction = holdout == SR_HOLDOUT_GIVEN ? o->validation_fraction : o->heldout_fraction;
  int64_t n_out = (int64_t)(fraction * (double)m);
  sr_rng rng;
  sr_rng_init(&rng, o->seed, SR_RNG_SPLIT, SPLIT_STEP_WEAK, (uint64_t)user);
  if (holdout == SR_HOLDOUT_GIVEN) { /* the test items are given: draw validation items only */
    shuffle_prefix(&rng, order, m, n_out);
    for (int64_t i = 0; i < n_out; i++) part[first + order[i]] = PART_VALID;
    return;
  }
  if (holdout == SR_HOLDOUT_TEMPORAL) { /* the latest n_out are test, the n_out before them validation */
    sort_by_time(full, keys, first, n, scratch, order);
    for (int64_t i = n - 1, taken = 0; i >= 0 && taken < 2 * n_out; i--)
      if (part[first + order[i]] == PART_TRAIN) part[first + order[i]] = taken++ < n_out ? PART_TEST : PART_VALID;
    return;
  }
  shuffle_prefix(&rng, order, m, 2 * n_out); /* m == n but for cold-start items */
  for (int64_t i = 0; i < 2 * n_out; i++) part[first + order[i]] = i < n_out ? PART_TEST : PART_VALID;
}

static uint8_t *divide_rows(const sr_csr *full, sr_holdout holdout, const int64_t *keys, const uint8_t *cold,
                            const sr_split_opts *o) {
  int64_t widest = 1;
  for (int64_t u = 0; u < full->n_rows; u++)
    if (sr_csr_row_len(full, u) > widest) widest = sr_csr_row_len(full, u);
  uint8_t *part = sr_malloc((size_t)(full->nnz > 0 ? full->nnz : 1));
  int64_t *order = sr_malloc((size_t)widest * sizeof *order);
  timed_entry *scratch = sr_malloc((size_t)widest * sizeof *scratch);
  for (int64_t u = 0; u < full->n_rows; u++) divide_row(full, holdout, keys, cold, o, u, order, scratch, part);
  free(order);
  free(scratch);
  return part;
}

/* Whether entry k is in one of the `parts` and its item is kept (new_id NULL: all are). */
static int selected(const sr_csr *full, const uint8_t *part, unsigned parts, const int32_t *new_id, int64_t k) {
  return (PARTS(part[k]) & parts) && (!new_id || new_id[full->indices[k]] >= 0);
}

/* The users (in increasing order) with at least one selected entry; *n of them. */
static int64_t *users_with(const sr_csr *full, const uint8_t *part, unsigned parts, const int32_t *new_id,
                           int64_t *n) {
  int64_t *users = sr_malloc((size_t)(full->n_rows > 0 ? full->n_rows : 1) * sizeof *users);
  *n = 0;
  for (int64_t u = 0; u < full->n_rows; u++) {
    int64_t k = full->indptr[u];
    while (k < full->indptr[u + 1] && !selected(full, part, parts, new_id, k)) k++;
    if (k < full->indptr[u + 1]) users[(*n)++] = u;
  }
  return users;
}

/* out = the selected entries of rows `users` (remapped by new_id unless NULL);
 * rows stay sorted because the item map is increasing. */
static void gather_parts(const sr_csr *full, const uint8_t *part, unsigned parts, const int32_t *new_id,
                         int64_t n_cols, const int64_t *users, int64_t n_users, sr_csr *out) {
  int64_t nnz = 0;
  for (int64_t r = 0; r < n_users; r++)
    for (int64_t k = full->indptr[users[r]]; k < full->indptr[users[r] + 1]; k++)
      nnz += selected(full, part, parts, new_id, k);
  sr_csr_alloc(out, n_users, n_cols, nnz, full->values != NULL);
  out->nnz = 0;
  for (int64_t r = 0; r < n_users; r++) {
    for (int64_t k = full->indptr[users[r]]; k < full->indptr[users[r] + 1]; k++)
      if (selected(full, part, parts, new_id, k))
        append_entry(out, new_id ? new_id[full->indices[k]] : full->indices[k], sr_csr_value(full, k));
    out->indptr[r + 1] = out->nnz;
  }
}

/* The evaluation users with a kept item in `heldout_part`: fold-in = their
 * entries in `foldin_parts`, held-out = those in `heldout_part`. */
static void build_weak_eval(const sr_csr *full, const uint8_t *part, unsigned foldin_parts, unsigned heldout_part,
                            const int32_t *new_id, int64_t n_items, sr_eval_split *s) {
  s->user_ids = users_with(full, part, heldout_part, new_id, &s->n_users);
  gather_parts(full, part, foldin_parts, new_id, n_items, s->user_ids, s->n_users, &s->foldin);
  gather_parts(full, part, heldout_part, new_id, n_items, s->user_ids, s->n_users, &s->heldout);
}

static int check_weak_inputs(const sr_csr *full, sr_holdout holdout, const int64_t *entry_keys,
                             const sr_split_opts *o) {
  if (holdout != SR_HOLDOUT_RANDOM && holdout != SR_HOLDOUT_TEMPORAL && holdout != SR_HOLDOUT_GIVEN)
    return SR_FAIL(SR_EINVAL, "split: unknown holdout %d", (int)holdout);
  if (holdout != SR_HOLDOUT_RANDOM && !entry_keys)
    return SR_FAIL(SR_EINVAL, "split: the %s holdout needs %s per interaction",
                   holdout == SR_HOLDOUT_TEMPORAL ? "temporal" : "given",
                   holdout == SR_HOLDOUT_TEMPORAL ? "a timestamp" : "its part");
  /* Test and validation each take int(frac * n): together at most n. */
  if (holdout != SR_HOLDOUT_GIVEN && o->heldout_fraction >= 0.5)
    return SR_FAIL(SR_EINVAL,
                   "split: heldout_fraction %g leaves no training items (test and validation each take it)",
                   o->heldout_fraction);
  if (!(o->validation_fraction >= 0.0 && o->validation_fraction < 1.0))
    return SR_FAIL(SR_EINVAL, "split: validation_fraction %g outside [0, 1)", o->validation_fraction);
  if (holdout != SR_HOLDOUT_GIVEN && o->validation_fraction > 0.0)
    return SR_FAIL(SR_EINVAL,
                   "split: validation_fraction applies to the given holdout (the others draw validation "
                   "items like test items, by heldout_fraction)");
  if (full->n_rows < 1) return SR_FAIL(SR_EINVAL, "split: no users");
  return SR_OK;
}

int sr_split_weak(const sr_csr *full, sr_holdout holdout, const int64_t *entry_keys, const sr_feature *item_features,
                  int n_item_features, const sr_split_opts *opts, sr_dataset *out, int32_t **item_map_out) {
  sr_dataset_init(out);
  if (item_map_out) *item_map_out = NULL;
  SR_TRY(check_inputs(full, item_features, n_item_features, opts));
  SR_TRY(check_weak_inputs(full, holdout, entry_keys, opts));
  out->protocol = SR_PROTOCOL_WEAK;
  out->n_users = full->n_rows;
  uint8_t *cold = choose_cold_items(full, opts);
  uint8_t *part = divide_rows(full, holdout, entry_keys, cold, opts);

  int64_t n_train;
  out->train_user_ids = users_with(full, part, PARTS(PART_TRAIN), NULL, &n_train);
  gather_parts(full, part, PARTS(PART_TRAIN), NULL, full->n_cols, out->train_user_ids, n_train, &out->train);
  int32_t *old_id, *new_id = keep_training_items(out, cold, full->n_cols, opts->keep_all_items, &old_id);

  build_weak_eval(full, part, PARTS(PART_TRAIN), PARTS(PART_VALID), new_id, out->n_items, &out->valid);
  build_weak_eval(full, part, PARTS(PART_TRAIN) | PARTS(PART_VALID), PARTS(PART_TEST), new_id, out->n_items,
                  &out->test);
  finish_split(out, item_features, n_item_features, old_id, item_map_out);

  free(part);
  free(new_id);
  free(cold);
  return SR_OK;
}

/*
 * import_multvae.c — the Mult-VAE authors' preprocessing output, imported as
 * it is (import_internal.h): one directory with
 *   unique_sid.txt                the catalogue: item j is line j (a raw id)
 *   train.csv                     "uid,sid": the training users' rows
 *   validation_tr.csv / _te.csv   the validation users' fold-in / held-out items
 *   test_tr.csv / test_te.csv     the test users' fold-in / held-out items
 * (Liang et al. 2018, the notebook's numerize(): uid and sid are already the
 * dense numbers the paper trains on). Nothing is filtered, renumbered or
 * drawn: user u of the files is user u of the dataset, item j is item j, and
 * every split holds exactly its files' pairs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import_internal.h"
#include "shardrec/error.h"
#include "shardrec/mem.h"

/* The five pair files, in the order of their parts. */
enum { PART_TRAIN, PART_VALID_TR, PART_VALID_TE, PART_TEST_TR, PART_TEST_TE, N_PARTS };
static const char *const part_files[N_PARTS] = {"train.csv", "validation_tr.csv", "validation_te.csv", "test_tr.csv",
                                                "test_te.csv"};

/* Every (uid, sid) pair read, with its part. */
typedef struct {
  line_handlers h; /* first: the handlers receive &reader->h */
  int64_t n_items;
  int64_t n, cap;
  int64_t *uid;
  int32_t *sid;
  uint8_t *part;
  int64_t *records;
} pair_reader;

static int pair_header(line_handlers *h, char *line, size_t len, int *consumed) {
  (void)h;
  *consumed = 1;
  if (len == 7 && memcmp(line, "uid,sid", 7) == 0) return SR_OK;
  return SR_FAIL(SR_EFORMAT, "expected the header 'uid,sid', got '%.*s'", (int)(len < 80 ? len : 80), line);
}

static int pair_line(line_handlers *h, char *line, size_t len) {
  pair_reader *r = (pair_reader *)h;
  field f[2];
  field_syntax comma = {",", 0};
  int n = split_fields(line, len, &comma, f, 2);
  if (n != 2) return SR_FAIL(SR_EFORMAT, "expected 2 fields separated by ',', got %d", n);
  int64_t uid, sid;
  if (field_to_int64(f[0], &uid) != 0 || uid < 0 || uid > INT32_MAX)
    return SR_FAIL(SR_EFORMAT, "uid '%.*s' is not a user number in [0, %d]", (int)f[0].len, f[0].s, INT32_MAX);
  if (field_to_int64(f[1], &sid) != 0 || sid < 0 || sid >= r->n_items)
    return SR_FAIL(SR_EFORMAT, "sid '%.*s' is not an item number of unique_sid.txt [0, %lld)", (int)f[1].len, f[1].s,
                   (long long)r->n_items);
  if (r->n == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 1 << 16;
    r->uid = sr_realloc(r->uid, (size_t)r->cap * sizeof *r->uid);
    r->sid = sr_realloc(r->sid, (size_t)r->cap * sizeof *r->sid);
    r->part = sr_realloc(r->part, (size_t)r->cap * sizeof *r->part);
  }
  r->uid[r->n] = uid;
  r->sid[r->n] = (int32_t)sid;
  r->part[r->n++] = (uint8_t)h->file_index;
  (*r->records)++;
  return SR_OK;
}

/* unique_sid.txt: one raw item id per line, in item order. */
typedef struct {
  line_handlers h;
  id_dict sids;
} sid_reader;

static int sid_line(line_handlers *h, char *line, size_t len) {
  sid_reader *r = (sid_reader *)h;
  if (memchr(line, '\0', len)) return SR_FAIL(SR_EFORMAT, "item id contains a NUL byte");
  int64_t before = r->sids.n;
  if (id_dict_add_string(&r->sids, line, len) < 0) return SR_FAIL(SR_EINVAL, "more than %d items", ID_DICT_MAX);
  if (r->sids.n == before) return SR_FAIL(SR_EFORMAT, "item '%.*s' is listed twice", (int)len, line);
  return SR_OK;
}

/* The raw item ids: integers when every line is one, else the strings. */
static void export_sids(const id_dict *sids, sr_raw_ids *items) {
  int32_t *order = sr_malloc((size_t)(sids->n > 0 ? sids->n : 1) * sizeof *order);
  for (int64_t j = 0; j < sids->n; j++) order[j] = (int32_t)j;
  id_dict_export(sids, order, sids->n, items);
  free(order);
  int64_t *numbers = sr_malloc((size_t)(items->n > 0 ? items->n : 1) * sizeof *numbers);
  int64_t j = 0;
  for (; j < items->n; j++) {
    field f = {items->strings + (size_t)j * (size_t)items->width, 0};
    f.len = strnlen(f.s, (size_t)items->width);
    if (field_to_int64(f, &numbers[j]) != 0) break;
  }
  if (j < items->n) {
    free(numbers);
    return;
  }
  free(items->strings);
  items->strings = NULL;
  items->width = 0;
  items->numbers = numbers;
}

static void path_in(char *buf, size_t cap, const char *dir, const char *name) {
  snprintf(buf, cap, "%s/%s", dir, name);
}

/* The pairs as a users x items CSR (rows sorted), entry_keys = parts. A pair
 * given twice, in one file or in a fold-in and a held-out file, is an error. */
static int build_full(const pair_reader *r, sr_import_table *t) {
  int64_t n_users = 0;
  for (int64_t k = 0; k < r->n; k++)
    if (r->uid[k] + 1 > n_users) n_users = r->uid[k] + 1;
  sr_csr *m = &t->full;
  sr_csr_alloc(m, n_users, r->n_items, r->n, 0);
  t->entry_keys = sr_malloc((size_t)(r->n > 0 ? r->n : 1) * sizeof *t->entry_keys);
  for (int64_t k = 0; k < r->n; k++) m->indptr[r->uid[k] + 1]++;
  for (int64_t u = 0; u < n_users; u++) m->indptr[u + 1] += m->indptr[u];
  int64_t *next = sr_malloc((size_t)(n_users > 0 ? n_users : 1) * sizeof *next);
  memcpy(next, m->indptr, (size_t)n_users * sizeof *next);
  for (int64_t k = 0; k < r->n; k++) {
    int64_t at = next[r->uid[k]]++;
    m->indices[at] = r->sid[k];
    t->entry_keys[at] = r->part[k];
  }
  free(next);
  int rc = SR_OK;
  for (int64_t u = 0; u < n_users && rc == SR_OK; u++) {
    int64_t b = m->indptr[u], e = m->indptr[u + 1];
    for (int64_t i = b + 1; i < e; i++) { /* insertion sort of (item, part): rows are short */
      int32_t item = m->indices[i];
      int64_t part = t->entry_keys[i], j = i;
      for (; j > b && m->indices[j - 1] > item; j--)
        m->indices[j] = m->indices[j - 1], t->entry_keys[j] = t->entry_keys[j - 1];
      m->indices[j] = item, t->entry_keys[j] = part;
    }
    for (int64_t i = b + 1; i < e && rc == SR_OK; i++)
      if (m->indices[i] == m->indices[i - 1])
        rc = SR_FAIL(SR_EFORMAT, "uid %lld, sid %d: given twice (in %s and %s)", (long long)u, m->indices[i],
                     part_files[t->entry_keys[i - 1]], part_files[t->entry_keys[i]]);
  }
  t->users.n = n_users;
  t->users.numbers = sr_malloc((size_t)(n_users > 0 ? n_users : 1) * sizeof *t->users.numbers);
  for (int64_t u = 0; u < n_users; u++) t->users.numbers[u] = u;
  return rc;
}

int multvae_load(const sr_import_opts *o, sr_import_table *t) {
  const char *dir = o->inputs[0];
  char path[4096];
  sid_reader sids = {.h = {.line = sid_line}};
  id_dict_init(&sids.sids, 1);
  path_in(path, sizeof path, dir, "unique_sid.txt");
  int rc = read_lines(path, 0, 0, &sids.h, &t->stats);
  if (rc == SR_OK) export_sids(&sids.sids, &t->items);
  id_dict_free(&sids.sids);
  pair_reader r = {
      .h = {.first = pair_header, .line = pair_line}, .n_items = t->items.n, .records = &t->stats.records};
  for (int p = 0; p < N_PARTS && rc == SR_OK; p++) {
    path_in(path, sizeof path, dir, part_files[p]);
    rc = read_lines(path, p, 0, &r.h, &t->stats);
  }
  if (rc == SR_OK) rc = build_full(&r, t);
  free(r.uid);
  free(r.sid);
  free(r.part);
  return rc;
}

/* ---- the split, as given --------------------------------------------------------------------- */

/* Which split a user's parts put it in: 0 train, 1 valid, 2 test, -1 none. */
static int split_of_part(int64_t part) { return part == PART_TRAIN ? 0 : part <= PART_VALID_TE ? 1 : 2; }

/* Rows of `users` with their entries of part `part` (sorted already). */
static void gather_part(const sr_csr *full, const int64_t *keys, const int64_t *users, int64_t n_users, int64_t part,
                        sr_csr *out) {
  int64_t nnz = 0;
  for (int64_t r = 0; r < n_users; r++)
    for (int64_t k = full->indptr[users[r]]; k < full->indptr[users[r] + 1]; k++) nnz += keys[k] == part;
  sr_csr_alloc(out, n_users, full->n_cols, nnz, 0);
  out->nnz = 0;
  for (int64_t r = 0; r < n_users; r++) {
    for (int64_t k = full->indptr[users[r]]; k < full->indptr[users[r] + 1]; k++)
      if (keys[k] == part) out->indices[out->nnz++] = full->indices[k];
    out->indptr[r + 1] = out->nnz;
  }
}

int multvae_split(const sr_import_table *t, sr_dataset *d) {
  const sr_csr *full = &t->full;
  sr_dataset_init(d);
  d->protocol = SR_PROTOCOL_STRONG;
  d->n_users = full->n_rows;
  d->n_items = full->n_cols;
  int64_t *users[3], n[3] = {0, 0, 0};
  for (int s = 0; s < 3; s++) users[s] = sr_malloc((size_t)(full->n_rows > 0 ? full->n_rows : 1) * sizeof **users);
  int rc = SR_OK;
  for (int64_t u = 0; u < full->n_rows && rc == SR_OK; u++) {
    int64_t b = full->indptr[u], e = full->indptr[u + 1];
    if (b == e) continue; /* a uid no file names */
    int s = split_of_part(t->entry_keys[b]);
    for (int64_t k = b + 1; k < e && rc == SR_OK; k++)
      if (split_of_part(t->entry_keys[k]) != s)
        rc = SR_FAIL(SR_EFORMAT, "uid %lld is in %s and in %s: the strong split needs disjoint users", (long long)u,
                     part_files[t->entry_keys[b]], part_files[t->entry_keys[k]]);
    users[s][n[s]++] = u;
  }
  if (rc == SR_OK) {
    gather_part(full, t->entry_keys, users[0], n[0], PART_TRAIN, &d->train);
    d->train_user_ids = users[0], users[0] = NULL;
    sr_eval_split *eval[2] = {&d->valid, &d->test};
    for (int s = 1; s <= 2; s++) {
      eval[s - 1]->n_users = n[s];
      gather_part(full, t->entry_keys, users[s], n[s], s == 1 ? PART_VALID_TR : PART_TEST_TR, &eval[s - 1]->foldin);
      gather_part(full, t->entry_keys, users[s], n[s], s == 1 ? PART_VALID_TE : PART_TEST_TE, &eval[s - 1]->heldout);
      eval[s - 1]->user_ids = users[s], users[s] = NULL;
    }
    sr_dataset_set_whole(d);
  }
  for (int s = 0; s < 3; s++) free(users[s]);
  return rc;
}

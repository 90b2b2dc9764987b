/*
 * import.c — the `data import` pipeline (import.h): options and format
 * detection, the compact interaction log, the user x item matrix in raw-id
 * order, duplicates and minimum counts, the split, and the written file with
 * its raw ids (/ids) and preprocessing record (/import).
 */
#include "shardrec/import.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "import_internal.h"
#include "shardrec/error.h"
#include "shardrec/fsutil.h"
#include "shardrec/h5io.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"

/* ---- names and defaults ----------------------------------------------------------------- */

static const char *const format_names[] = {"auto",     "movielens", "netflix", "msd",
                                           "lightgcn", "csv",       "multvae", "recbole"};
static const char *const duplicates_names[] = {"last", "first", "max", "sum", "error"};
static const char *const holdout_names[] = {"random", "temporal", "given"};
#define COUNT(a) (int)(sizeof(a) / sizeof((a)[0]))

static int index_of(const char *name, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (strcmp(name, names[i]) == 0) return i;
  return -1;
}

const char *sr_import_format_name(sr_import_format f) { return format_names[f]; }
const char *sr_duplicates_name(sr_duplicates d) { return duplicates_names[d]; }

int sr_import_format_from_name(const char *name, sr_import_format *f) {
  int i = index_of(name, format_names, COUNT(format_names));
  if (i < 0)
    return SR_FAIL(SR_EINVAL, "unknown format '%s' (movielens, netflix, msd, lightgcn, csv, multvae, recbole)", name);
  *f = (sr_import_format)i;
  return SR_OK;
}

int sr_duplicates_from_name(const char *name, sr_duplicates *d) {
  int i = index_of(name, duplicates_names, COUNT(duplicates_names));
  if (i < 0) return SR_FAIL(SR_EINVAL, "unknown duplicates policy '%s' (last, first, max, sum, error)", name);
  *d = (sr_duplicates)i;
  return SR_OK;
}

void sr_import_opts_default(sr_import_opts *o, sr_import_format format) {
  memset(o, 0, sizeof *o);
  o->format = format;
  o->duplicates = SR_DUPLICATES_LAST;
  o->protocol = SR_PROTOCOL_STRONG;
  o->holdout = SR_HOLDOUT_RANDOM;
  sr_split_opts_default(&o->split);
  o->compression = sr_h5_compression_of(SR_H5_ZSTD);
  switch (format) {
    case SR_IMPORT_MOVIELENS:
    case SR_IMPORT_NETFLIX: /* the paper: ratings >= 4 (> 3.5), users with >= 5 of them */
      o->has_min_rating = 1;
      o->min_rating = 4.0;
      o->min_user_items = 5;
      break;
    case SR_IMPORT_MSD: /* the paper: users with >= 20 songs, songs with >= 200 users */
      o->min_user_items = 20;
      o->min_item_users = 200;
      o->string_ids = 1;
      break;
    case SR_IMPORT_LIGHTGCN: /* the given train/test split, kept as is */
      o->protocol = SR_PROTOCOL_WEAK;
      o->holdout = SR_HOLDOUT_GIVEN;
      break;
    case SR_IMPORT_RECBOLE: /* tokens are strings */
      o->string_ids = 1;
      break;
    case SR_IMPORT_MULTVAE: /* its own given split (import_multvae.c) */
    case SR_IMPORT_CSV:
    case SR_IMPORT_AUTO:
      break;
  }
}

void sr_import_set_inputs(sr_import_opts *o, const char *const *inputs, int n_inputs) {
  o->inputs = inputs;
  o->n_inputs = n_inputs;
  if (o->format == SR_IMPORT_RECBOLE && recbole_presplit(o)) {
    o->protocol = SR_PROTOCOL_WEAK;
    o->holdout = SR_HOLDOUT_GIVEN;
  }
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The format a file name implies, or AUTO when it says nothing. */
static sr_import_format format_of_name(const char *path) {
  char sids[4096];
  snprintf(sids, sizeof sids, "%s/unique_sid.txt", path);
  if (is_dir(path) && access(sids, R_OK) == 0) return SR_IMPORT_MULTVAE;
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (sr_has_suffix(base, ".inter")) return SR_IMPORT_RECBOLE;
  if (!strcmp(base, "u.data") || !strcmp(base, "ratings.dat") || !strcmp(base, "ratings.csv"))
    return SR_IMPORT_MOVIELENS;
  if ((!strncmp(base, "combined_data", 13) || !strncmp(base, "mv_", 3)) && sr_has_suffix(base, ".txt"))
    return SR_IMPORT_NETFLIX;
  if (strstr(base, "triplets")) return SR_IMPORT_MSD;
  if (!strcmp(base, "train.txt") || !strcmp(base, "test.txt")) return SR_IMPORT_LIGHTGCN;
  if (sr_has_suffix(base, ".csv") || sr_has_suffix(base, ".tsv")) return SR_IMPORT_CSV;
  return SR_IMPORT_AUTO;
}

int sr_import_detect_format(const char *const *inputs, int n_inputs, sr_import_format *format) {
  *format = SR_IMPORT_AUTO;
  for (int i = 0; i < n_inputs; i++) {
    sr_import_format f = format_of_name(inputs[i]);
    if (f == SR_IMPORT_AUTO)
      return SR_FAIL(SR_EINVAL, "cannot tell the format of '%s' from its name; give --format", inputs[i]);
    if (i > 0 && f != *format)
      return SR_FAIL(SR_EINVAL, "'%s' looks like %s but '%s' like %s; give --format", inputs[0],
                     format_names[*format], inputs[i], format_names[f]);
    *format = f;
  }
  if (*format == SR_IMPORT_AUTO) return SR_FAIL(SR_EINVAL, "no input file");
  return SR_OK;
}

/* ---- options ---------------------------------------------------------------------------- */

/* Option values that are wrong whatever the input, named as on the command
 * line, before any input is read. */
static int check_option_values(const sr_import_opts *o) {
  const sr_split_opts *s = &o->split;
  if (o->has_min_rating && !isfinite(o->min_rating))
    return SR_FAIL(SR_EINVAL, "--min-rating: %g is not a finite number", o->min_rating);
  int given = o->protocol == SR_PROTOCOL_WEAK && o->holdout == SR_HOLDOUT_GIVEN;
  double max_heldout = o->protocol == SR_PROTOCOL_WEAK ? 0.5 : 1.0; /* weak: test and validation each take it */
  if (!given && !(s->heldout_fraction > 0.0 && s->heldout_fraction < max_heldout))
    return SR_FAIL(
        SR_EINVAL, "--heldout-fraction %g outside (0, %g)%s", s->heldout_fraction, max_heldout,
        o->format == SR_IMPORT_LIGHTGCN ? " (with --holdout given the test file holds the test items)" : "");
  if (!(s->validation_fraction >= 0.0 && s->validation_fraction < 1.0))
    return SR_FAIL(SR_EINVAL, "--validation-fraction %g outside [0, 1)", s->validation_fraction);
  if (!given && s->validation_fraction > 0.0)
    return SR_FAIL(SR_EINVAL,
                   "--validation-fraction applies to --holdout given (the other splits hold out "
                   "validation items as test items, by --heldout-fraction)");
  return SR_OK;
}

/* The Mult-VAE directory is imported as it is: no option changes it. */
static int check_multvae_opts(const sr_import_opts *o) {
  if (o->n_inputs != 1 || !is_dir(o->inputs[0]))
    return SR_FAIL(SR_EINVAL,
                   "multvae: give one directory (with unique_sid.txt, train.csv, validation_tr.csv, "
                   "validation_te.csv, test_tr.csv, test_te.csv)");
  const struct {
    int set;
    const char *option;
  } changes[] = {{o->has_min_rating, "--min-rating"},
                 {o->min_user_items > 0 || o->min_item_users > 0, "the minimum counts"},
                 {o->keep_values, "--keep-values"},
                 {o->protocol != SR_PROTOCOL_STRONG, "--protocol"},
                 {o->split.n_heldout_users > 0, "--heldout-users"},
                 {o->movies_path || o->users_path, "--movies / --users"},
                 {o->columns != NULL, "--columns"}};
  for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++)
    if (changes[i].set)
      return SR_FAIL(SR_EINVAL, "%s: the Mult-VAE split is imported as it is (users, items and splits)",
                     changes[i].option);
  return SR_OK;
}

static int check_opts(const sr_import_opts *o, int has_rating, int has_timestamp) {
  const char *format = format_names[o->format];
  if (o->n_inputs < 1) return SR_FAIL(SR_EINVAL, "no input file");
  /* A CSV log may be a filtered MovieLens one: its ids are then MovieLens ids. */
  if ((o->movies_path || o->users_path) && o->format != SR_IMPORT_MOVIELENS && o->format != SR_IMPORT_CSV)
    return SR_FAIL(SR_EINVAL, "--movies and --users describe MovieLens ids (movielens or csv input), not %s ids",
                   format);
  if (o->has_min_rating && !has_rating)
    return SR_FAIL(SR_EINVAL, "--min-rating: the %s input has no rating column", format);
  if (o->keep_values && !has_rating)
    return SR_FAIL(SR_EINVAL, "--keep-values: the %s input has no rating or weight column", format);
  if (o->min_user_items < 0 || o->min_item_users < 0)
    return SR_FAIL(SR_EINVAL, "minimum counts must be >= 0 (users %lld, items %lld)", (long long)o->min_user_items,
                   (long long)o->min_item_users);
  if (o->protocol != SR_PROTOCOL_WEAK) return SR_OK;
  if (o->split.n_heldout_users != 0)
    return SR_FAIL(SR_EINVAL, "--heldout-users: the weak protocol holds out items of every user, not users");
  if (o->holdout == SR_HOLDOUT_TEMPORAL && !has_timestamp)
    return SR_FAIL(SR_EINVAL, "--holdout temporal: the %s input has no timestamps", format);
  if (o->holdout == SR_HOLDOUT_GIVEN && o->format != SR_IMPORT_LIGHTGCN && !recbole_presplit(o))
    return SR_FAIL(SR_EINVAL,
                   "--holdout given: only LightGCN inputs (train.txt, test.txt) and RecBole's "
                   "NAME.train.inter, NAME.valid.inter, NAME.test.inter give the test items");
  if (recbole_presplit(o) && o->holdout != SR_HOLDOUT_GIVEN)
    return SR_FAIL(SR_EINVAL,
                   "recbole: NAME.train.inter, NAME.valid.inter, NAME.test.inter are a given split "
                   "(--protocol weak --holdout given)");
  if (recbole_presplit(o) && o->split.validation_fraction > 0.0)
    return SR_FAIL(SR_EINVAL, "--validation-fraction: NAME.valid.inter gives the validation split");
  return SR_OK;
}

/* ---- the interaction log --------------------------------------------------------------------- */

/* What the per-interaction key column holds (sr_split_weak's entry_keys):
 * a timestamp, or the part (SR_GIVEN_*) the line's file gives. */
typedef enum { KEY_NONE, KEY_TIMESTAMP, KEY_GIVEN_PART } key_kind;

/* Every kept line, column-wise, with first-seen dense ids: 8 bytes per line,
 * plus 4 with values and 8 with keys. */
typedef struct {
  record_sink sink; /* first: parse_inputs calls back with &log->sink */
  const sr_import_opts *o;
  sr_import_stats *stats;
  id_dict users, items;
  int with_values;
  key_kind keys;
  int64_t n;
  size_t cap;
  int32_t *user, *item;
  float *value;
  int64_t *key;
} interaction_log;

static void free_log_columns(interaction_log *l) {
  free(l->user);
  free(l->item);
  free(l->value);
  free(l->key);
  l->user = l->item = NULL;
  l->value = NULL;
  l->key = NULL;
}

static void grow_log(interaction_log *l) {
  if ((size_t)l->n < l->cap) return;
  l->cap = l->cap ? 2 * l->cap : 1 << 16;
  l->user = sr_realloc(l->user, l->cap * sizeof *l->user);
  l->item = sr_realloc(l->item, l->cap * sizeof *l->item);
  if (l->with_values) l->value = sr_realloc(l->value, l->cap * sizeof *l->value);
  if (l->keys != KEY_NONE) l->key = sr_realloc(l->key, l->cap * sizeof *l->key);
}

/* Checks an id field; *number receives an integer id. */
static int check_id(const id_dict *d, field f, const char *kind, int64_t *number) {
  if (f.len == 0) return SR_FAIL(SR_EFORMAT, "empty %s id", kind);
  /* /ids stores NUL-padded strings: "a" and "a\0" would become one id there. */
  if (d->strings && memchr(f.s, '\0', f.len)) return SR_FAIL(SR_EFORMAT, "%s id contains a NUL byte", kind);
  if (!d->strings && field_to_int64(f, number) != 0)
    return SR_FAIL(SR_EFORMAT, "%s id '%.*s' is not an integer", kind, (int)f.len, f.s);
  return SR_OK;
}

static int32_t intern(id_dict *d, field f, int64_t number) {
  return d->strings ? id_dict_add_string(d, f.s, f.len) : id_dict_add_number(d, number);
}

/* The part of a given split that the inputs' file_index-th file holds:
 * LightGCN's train.txt then test.txt, RecBole's .train, .valid, .test.inter. */
static int64_t given_part(const sr_import_opts *o, int file_index) {
  static const int64_t recbole[3] = {SR_GIVEN_TRAIN, SR_GIVEN_VALID, SR_GIVEN_TEST};
  if (o->format == SR_IMPORT_RECBOLE) return recbole[file_index];
  return file_index == 0 ? SR_GIVEN_TRAIN : SR_GIVEN_TEST;
}

static int add_record(record_sink *sink, const raw_record *r, int file_index) {
  interaction_log *l = (interaction_log *)sink;
  int64_t user_number = 0, item_number = 0;
  SR_TRY(check_id(&l->users, r->user, "user", &user_number));
  SR_TRY(check_id(&l->items, r->item, "item", &item_number));
  l->stats->records++;
  if (l->o->has_min_rating && r->rating < l->o->min_rating) {
    l->stats->below_min_rating++;
    return SR_OK;
  }
  int32_t user = intern(&l->users, r->user, user_number), item = intern(&l->items, r->item, item_number);
  if (user < 0 || item < 0)
    return SR_FAIL(SR_EINVAL, "more than %d distinct %s", ID_DICT_MAX, user < 0 ? "users" : "items");
  grow_log(l);
  l->user[l->n] = user;
  l->item[l->n] = item;
  if (l->with_values) l->value[l->n] = (float)r->rating;
  if (l->keys != KEY_NONE) l->key[l->n] = l->keys == KEY_TIMESTAMP ? r->timestamp : given_part(l->o, file_index);
  l->n++;
  return SR_OK;
}

/* ---- the matrix ------------------------------------------------------------------------------ */

/* The log's users and items sorted by raw id: order[rank] = dict id, rank[dict id]. */
typedef struct {
  int32_t *order, *rank;
} ranking;

static void rank_ids(const id_dict *d, ranking *r) {
  r->order = sr_malloc((size_t)(d->n > 0 ? d->n : 1) * sizeof *r->order);
  r->rank = sr_malloc((size_t)(d->n > 0 ? d->n : 1) * sizeof *r->rank);
  id_dict_sorted(d, r->order);
  for (int64_t i = 0; i < d->n; i++) r->rank[r->order[i]] = (int32_t)i;
}

static void free_ranking(ranking *r) {
  free(r->order);
  free(r->rank);
}

/* Counting sort of the log by user rank (stable: a row keeps the line order),
 * columns = item ranks. The log's columns are freed. */
static void build_matrix(interaction_log *l, const ranking *users, const ranking *items, sr_csr *m, int64_t **keys) {
  sr_csr_alloc(m, l->users.n, l->items.n, l->n, l->with_values);
  *keys = l->keys != KEY_NONE ? sr_malloc((size_t)(l->n > 0 ? l->n : 1) * sizeof **keys) : NULL;
  for (int64_t k = 0; k < l->n; k++) m->indptr[users->rank[l->user[k]] + 1]++;
  for (int64_t r = 0; r < m->n_rows; r++) m->indptr[r + 1] += m->indptr[r];
  int64_t *next = sr_malloc((size_t)(m->n_rows > 0 ? m->n_rows : 1) * sizeof *next);
  memcpy(next, m->indptr, (size_t)m->n_rows * sizeof *next);
  for (int64_t k = 0; k < l->n; k++) {
    int64_t at = next[users->rank[l->user[k]]]++;
    m->indices[at] = items->rank[l->item[k]];
    if (m->values) m->values[at] = l->value[k];
    if (*keys) (*keys)[at] = l->key[k];
  }
  free(next);
  free_log_columns(l);
}

typedef struct {
  int32_t item;
  int32_t pos; /* position in the row = line order */
} row_entry;

static int by_item_then_line(const void *a, const void *b) {
  const row_entry *x = a, *y = b;
  if (x->item != y->item) return (x->item > y->item) - (x->item < y->item);
  return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Scratch copies of one row while it is rewritten in place. */
typedef struct {
  row_entry *entries;
  float *values;
  int64_t *keys;
  size_t entries_cap, values_cap, keys_cap;
} row_scratch;

typedef struct {
  const sr_import_opts *o;
  const interaction_log *log; /* dictionaries, for messages */
  const ranking *users, *items;
  row_scratch s;
} merger;

static int duplicate_error(const merger *g, int64_t row, int32_t item) {
  char user_id[96], item_id[96];
  id_dict_describe(&g->log->users, g->users->order[row], user_id, sizeof user_id);
  id_dict_describe(&g->log->items, g->items->order[item], item_id, sizeof item_id);
  return SR_FAIL(SR_EFORMAT, "user %s rated item %s more than once (--duplicates last|first|max|sum merges them)",
                 user_id, item_id);
}

/* The line (position in the row) whose value and key survive for the group
 * e[0..n) of one item, and the value. */
static int64_t merge_group(const merger *g, const row_entry *e, int64_t n, float *value) {
  const float *v = g->s.values;
  int64_t kept = e[n - 1].pos; /* LAST, and SUM's key */
  switch (g->o->duplicates) {
    case SR_DUPLICATES_FIRST:
      kept = e[0].pos;
      break;
    case SR_DUPLICATES_MAX:
      for (int64_t i = 0; v && i < n; i++)
        if (v[e[i].pos] >= v[kept]) kept = e[i].pos;
      break;
    default:
      break;
  }
  *value = v ? v[kept] : 1.0f;
  if (g->o->duplicates == SR_DUPLICATES_SUM && v) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += v[e[i].pos];
    *value = (float)sum;
  }
  return kept;
}

/* Sorts row r (entries [b, e)) by item and merges repeated items, writing the
 * result from position *w on (*w <= b) and advancing *w. */
static int merge_row(merger *g, sr_csr *m, int64_t *keys, int64_t r, int64_t b, int64_t e, int64_t *w,
                     int64_t *duplicates) {
  int64_t len = e - b;
  row_scratch *s = &g->s;
  sr_grow(&s->entries, &s->entries_cap, (size_t)len);
  for (int64_t p = 0; p < len; p++) s->entries[p] = (row_entry){m->indices[b + p], (int32_t)p};
  if (m->values) {
    sr_grow(&s->values, &s->values_cap, (size_t)len);
    memcpy(s->values, m->values + b, (size_t)len * sizeof *s->values);
  }
  if (keys) {
    sr_grow(&s->keys, &s->keys_cap, (size_t)len);
    memcpy(s->keys, keys + b, (size_t)len * sizeof *s->keys);
  }
  qsort(s->entries, (size_t)len, sizeof *s->entries, by_item_then_line);
  for (int64_t i = 0, j; i < len; i = j) {
    for (j = i + 1; j < len && s->entries[j].item == s->entries[i].item;) j++;
    if (j - i > 1 && g->o->duplicates == SR_DUPLICATES_ERROR) return duplicate_error(g, r, s->entries[i].item);
    *duplicates += j - i - 1;
    float value;
    int64_t kept = merge_group(g, s->entries + i, j - i, &value);
    m->indices[*w] = s->entries[i].item;
    if (m->values) m->values[*w] = value;
    if (keys) keys[*w] = s->keys[kept];
    (*w)++;
  }
  return SR_OK;
}

static int strictly_increasing(const int32_t *a, int64_t n) {
  for (int64_t i = 1; i < n; i++)
    if (a[i] <= a[i - 1]) return 0;
  return 1;
}

/* Every row sorted by item with each item once (in place, compacting). */
static int merge_duplicates(merger *g, sr_csr *m, int64_t *keys, sr_import_stats *stats) {
  int64_t w = 0, b = 0;
  int rc = SR_OK;
  for (int64_t r = 0; r < m->n_rows && rc == SR_OK; r++) {
    int64_t e = m->indptr[r + 1];
    if (strictly_increasing(m->indices + b, e - b)) { /* the common case: nothing to do but move */
      memmove(m->indices + w, m->indices + b, (size_t)(e - b) * sizeof *m->indices);
      if (m->values) memmove(m->values + w, m->values + b, (size_t)(e - b) * sizeof *m->values);
      if (keys) memmove(keys + w, keys + b, (size_t)(e - b) * sizeof *keys);
      w += e - b;
    } else {
      rc = merge_row(g, m, keys, r, b, e, &w, &stats->duplicates);
    }
    m->indptr[r + 1] = w;
    b = e;
  }
  m->nnz = w;
  free(g->s.entries);
  free(g->s.values);
  free(g->s.keys);
  return rc;
}

/* keep_user / keep_item after the minimum counts: items first, then users
 * (the paper's order), once or until nothing changes. */
static void apply_min_counts(const sr_csr *m, const sr_import_opts *o, uint8_t *keep_user, uint8_t *keep_item,
                             sr_import_stats *stats) {
  memset(keep_user, 1, (size_t)m->n_rows);
  memset(keep_item, 1, (size_t)m->n_cols);
  int64_t *count = sr_malloc((size_t)(m->n_cols > 0 ? m->n_cols : 1) * sizeof *count); /* users per item */
  int changed = 1;
  while (changed && (o->min_item_users > 0 || o->min_user_items > 0) &&
         (stats->min_count_passes == 0 || o->iterate_min_counts)) {
    changed = 0;
    stats->min_count_passes++;
    if (o->min_item_users > 0) {
      memset(count, 0, (size_t)m->n_cols * sizeof *count);
      for (int64_t r = 0; r < m->n_rows; r++)
        for (int64_t k = m->indptr[r]; keep_user[r] && k < m->indptr[r + 1]; k++) count[m->indices[k]]++;
      for (int64_t j = 0; j < m->n_cols; j++)
        if (keep_item[j] && count[j] < o->min_item_users) keep_item[j] = 0, changed = 1, stats->items_removed++;
    }
    if (o->min_user_items > 0) {
      for (int64_t r = 0; r < m->n_rows; r++) {
        int64_t n = 0;
        for (int64_t k = m->indptr[r]; keep_user[r] && k < m->indptr[r + 1]; k++) n += keep_item[m->indices[k]];
        if (keep_user[r] && n < o->min_user_items) keep_user[r] = 0, changed = 1, stats->users_removed++;
      }
    }
  }
  free(count);
}

/* new_id[old] = number of kept before old, or -1 (increasing, so rows stay sorted). */
static int64_t number_kept(const uint8_t *keep, int64_t n, int32_t *new_id) {
  int32_t next = 0;
  for (int64_t i = 0; i < n; i++) new_id[i] = keep[i] ? next++ : -1;
  return next;
}

/* Drops removed users and items in place; renumbers both densely. */
static void compact(sr_csr *m, int64_t *keys, const uint8_t *keep_user, const int32_t *new_item) {
  int64_t w = 0, b = 0, rows = 0;
  for (int64_t r = 0; r < m->n_rows; r++) {
    int64_t e = m->indptr[r + 1];
    for (int64_t k = b; keep_user[r] && k < e; k++) {
      if (new_item[m->indices[k]] < 0) continue;
      m->indices[w] = new_item[m->indices[k]];
      if (m->values) m->values[w] = m->values[k];
      if (keys) keys[w] = keys[k];
      w++;
    }
    if (keep_user[r]) m->indptr[++rows] = w;
    b = e;
  }
  m->n_rows = rows;
  m->nnz = w;
  m->indptr = sr_realloc(m->indptr, (size_t)(rows + 1) * sizeof *m->indptr);
  m->indices = sr_realloc(m->indices, (size_t)(w > 0 ? w : 1) * sizeof *m->indices);
  if (m->values) m->values = sr_realloc(m->values, (size_t)(w > 0 ? w : 1) * sizeof *m->values);
}

/* The raw ids of the kept ranks, and row_of_id[dict id] = new row or -1. */
static void kept_ids(const id_dict *d, const ranking *r, const int32_t *new_of_rank, sr_raw_ids *ids,
                     int32_t *row_of_id) {
  int32_t *kept = sr_malloc((size_t)(d->n > 0 ? d->n : 1) * sizeof *kept);
  int64_t n = 0;
  for (int64_t i = 0; i < d->n; i++) {
    row_of_id[r->order[i]] = new_of_rank[i];
    if (new_of_rank[i] >= 0) kept[n++] = r->order[i];
  }
  id_dict_export(d, kept, n, ids);
  free(kept);
}

/* ---- loading --------------------------------------------------------------------------------- */

/* Matrix in raw-id order, merged, filtered; ids and row lookups for features. */
static int build_table(const sr_import_opts *o, interaction_log *l, sr_import_table *t, int32_t *user_row,
                       int32_t *item_row) {
  ranking users, items;
  rank_ids(&l->users, &users);
  rank_ids(&l->items, &items);
  build_matrix(l, &users, &items, &t->full, &t->entry_keys);
  merger g = {.o = o, .log = l, .users = &users, .items = &items};
  int rc = merge_duplicates(&g, &t->full, t->entry_keys, &t->stats);
  if (rc == SR_OK) {
    uint8_t *keep_user = sr_malloc((size_t)t->full.n_rows + 1), *keep_item = sr_malloc((size_t)t->full.n_cols + 1);
    apply_min_counts(&t->full, o, keep_user, keep_item, &t->stats);
    int32_t *new_user = sr_malloc(((size_t)t->full.n_rows + 1) * sizeof *new_user);
    int32_t *new_item = sr_malloc(((size_t)t->full.n_cols + 1) * sizeof *new_item);
    int64_t n_users = number_kept(keep_user, t->full.n_rows, new_user);
    int64_t n_items = number_kept(keep_item, t->full.n_cols, new_item);
    compact(&t->full, t->entry_keys, keep_user, new_item);
    t->full.n_cols = n_items;
    SR_ASSERT(t->full.n_rows == n_users);
    kept_ids(&l->users, &users, new_user, &t->users, user_row);
    kept_ids(&l->items, &items, new_item, &t->items, item_row);
    free(keep_user);
    free(keep_item);
    free(new_user);
    free(new_item);
  }
  free_ranking(&users);
  free_ranking(&items);
  return rc;
}

/* RecBole's NAME.item and NAME.user next to the interactions, when there. */
static int load_recbole_features(const sr_import_opts *o, const interaction_log *l, sr_import_table *t,
                                 const int32_t *user_row, const int32_t *item_row) {
  const char *first = o->inputs[0];
  size_t base = strlen(first) - strlen(recbole_presplit(o) ? ".train.inter" : ".inter");
  char path[4096], user_field[64], item_field[64];
  recbole_id_fields(o, user_field, item_field);
  snprintf(path, sizeof path, "%.*s.item", (int)base, first);
  id_lookup items = {&l->items, item_row}, users = {&l->users, user_row};
  if (access(path, F_OK) == 0)
    SR_TRY(recbole_features(path, item_field, "item", &items, t->full.n_cols, o->skip_bad_lines, &t->stats,
                            &t->item_features, &t->item_vocab, &t->n_item_features));
  snprintf(path, sizeof path, "%.*s.user", (int)base, first);
  if (access(path, F_OK) == 0)
    SR_TRY(recbole_features(path, user_field, "user", &users, t->full.n_rows, o->skip_bad_lines, &t->stats,
                            &t->user_features, &t->user_vocab, &t->n_user_features));
  return SR_OK;
}

static int load_features(const sr_import_opts *o, const interaction_log *l, sr_import_table *t,
                         const int32_t *user_row, const int32_t *item_row) {
  if (o->format == SR_IMPORT_RECBOLE) return load_recbole_features(o, l, t, user_row, item_row);
  if (o->movies_path) {
    id_lookup items = {&l->items, item_row};
    SR_TRY(movie_features(o->movies_path, &items, t->full.n_cols, o->skip_bad_lines, &t->stats, &t->item_features,
                          &t->item_vocab, &t->n_item_features));
  }
  if (o->users_path) {
    id_lookup users = {&l->users, user_row};
    SR_TRY(user_features(o->users_path, &users, t->full.n_rows, o->skip_bad_lines, &t->stats, &t->user_features,
                         &t->user_vocab, &t->n_user_features));
  }
  return SR_OK;
}

static int load_all(const sr_import_opts *o, interaction_log *l, sr_import_table *t) {
  double start = sr_now();
  SR_TRY(parse_inputs(o, &l->sink, &t->stats));
  t->stats.parse_seconds = sr_now() - start;
  if (l->n == 0)
    return SR_FAIL(SR_EFORMAT, "no interactions in the input (%lld read, %lld of them below --min-rating)",
                   (long long)t->stats.records, (long long)t->stats.below_min_rating);
  int32_t *user_row = sr_malloc((size_t)l->users.n * sizeof *user_row);
  int32_t *item_row = sr_malloc((size_t)l->items.n * sizeof *item_row);
  int rc = build_table(o, l, t, user_row, item_row);
  if (rc == SR_OK && t->full.nnz == 0)
    rc = SR_FAIL(SR_EINVAL, "the minimum counts (users >= %lld items, items >= %lld users) removed every interaction",
                 (long long)o->min_user_items, (long long)o->min_item_users);
  if (rc == SR_OK) rc = load_features(o, l, t, user_row, item_row);
  free(user_row);
  free(item_row);
  return rc;
}

int sr_import_load(const sr_import_opts *o, sr_import_table *t) {
  memset(t, 0, sizeof *t);
  if (o->format == SR_IMPORT_MULTVAE) {
    SR_TRY(check_multvae_opts(o));
    int rc = multvae_load(o, t);
    if (rc != SR_OK) sr_import_table_free(t);
    return rc;
  }
  int has_rating, has_timestamp;
  SR_TRY(check_option_values(o)); /* before format_columns, which reads a RecBole header */
  SR_TRY(format_columns(o, &has_rating, &has_timestamp));
  SR_TRY(check_opts(o, has_rating, has_timestamp));
  interaction_log l = {.sink = {add_record}, .o = o, .stats = &t->stats, .with_values = o->keep_values};
  int weak = o->protocol == SR_PROTOCOL_WEAK;
  l.keys = weak && o->holdout == SR_HOLDOUT_TEMPORAL ? KEY_TIMESTAMP
           : weak && o->holdout == SR_HOLDOUT_GIVEN  ? KEY_GIVEN_PART
                                                     : KEY_NONE;
  int string_ids = o->string_ids || o->format == SR_IMPORT_MSD;
  id_dict_init(&l.users, string_ids);
  id_dict_init(&l.items, string_ids);
  int rc = load_all(o, &l, t);
  free_log_columns(&l);
  id_dict_free(&l.users);
  id_dict_free(&l.items);
  if (rc != SR_OK) sr_import_table_free(t);
  return rc;
}

/* features may be NULL once they moved into a split dataset; vocab stays. */
static void free_features(sr_feature *features, sr_raw_ids *vocab, int n) {
  for (int i = 0; i < n; i++) {
    if (features) sr_csr_free(&features[i].values);
    sr_raw_ids_free(&vocab[i]);
  }
  free(features);
  free(vocab);
}

void sr_import_table_free(sr_import_table *t) {
  sr_csr_free(&t->full);
  free(t->entry_keys);
  sr_raw_ids_free(&t->users);
  sr_raw_ids_free(&t->items);
  free_features(t->item_features, t->item_vocab, t->n_item_features);
  free_features(t->user_features, t->user_vocab, t->n_user_features);
  memset(t, 0, sizeof *t);
}

/* ---- split ----------------------------------------------------------------------------------- */

/* ids[i] = ids[map[i]] for the n entries of map (map is increasing). */
static void select_ids(sr_raw_ids *ids, const int32_t *map, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    if (ids->numbers) ids->numbers[i] = ids->numbers[map[i]];
    if (ids->strings)
      memmove(ids->strings + (size_t)i * (size_t)ids->width, ids->strings + (size_t)map[i] * (size_t)ids->width,
              (size_t)ids->width);
  }
  ids->n = n;
}

/* Every part the split was asked for holds interactions: an empty one would
 * train on nothing or evaluate nothing, silently. */
static int check_parts(const sr_import_opts *o, const sr_dataset *d) {
  int given = o->protocol == SR_PROTOCOL_WEAK && o->holdout == SR_HOLDOUT_GIVEN;
  if (o->format == SR_IMPORT_MULTVAE && (d->train.nnz == 0 || d->valid.heldout.nnz == 0 || d->test.heldout.nnz == 0))
    return SR_FAIL(SR_EINVAL, "%s: %s gives no interaction", o->inputs[0],
                   d->train.nnz == 0           ? "train.csv"
                   : d->valid.heldout.nnz == 0 ? "validation_te.csv"
                                               : "test_te.csv");
  if (d->train.nnz == 0)
    return SR_FAIL(SR_EINVAL, "the training split is empty: every interaction is held out%s",
                   given ? " (is the training file also given as the test file?)" : "");
  if (d->test.heldout.nnz == 0)
    return SR_FAIL(SR_EINVAL, "the test split has no held-out items%s",
                   given ? ": the test file gives no interaction" : ": no test user has --heldout-min-items items");
  if (recbole_presplit(o) && d->valid.heldout.nnz == 0)
    return SR_FAIL(SR_EINVAL, "the validation split has no held-out items: %s gives no interaction", o->inputs[1]);
  int wants_validation = !given || o->split.validation_fraction > 0.0;
  if (wants_validation && d->valid.heldout.nnz == 0)
    return SR_FAIL(SR_EINVAL,
                   "the validation split has no held-out items: no %s has --heldout-min-items (%lld) items",
                   given ? "user's training row" : "validation user", (long long)o->split.min_items_for_heldout);
  return SR_OK;
}

int sr_import_split(const sr_import_opts *o, sr_import_table *t, sr_dataset *d) {
  sr_split_opts split = o->split;
  /* A given split is a published one: its catalogue is every item of its files. */
  split.keep_all_items |= o->protocol == SR_PROTOCOL_WEAK && o->holdout == SR_HOLDOUT_GIVEN;
  if (o->protocol == SR_PROTOCOL_STRONG && split.n_heldout_users == 0)
    split.n_heldout_users = t->full.n_rows / 10 > 0 ? t->full.n_rows / 10 : 1;
  int32_t *item_map = NULL;
  int rc = o->format == SR_IMPORT_MULTVAE ? multvae_split(t, d) /* users and items as they are */
           : o->protocol == SR_PROTOCOL_STRONG
               ? sr_split_strong(&t->full, t->item_features, t->n_item_features, &split, d, &item_map)
               : sr_split_weak(&t->full, o->holdout, t->entry_keys, t->item_features, t->n_item_features, &split, d,
                               &item_map);
  if (rc == SR_OK) rc = check_parts(o, d);
  if (rc != SR_OK) {
    free(item_map);
    return rc;
  }
  if (item_map) select_ids(&t->items, item_map, d->n_items);
  free(item_map);
  sr_csr_free(&t->full);
  free(t->entry_keys);
  t->entry_keys = NULL;
  for (int i = 0; i < t->n_item_features; i++) sr_csr_free(&t->item_features[i].values); /* d has them remapped */
  d->user_features = t->user_features; /* rows = users, unchanged by either split */
  d->n_user_features = t->n_user_features;
  t->user_features = NULL;
  return SR_OK;
}

/* ---- writing --------------------------------------------------------------------------------- */

static int write_vocab(const sr_h5file *f, const char *kind, const sr_feature *features, const sr_raw_ids *vocab,
                       int n) {
  for (int i = 0; i < n; i++) {
    char obj[SR_NAME_MAX + 64];
    snprintf(obj, sizeof obj, "/features/%s/%s/vocab", kind, features[i].name);
    SR_TRY(sr_raw_ids_write(f, obj, &vocab[i]));
  }
  return SR_OK;
}

static int write_string_list(const sr_h5file *f, const char *name, const char *const *items, int n) {
  size_t len = 1;
  for (int i = 0; i < n; i++) len += strlen(items[i]) + 1;
  char *joined = sr_calloc(len, 1);
  for (int i = 0; i < n; i++) strcat(strcat(joined, i ? "\n" : ""), items[i]);
  int rc = sr_h5_write_attr_string(f, "/import", name, joined);
  free(joined);
  return rc;
}

/* The options and counts that made the file: reproducible from /import alone. */
static int write_record(const sr_h5file *f, const sr_import_opts *o, const sr_import_stats *s) {
  SR_TRY(sr_h5_create_group(f, "/import"));
  SR_TRY(sr_h5_write_attr_string(f, "/import", "format", format_names[o->format]));
  SR_TRY(write_string_list(f, "inputs", o->inputs, o->n_inputs));
  if (o->movies_path) SR_TRY(sr_h5_write_attr_string(f, "/import", "movies", o->movies_path));
  if (o->users_path) SR_TRY(sr_h5_write_attr_string(f, "/import", "users", o->users_path));
  if (o->command) SR_TRY(sr_h5_write_attr_string(f, "/import", "command", o->command));
  if (o->has_min_rating) SR_TRY(sr_h5_write_attr_double(f, "/import", "min_rating", o->min_rating));
  const struct {
    const char *name;
    int64_t value;
  } ints[] = {{"min_user_items", o->min_user_items},
              {"min_item_users", o->min_item_users},
              {"iterate_min_counts", o->iterate_min_counts},
              {"keep_values", o->keep_values},
              {"skip_bad_lines", o->skip_bad_lines},
              {"seed", (int64_t)o->split.seed},
              {"min_items_for_heldout", o->split.min_items_for_heldout},
              {"lines", s->lines},
              {"skipped_lines", s->skipped_lines},
              {"records", s->records},
              {"below_min_rating", s->below_min_rating},
              {"duplicates_merged", s->duplicates},
              {"users_removed", s->users_removed},
              {"items_removed", s->items_removed},
              {"min_count_passes", s->min_count_passes}};
  for (int i = 0; i < COUNT(ints); i++) SR_TRY(sr_h5_write_attr_int64(f, "/import", ints[i].name, ints[i].value));
  SR_TRY(sr_h5_write_attr_string(f, "/import", "duplicates", duplicates_names[o->duplicates]));
  SR_TRY(sr_h5_write_attr_double(f, "/import", "heldout_fraction", o->split.heldout_fraction));
  SR_TRY(sr_h5_write_attr_double(f, "/import", "validation_fraction", o->split.validation_fraction));
  if (o->protocol == SR_PROTOCOL_WEAK)
    return sr_h5_write_attr_string(f, "/import", "holdout", holdout_names[o->holdout]);
  return SR_OK;
}

static int write_extras(const sr_h5file *f, const sr_import_opts *o, const sr_import_table *t, const sr_dataset *d) {
  SR_TRY(sr_raw_ids_write(f, "/ids/users", &t->users));
  SR_TRY(sr_raw_ids_write(f, "/ids/items", &t->items));
  SR_TRY(write_vocab(f, "item", d->item_features, t->item_vocab, t->n_item_features));
  SR_TRY(write_vocab(f, "user", d->user_features, t->user_vocab, t->n_user_features));
  return write_record(f, o, &t->stats);
}

int sr_import_write(const sr_import_opts *o, const sr_import_table *t, const sr_dataset *d, const char *output) {
  sr_h5file f;
  SR_TRY(sr_h5_create(&f, output, o->compression));
  int rc = sr_dataset_write_into(&f, d);
  if (rc == SR_OK) rc = write_extras(&f, o, t, d);
  if (rc == SR_OK) return sr_h5_commit(&f);
  sr_h5_close(&f);
  return rc;
}

int sr_import(const sr_import_opts *o, const char *output, sr_import_stats *stats) {
  sr_import_table t;
  sr_dataset d;
  sr_dataset_init(&d);
  int rc = sr_import_load(o, &t);
  if (rc == SR_OK) rc = sr_import_split(o, &t, &d);
  if (rc == SR_OK) rc = sr_import_write(o, &t, &d, output);
  if (stats) *stats = t.stats;
  sr_import_table_free(&t);
  sr_dataset_free(&d);
  return rc;
}

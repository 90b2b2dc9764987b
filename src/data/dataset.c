/*
 * dataset.c — the shardrec HDF5 dataset format (dataset.h, datasets/README.md):
 * writing, reading with full validation, row-range reads for sharding, and a
 * printed summary.
 *
 * Every CSR is stored as a group holding indptr (int64), indices (int32),
 * optionally values (float32), with attributes n_rows and n_cols.
 */
#include "shardrec/dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/h5io.h"
#include "shardrec/mem.h"
#include "shardrec/shard.h"

#define OBJ_MAX 256

static const char *const protocol_names[] = {"strong", "weak"};
static const char *const feature_kinds[] = {"item", "user"};

/* "<group>/<name>" into buf, for HDF5 object paths (ours are short: names are
 * fixed words and feature names < SR_NAME_MAX). */
static const char *child(char buf[OBJ_MAX], const char *group, const char *name) {
  if (snprintf(buf, OBJ_MAX, "%s/%s", group, name) >= OBJ_MAX) SR_DIE("HDF5 path too long: %s/%s", group, name);
  return buf;
}

void sr_dataset_init(sr_dataset *d) {
  memset(d, 0, sizeof *d);
  d->schema_version = SR_DATASET_SCHEMA_VERSION;
  d->protocol = SR_PROTOCOL_STRONG;
}

void sr_eval_split_free(sr_eval_split *s) {
  free(s->user_ids);
  sr_csr_free(&s->foldin);
  sr_csr_free(&s->heldout);
  memset(s, 0, sizeof *s);
}

static void free_features(sr_feature *features, int n) {
  for (int i = 0; i < n; i++) sr_csr_free(&features[i].values);
  free(features);
}

void sr_dataset_free(sr_dataset *d) {
  sr_csr_free(&d->train);
  free(d->train_user_ids);
  sr_eval_split_free(&d->valid);
  sr_eval_split_free(&d->test);
  free_features(d->item_features, d->n_item_features);
  free_features(d->user_features, d->n_user_features);
  free(d->cold_items);
  sr_dataset_init(d);
}

/* ---- validation -------------------------------------------------------------- */

/* A CSR of the dataset: invariants, and `n_cols` columns. */
static int check_csr(const sr_csr *m, const char *what, const char *obj, int64_t n_cols) {
  if (!m->indptr) return SR_FAIL(SR_EFORMAT, "%s: %s: matrix not set", what, obj);
  char name[OBJ_MAX + 1024];
  snprintf(name, sizeof name, "%s: %s", what, obj);
  SR_TRY(sr_csr_validate(m, name));
  if (m->n_cols != n_cols)
    return SR_FAIL(SR_EFORMAT, "%s: %s: %lld columns, expected %lld", what, obj, (long long)m->n_cols,
                   (long long)n_cols);
  return SR_OK;
}

/* Fold-in and held-out rows are sorted, so one merge pass finds a shared item.
 * Rows are numbered as in the whole split (a shard's start at row_begin). */
static int check_disjoint_rows(const sr_eval_split *s, const char *what, const char *obj) {
  for (int64_t r = 0; r < s->n_users; r++) {
    int64_t a = s->foldin.indptr[r], a_end = s->foldin.indptr[r + 1];
    int64_t b = s->heldout.indptr[r], b_end = s->heldout.indptr[r + 1];
    while (a < a_end && b < b_end) {
      int32_t x = s->foldin.indices[a], y = s->heldout.indices[b];
      if (x == y)
        return SR_FAIL(SR_EFORMAT, "%s: %s: row %lld (user %lld): item %d is both fold-in and held-out", what, obj,
                       (long long)(s->row_begin + r), (long long)s->user_ids[r], x);
      a += x < y;
      b += y < x;
    }
  }
  return SR_OK;
}

static int check_eval_split(const sr_eval_split *s, const char *what, const char *obj, int64_t n_items) {
  char sub[OBJ_MAX];
  if (s->n_users > 0 && !s->user_ids) return SR_FAIL(SR_EFORMAT, "%s: %s/user_ids: not set", what, obj);
  SR_TRY(check_csr(&s->foldin, what, child(sub, obj, "foldin"), n_items));
  SR_TRY(check_csr(&s->heldout, what, child(sub, obj, "heldout"), n_items));
  if (s->foldin.n_rows != s->n_users || s->heldout.n_rows != s->n_users)
    return SR_FAIL(SR_EFORMAT, "%s: %s: %lld users but %lld fold-in rows and %lld held-out rows", what, obj,
                   (long long)s->n_users, (long long)s->foldin.n_rows, (long long)s->heldout.n_rows);
  return check_disjoint_rows(s, what, obj);
}

typedef struct {
  const char *obj;
  const int64_t *ids;
  int64_t n;
  int64_t first_row; /* row of ids[0] in the whole split (a shard's lists start later) */
} user_list;

/* User ids are in range and unique within a split; under the strong protocol a
 * user belongs to at most one split (owner[u] = 1 + index of its split). */
static int check_user_lists(const user_list *lists, int n_lists, int64_t n_users, sr_protocol protocol,
                            const char *what) {
  uint8_t *owner = sr_calloc(n_users > 0 ? (size_t)n_users : 1, 1);
  int rc = SR_OK;
  for (int s = 0; s < n_lists && rc == SR_OK; s++) {
    if (protocol == SR_PROTOCOL_WEAK) memset(owner, 0, n_users > 0 ? (size_t)n_users : 1);
    for (int64_t r = 0; r < lists[s].n && rc == SR_OK; r++) {
      int64_t u = lists[s].ids[r];
      if (u < 0 || u >= n_users)
        rc = SR_FAIL(SR_EFORMAT, "%s: %s/user_ids: row %lld has user %lld outside [0, %lld)", what, lists[s].obj,
                     (long long)(lists[s].first_row + r), (long long)u, (long long)n_users);
      else if (owner[u] == s + 1)
        rc = SR_FAIL(SR_EFORMAT, "%s: %s/user_ids: user %lld appears twice", what, lists[s].obj, (long long)u);
      else if (owner[u])
        rc =
            SR_FAIL(SR_EFORMAT, "%s: %s/user_ids: user %lld is also in %s (the strong protocol needs disjoint users)",
                    what, lists[s].obj, (long long)u, lists[owner[u] - 1].obj);
      else
        owner[u] = (uint8_t)(s + 1);
    }
  }
  free(owner);
  return rc;
}

static int check_features(const sr_feature *features, int n, const char *kind, int64_t n_rows, const char *what) {
  char obj[OBJ_MAX];
  for (int i = 0; i < n; i++) {
    const sr_feature *ft = &features[i];
    if (!memchr(ft->name, '\0', SR_NAME_MAX) || !ft->name[0] || strchr(ft->name, '/'))
      return SR_FAIL(SR_EFORMAT, "%s: %s feature %d: name must be 1 to %d bytes, without '/'", what, kind, i,
                     SR_NAME_MAX - 1);
    snprintf(obj, sizeof obj, "/features/%s/%s", kind, ft->name);
    for (int j = 0; j < i; j++)
      if (strcmp(features[j].name, ft->name) == 0) return SR_FAIL(SR_EFORMAT, "%s: %s: defined twice", what, obj);
    SR_TRY(check_csr(&ft->values, what, obj, ft->vocab_size));
    if (ft->values.n_rows != n_rows)
      return SR_FAIL(SR_EFORMAT, "%s: %s: %lld rows, expected one per %s (%lld)", what, obj,
                     (long long)ft->values.n_rows, kind, (long long)n_rows);
    for (int64_t r = 0; r < n_rows && !ft->multi_valued; r++)
      if (sr_csr_row_len(&ft->values, r) > 1)
        return SR_FAIL(SR_EFORMAT, "%s: %s: single-valued feature has %lld values in row %lld", what, obj,
                       (long long)sr_csr_row_len(&ft->values, r), (long long)r);
  }
  return SR_OK;
}

/* Both feature groups, against the dataset's entity counts. */
static int check_feature_groups(const sr_dataset *d, const char *what) {
  SR_TRY(check_features(d->item_features, d->n_item_features, "item", d->n_items, what));
  return check_features(d->user_features, d->n_user_features, "user", d->n_users, what);
}

/* The header: version, protocol and sizes (ids of users and items index
 * int32 columns and tables, and size per-user arrays). */
static int check_header(const sr_dataset *d, const char *what) {
  if (d->schema_version != SR_DATASET_SCHEMA_VERSION)
    return SR_FAIL(SR_EFORMAT, "%s: schema version %d is not supported (this build reads version %d)", what,
                   d->schema_version, SR_DATASET_SCHEMA_VERSION);
  if (d->protocol != SR_PROTOCOL_STRONG && d->protocol != SR_PROTOCOL_WEAK)
    return SR_FAIL(SR_EFORMAT, "%s: unknown protocol %d", what, (int)d->protocol);
  if (d->n_users < 0 || d->n_users > INT32_MAX || d->n_items < 0 || d->n_items > INT32_MAX)
    return SR_FAIL(SR_EFORMAT, "%s: bad sizes (%lld users, %lld items; each at most %d)", what, (long long)d->n_users,
                   (long long)d->n_items, INT32_MAX);
  return SR_OK;
}

/* The user ids of every split's rows held: in range, unique, and (strong
 * protocol) in one split only. */
static int check_users(const sr_dataset *d, const char *what) {
  const user_list lists[] = {{"/splits/train", d->train_user_ids, d->train.n_rows, d->train_row_begin},
                             {"/splits/valid", d->valid.user_ids, d->valid.n_users, d->valid.row_begin},
                             {"/splits/test", d->test.user_ids, d->test.n_users, d->test.row_begin}};
  return check_user_lists(lists, 3, d->n_users, d->protocol, what);
}

/* Cold-start items: sorted, unique, in range, and in no training row held. */
static int check_cold_items(const sr_dataset *d, const char *what) {
  const char *obj = "/splits/cold_items";
  for (int64_t k = 0; k < d->n_cold_items; k++) {
    if (d->cold_items[k] < 0 || d->cold_items[k] >= d->n_items)
      return SR_FAIL(SR_EFORMAT, "%s: %s: item %d out of range [0, %lld)", what, obj, d->cold_items[k],
                     (long long)d->n_items);
    if (k > 0 && d->cold_items[k] <= d->cold_items[k - 1])
      return SR_FAIL(SR_EFORMAT, "%s: %s: not sorted and unique at entry %lld", what, obj, (long long)k);
  }
  if (d->n_cold_items == 0) return SR_OK;
  uint8_t *cold = sr_calloc((size_t)(d->n_items > 0 ? d->n_items : 1), 1);
  for (int64_t k = 0; k < d->n_cold_items; k++) cold[d->cold_items[k]] = 1;
  int64_t p = 0;
  while (p < d->train.nnz && !cold[d->train.indices[p]]) p++;
  free(cold);
  if (p == d->train.nnz) return SR_OK;
  return SR_FAIL(SR_EFORMAT, "%s: %s: cold-start item %d is in /splits/train (cold items are never trained on)", what,
                 obj, d->train.indices[p]);
}

int sr_dataset_validate(const sr_dataset *d, const char *what) {
  SR_TRY(check_header(d, what));
  SR_TRY(check_csr(&d->train, what, "/splits/train", d->n_items));
  if (d->train.n_rows > 0 && !d->train_user_ids)
    return SR_FAIL(SR_EFORMAT, "%s: /splits/train/user_ids: not set", what);
  SR_TRY(check_eval_split(&d->valid, what, "/splits/valid", d->n_items));
  SR_TRY(check_eval_split(&d->test, what, "/splits/test", d->n_items));
  SR_TRY(check_users(d, what));
  SR_TRY(check_cold_items(d, what));
  return check_feature_groups(d, what);
}

/* ---- writing ----------------------------------------------------------------- */

static int write_csr(const sr_h5file *f, const char *group, const sr_csr *m) {
  char obj[OBJ_MAX];
  SR_TRY(sr_h5_write_array(f, child(obj, group, "indptr"), SR_H5_INT64, m->indptr, m->n_rows + 1));
  SR_TRY(sr_h5_write_array(f, child(obj, group, "indices"), SR_H5_INT32, m->indices, m->nnz));
  if (m->values) SR_TRY(sr_h5_write_array(f, child(obj, group, "values"), SR_H5_FLOAT32, m->values, m->nnz));
  SR_TRY(sr_h5_write_attr_int64(f, group, "n_rows", m->n_rows));
  return sr_h5_write_attr_int64(f, group, "n_cols", m->n_cols);
}

static int write_eval_split(const sr_h5file *f, const char *group, const sr_eval_split *s) {
  char obj[OBJ_MAX];
  SR_TRY(sr_h5_write_array(f, child(obj, group, "user_ids"), SR_H5_INT64, s->user_ids, s->n_users));
  SR_TRY(write_csr(f, child(obj, group, "foldin"), &s->foldin));
  return write_csr(f, child(obj, group, "heldout"), &s->heldout);
}

static int write_features(const sr_h5file *f, const char *kind, const sr_feature *features, int n) {
  char group[OBJ_MAX], obj[OBJ_MAX];
  snprintf(group, sizeof group, "/features/%s", kind);
  SR_TRY(sr_h5_create_group(f, group));
  for (int i = 0; i < n; i++) {
    child(obj, group, features[i].name);
    SR_TRY(write_csr(f, obj, &features[i].values));
    SR_TRY(sr_h5_write_attr_int64(f, obj, "vocab_size", features[i].vocab_size));
    SR_TRY(sr_h5_write_attr_int64(f, obj, "multi_valued", features[i].multi_valued));
  }
  return SR_OK;
}

static int write_all(const sr_h5file *f, const sr_dataset *d) {
  SR_TRY(sr_h5_write_attr_int64(f, "/", "shardrec_schema_version", d->schema_version));
  SR_TRY(sr_h5_write_attr_string(f, "/", "protocol", protocol_names[d->protocol]));
  SR_TRY(sr_h5_write_attr_int64(f, "/", "n_users", d->n_users));
  SR_TRY(sr_h5_write_attr_int64(f, "/", "n_items", d->n_items));
  SR_TRY(sr_h5_write_attr_string(f, "/", "created_by", "shardrec " SHARDREC_VERSION));
  SR_TRY(write_csr(f, "/splits/train", &d->train));
  SR_TRY(sr_h5_write_array(f, "/splits/train/user_ids", SR_H5_INT64, d->train_user_ids, d->train.n_rows));
  SR_TRY(write_eval_split(f, "/splits/valid", &d->valid));
  SR_TRY(write_eval_split(f, "/splits/test", &d->test));
  if (d->n_cold_items > 0)
    SR_TRY(sr_h5_write_array(f, "/splits/cold_items", SR_H5_INT32, d->cold_items, d->n_cold_items));
  SR_TRY(write_features(f, feature_kinds[0], d->item_features, d->n_item_features));
  return write_features(f, feature_kinds[1], d->user_features, d->n_user_features);
}

int sr_dataset_write_into(const sr_h5file *f, const sr_dataset *d) {
  if (sr_dataset_validate(d, f->path) != SR_OK) return sr_error_prefix("refusing to write an invalid dataset");
  return write_all(f, d);
}

int sr_dataset_write(const char *path, const sr_dataset *d, sr_h5_compression compression) {
  sr_h5file f;
  SR_TRY(sr_h5_create(&f, path, compression));
  int rc = sr_dataset_write_into(&f, d);
  if (rc == SR_OK) return sr_h5_commit(&f);
  sr_h5_close(&f);
  return rc;
}

/* ---- reading ----------------------------------------------------------------- */

/* The (n_rows, n_cols) attributes of a CSR group. */
static int read_csr_shape(const sr_h5file *f, const char *group, int64_t *n_rows, int64_t *n_cols) {
  SR_TRY(sr_h5_read_attr_int64(f, group, "n_rows", n_rows));
  SR_TRY(sr_h5_read_attr_int64(f, group, "n_cols", n_cols));
  if (*n_rows < 0 || *n_cols < 0 || *n_cols > INT32_MAX)
    return SR_FAIL(SR_EFORMAT, "%s: %s: bad shape n_rows=%lld n_cols=%lld", f->path, group, (long long)*n_rows,
                   (long long)*n_cols);
  return SR_OK;
}

static int read_csr(const sr_h5file *f, const char *group, sr_csr *m) {
  char obj[OBJ_MAX];
  SR_TRY(read_csr_shape(f, group, &m->n_rows, &m->n_cols));
  SR_TRY(sr_h5_read_array(f, child(obj, group, "indptr"), SR_H5_INT64, m->n_rows + 1, (void **)&m->indptr, NULL));
  SR_TRY(sr_h5_read_array(f, child(obj, group, "indices"), SR_H5_INT32, -1, (void **)&m->indices, &m->nnz));
  if (sr_h5_exists(f, child(obj, group, "values")))
    SR_TRY(sr_h5_read_array(f, obj, SR_H5_FLOAT32, m->nnz, (void **)&m->values, NULL));
  char what[OBJ_MAX + 1024];
  snprintf(what, sizeof what, "%s: %s", f->path, group);
  return sr_csr_validate(m, what);
}

static int read_eval_split(const sr_h5file *f, const char *group, sr_eval_split *s) {
  char obj[OBJ_MAX];
  SR_TRY(sr_h5_read_array(f, child(obj, group, "user_ids"), SR_H5_INT64, -1, (void **)&s->user_ids, &s->n_users));
  SR_TRY(read_csr(f, child(obj, group, "foldin"), &s->foldin));
  return read_csr(f, child(obj, group, "heldout"), &s->heldout);
}

static int read_feature(const sr_h5file *f, const char *group, const char *name, sr_feature *ft) {
  char obj[OBJ_MAX];
  if (strlen(name) >= SR_NAME_MAX) /* before child(): a crafted name may not fit any path buffer */
    return SR_FAIL(SR_EFORMAT, "%s: %s/%.*s...: feature name longer than %d bytes", f->path, group, SR_NAME_MAX, name,
                   SR_NAME_MAX - 1);
  child(obj, group, name);
  snprintf(ft->name, sizeof ft->name, "%s", name);
  int64_t multi;
  SR_TRY(sr_h5_read_attr_int64(f, obj, "vocab_size", &ft->vocab_size));
  SR_TRY(sr_h5_read_attr_int64(f, obj, "multi_valued", &multi));
  ft->multi_valued = multi != 0;
  return read_csr(f, obj, &ft->values);
}

/* Feature groups are optional: a converted public log may have none. */
static int read_features(const sr_h5file *f, const char *kind, sr_feature **features, int *n) {
  char group[OBJ_MAX];
  snprintf(group, sizeof group, "/features/%s", kind);
  if (!sr_h5_exists(f, group)) return SR_OK;
  char **names;
  int n_names;
  SR_TRY(sr_h5_list_group(f, group, &names, &n_names));
  *features = sr_calloc(n_names > 0 ? (size_t)n_names : 1, sizeof **features);
  int rc = SR_OK;
  for (int i = 0; i < n_names && rc == SR_OK; i++) {
    rc = read_feature(f, group, names[i], &(*features)[i]);
    *n = i + 1; /* counted even on failure, so sr_dataset_free releases it */
  }
  sr_h5_free_names(names, n_names);
  return rc;
}

static int read_header(const sr_h5file *f, sr_dataset *d) {
  if (!sr_h5_attr_exists(f, "/", "shardrec_schema_version"))
    return SR_FAIL(SR_EFORMAT, "%s: not a shardrec dataset (no 'shardrec_schema_version' attribute on /)", f->path);
  int64_t version;
  SR_TRY(sr_h5_read_attr_int64(f, "/", "shardrec_schema_version", &version));
  if (version != SR_DATASET_SCHEMA_VERSION)
    return SR_FAIL(SR_EFORMAT, "%s: schema version %lld is not supported (this build reads version %d)", f->path,
                   (long long)version, SR_DATASET_SCHEMA_VERSION);
  d->schema_version = (int)version;
  char protocol[32];
  SR_TRY(sr_h5_read_attr_string(f, "/", "protocol", protocol, sizeof protocol));
  if (strcmp(protocol, protocol_names[SR_PROTOCOL_STRONG]) == 0)
    d->protocol = SR_PROTOCOL_STRONG;
  else if (strcmp(protocol, protocol_names[SR_PROTOCOL_WEAK]) == 0)
    d->protocol = SR_PROTOCOL_WEAK;
  else
    return SR_FAIL(SR_EFORMAT, "%s: /: protocol '%s' is neither 'strong' nor 'weak'", f->path, protocol);
  SR_TRY(sr_h5_read_attr_int64(f, "/", "n_users", &d->n_users));
  SR_TRY(sr_h5_read_attr_int64(f, "/", "n_items", &d->n_items));
  return check_header(d, f->path); /* before any size from the header is used */
}

/* Every reader (whole, shard, features only) takes the whole list; absent: none. */
static int read_cold_items(const sr_h5file *f, sr_dataset *d) {
  if (!sr_h5_exists(f, "/splits/cold_items")) return SR_OK;
  return sr_h5_read_array(f, "/splits/cold_items", SR_H5_INT32, -1, (void **)&d->cold_items, &d->n_cold_items);
}

static int read_feature_groups(const sr_h5file *f, sr_dataset *d) {
  SR_TRY(read_cold_items(f, d));
  SR_TRY(read_features(f, feature_kinds[0], &d->item_features, &d->n_item_features));
  return read_features(f, feature_kinds[1], &d->user_features, &d->n_user_features);
}

static int read_all(const sr_h5file *f, sr_dataset *d) {
  SR_TRY(read_header(f, d));
  SR_TRY(read_csr(f, "/splits/train", &d->train));
  SR_TRY(
      sr_h5_read_array(f, "/splits/train/user_ids", SR_H5_INT64, d->train.n_rows, (void **)&d->train_user_ids, NULL));
  SR_TRY(read_eval_split(f, "/splits/valid", &d->valid));
  SR_TRY(read_eval_split(f, "/splits/test", &d->test));
  return read_feature_groups(f, d);
}

int sr_dataset_read_features(const char *path, sr_dataset *d) {
  sr_dataset_init(d);
  sr_h5file f;
  SR_TRY(sr_h5_open(&f, path));
  int rc = read_header(&f, d);
  if (rc == SR_OK) rc = read_feature_groups(&f, d);
  sr_h5_close(&f);
  if (rc == SR_OK) rc = check_feature_groups(d, path);
  if (rc == SR_OK) rc = check_cold_items(d, path);
  if (rc != SR_OK) sr_dataset_free(d);
  return rc;
}

int sr_dataset_read(const char *path, sr_dataset *d) {
  sr_dataset_init(d);
  sr_h5file f;
  SR_TRY(sr_h5_open(&f, path));
  int rc = read_all(&f, d);
  sr_h5_close(&f);
  if (rc == SR_OK) rc = sr_dataset_validate(d, path);
  if (rc != SR_OK) sr_dataset_free(d);
  sr_dataset_set_whole(d);
  return rc;
}

void sr_dataset_set_whole(sr_dataset *d) {
  d->train_row_begin = 0;
  d->train_rows_total = d->train.n_rows;
  sr_eval_split *splits[2] = {&d->valid, &d->test};
  for (int i = 0; i < 2; i++) {
    splits[i]->row_begin = 0;
    splits[i]->n_users_total = splits[i]->n_users;
  }
}

/* indptr[0] == 0 and indptr[n_rows] == the number of stored indices, as a
 * whole read requires: a rank reading a slice checks both ends (two elements)
 * before allocating anything a crafted indptr (an end of 2^40) would ask for.
 * *n_stored receives the indices' length. */
static int check_indptr_ends(const sr_h5file *f, const char *group, int64_t n_rows, int64_t *n_stored) {
  char obj[OBJ_MAX];
  int64_t first, last;
  SR_TRY(sr_h5_array_length(f, child(obj, group, "indices"), n_stored));
  SR_TRY(sr_h5_read_range(f, child(obj, group, "indptr"), SR_H5_INT64, 0, 1, &first));
  SR_TRY(sr_h5_read_range(f, obj, SR_H5_INT64, n_rows, n_rows + 1, &last));
  if (first != 0)
    return SR_FAIL(SR_EFORMAT, "%s: %s: indptr starts at %lld, expected 0", f->path, group, (long long)first);
  if (last != *n_stored)
    return SR_FAIL(SR_EFORMAT, "%s: %s: indptr ends at %lld but indices has %lld elements", f->path, group,
                   (long long)last, (long long)*n_stored);
  return SR_OK;
}

/* Reads indptr[begin..end] and then only the entries those rows own. */
static int read_rows(const sr_h5file *f, const char *group, int64_t begin, int64_t end, sr_csr *out) {
  char obj[OBJ_MAX];
  int64_t n_rows, n_cols, n_stored;
  SR_TRY(read_csr_shape(f, group, &n_rows, &n_cols));
  if (begin < 0 || begin > end || end > n_rows)
    return SR_FAIL(SR_EINVAL, "%s: %s: rows [%lld, %lld) outside the %lld rows", f->path, group, (long long)begin,
                   (long long)end, (long long)n_rows);
  SR_TRY(check_indptr_ends(f, group, n_rows, &n_stored));
  int64_t n = end - begin;
  int64_t *indptr = sr_malloc((size_t)(n + 1) * sizeof *indptr);
  int rc = sr_h5_read_range(f, child(obj, group, "indptr"), SR_H5_INT64, begin, end + 1, indptr);
  if (rc == SR_OK && (indptr[n] < indptr[0] || indptr[0] < 0 || indptr[n] > n_stored))
    rc = SR_FAIL(SR_EFORMAT, "%s: %s: not monotone between rows %lld and %lld", f->path, obj, (long long)begin,
                 (long long)end);
  if (rc != SR_OK) {
    free(indptr);
    return rc;
  }
  int64_t first = indptr[0];
  sr_csr_alloc(out, n, n_cols, indptr[n] - first, sr_h5_exists(f, child(obj, group, "values")));
  for (int64_t r = 0; r <= n; r++) out->indptr[r] = indptr[r] - first;
  free(indptr);
  SR_TRY(sr_h5_read_range(f, child(obj, group, "indices"), SR_H5_INT32, first, first + out->nnz, out->indices));
  if (out->values)
    SR_TRY(sr_h5_read_range(f, child(obj, group, "values"), SR_H5_FLOAT32, first, first + out->nnz, out->values));
  char what[OBJ_MAX + 1024];
  snprintf(what, sizeof what, "%s: %s rows [%lld, %lld)", f->path, group, (long long)begin, (long long)end);
  return sr_csr_validate(out, what);
}

int sr_dataset_read_csr_rows(const char *path, const char *group, int64_t row_begin, int64_t row_end, sr_csr *out) {
  memset(out, 0, sizeof *out);
  sr_h5file f;
  SR_TRY(sr_h5_open(&f, path));
  int rc = read_rows(&f, group, row_begin, row_end, out);
  sr_h5_close(&f);
  if (rc != SR_OK) sr_csr_free(out);
  return rc;
}

/* ---- sharded reading ------------------------------------------------------------ */

static int read_eval_shard(const sr_h5file *f, const char *group, int part, int parts, sr_eval_split *s) {
  char obj[OBJ_MAX];
  SR_TRY(sr_h5_array_length(f, child(obj, group, "user_ids"), &s->n_users_total));
  int64_t begin, end;
  sr_shard_even_range(s->n_users_total, part, parts, &begin, &end);
  s->row_begin = begin;
  s->n_users = end - begin;
  s->user_ids = sr_malloc((size_t)(s->n_users > 0 ? s->n_users : 1) * sizeof *s->user_ids);
  SR_TRY(sr_h5_read_range(f, obj, SR_H5_INT64, begin, end, s->user_ids));
  SR_TRY(read_rows(f, child(obj, group, "foldin"), begin, end, &s->foldin));
  return read_rows(f, child(obj, group, "heldout"), begin, end, &s->heldout);
}

static int read_train_shard(const sr_h5file *f, int part, int parts, sr_dataset *d) {
  int64_t n_rows, n_cols, *indptr = NULL;
  SR_TRY(read_csr_shape(f, "/splits/train", &n_rows, &n_cols));
  /* The whole indptr (8 bytes per user) decides the interaction-balanced cut. */
  SR_TRY(sr_h5_read_array(f, "/splits/train/indptr", SR_H5_INT64, n_rows + 1, (void **)&indptr, NULL));
  for (int64_t r = 0; r < n_rows; r++)
    if (indptr[r + 1] < indptr[r]) {
      int64_t a = indptr[r], b = indptr[r + 1];
      free(indptr);
      return SR_FAIL(SR_EFORMAT, "%s: /splits/train: indptr not monotone at row %lld (%lld > %lld)", f->path,
                     (long long)r, (long long)a, (long long)b);
    }
  int64_t begin, end;
  sr_shard_nnz_range(indptr, n_rows, part, parts, &begin, &end);
  free(indptr);
  d->train_row_begin = begin;
  d->train_rows_total = n_rows;
  SR_TRY(read_rows(f, "/splits/train", begin, end, &d->train));
  d->train_user_ids = sr_malloc((size_t)(end > begin ? end - begin : 1) * sizeof *d->train_user_ids);
  return sr_h5_read_range(f, "/splits/train/user_ids", SR_H5_INT64, begin, end, d->train_user_ids);
}

/* A shard is checked as a whole read is, as far as its own rows and the
 * shared metadata go: the header, each slice's CSR (read_rows), its user ids
 * and the features (read whole). */
static int read_shard(const sr_h5file *f, int part, int parts, sr_dataset *d) {
  SR_TRY(read_header(f, d));
  SR_TRY(read_train_shard(f, part, parts, d));
  SR_TRY(read_eval_shard(f, "/splits/valid", part, parts, &d->valid));
  SR_TRY(read_eval_shard(f, "/splits/test", part, parts, &d->test));
  SR_TRY(check_eval_split(&d->valid, f->path, "/splits/valid", d->n_items));
  SR_TRY(check_eval_split(&d->test, f->path, "/splits/test", d->n_items));
  SR_TRY(check_users(d, f->path));
  SR_TRY(read_feature_groups(f, d));
  SR_TRY(check_feature_groups(d, f->path)); /* features are read whole: check them as a whole read does */
  SR_TRY(check_cold_items(d, f->path));
  const sr_csr *all[5] = {&d->train, &d->valid.foldin, &d->valid.heldout, &d->test.foldin, &d->test.heldout};
  for (int i = 0; i < 5; i++)
    if (all[i]->n_cols != d->n_items)
      return SR_FAIL(SR_EFORMAT, "%s: a split has %lld columns but the file has %lld items", f->path,
                     (long long)all[i]->n_cols, (long long)d->n_items);
  return SR_OK;
}

int sr_dataset_read_shard(const char *path, int part, int parts, sr_dataset *d) {
  if (parts == 1) return sr_dataset_read(path, d);
  sr_dataset_init(d);
  sr_h5file f;
  SR_TRY(sr_h5_open(&f, path));
  int rc = read_shard(&f, part, parts, d);
  sr_h5_close(&f);
  if (rc != SR_OK) sr_dataset_free(d);
  return rc;
}

/* ---- summary ----------------------------------------------------------------- */

static void print_row_stats(const sr_csr *m) {
  int64_t lo = m->n_rows ? INT64_MAX : 0, hi = 0;
  for (int64_t r = 0; r < m->n_rows; r++) {
    int64_t len = sr_csr_row_len(m, r);
    lo = len < lo ? len : lo;
    hi = len > hi ? len : hi;
  }
  printf("%.2f per row (min %lld, max %lld)", m->n_rows ? (double)m->nnz / (double)m->n_rows : 0.0, (long long)lo,
         (long long)hi);
}

static void print_eval_split(const char *name, const sr_eval_split *s) {
  int64_t evaluated = 0;
  for (int64_t r = 0; r < s->n_users; r++) evaluated += sr_csr_row_len(&s->heldout, r) > 0;
  printf("  %-6s %8lld users: fold-in %lld interactions, held-out %lld; %lld users with held-out items\n", name,
         (long long)s->n_users, (long long)s->foldin.nnz, (long long)s->heldout.nnz, (long long)evaluated);
}

static void print_features(const char *kind, const sr_feature *features, int n) {
  printf("  %s features:%s\n", kind, n ? "" : " none");
  for (int i = 0; i < n; i++) {
    printf("    %-12s %s, vocab %lld, ", features[i].name,
           features[i].multi_valued ? "multi-valued" : "single-valued", (long long)features[i].vocab_size);
    print_row_stats(&features[i].values);
    printf("\n");
  }
}

void sr_dataset_print_info(const sr_dataset *d, const char *path) {
  const sr_csr *t = &d->train;
  double cells = (double)t->n_rows * (double)d->n_items;
  printf("%s: shardrec dataset, schema %d, protocol %s\n", path, d->schema_version, protocol_names[d->protocol]);
  printf("  users  %8lld, items %lld\n", (long long)d->n_users, (long long)d->n_items);
  printf("  train  %8lld users: %lld interactions%s, density %.4f%%, ", (long long)t->n_rows, (long long)t->nnz,
         t->values ? " (with values)" : "", cells > 0 ? 100.0 * (double)t->nnz / cells : 0.0);
  print_row_stats(t);
  printf("\n");
  print_eval_split("valid", &d->valid);
  print_eval_split("test", &d->test);
  if (d->n_cold_items > 0)
    printf("  cold-start items: %lld (in no training row; held-out items of evaluation rows only)\n",
           (long long)d->n_cold_items);
  print_features(feature_kinds[0], d->item_features, d->n_item_features);
  print_features(feature_kinds[1], d->user_features, d->n_user_features);
}

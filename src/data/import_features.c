/*
 * import_features.c — categorical features from the MovieLens side files
 * (import_internal.h): movies.dat / movies.csv give items `genres`
 * (multi-valued), `year_bucket` (the decade of the release year) and
 * `title_tokens` (multi-valued: lower-cased words of the title); ml-1m's
 * users.dat gives users `gender`, `age`, `occupation` and `zip3` (the first
 * three characters of the zip code). RecBole's NAME.item / NAME.user give a
 * feature per token (single-valued) or token_seq (multi-valued) field.
 *
 * Every vocabulary is the set of values seen, sorted bytewise, and its labels
 * are kept so that a feature id can be read back. Entities (movies, users)
 * that the ratings did not keep are ignored; kept ones without a line in the
 * side file have empty rows.
 */
#include <stdlib.h>
#include <string.h>

#include "import_internal.h"
#include "shardrec/error.h"
#include "shardrec/mem.h"

/* ---- building one feature ------------------------------------------------------------------ */

typedef struct {
  const char *name;
  int multi_valued;
  id_dict labels;          /* the vocabulary, in first-seen order until finished */
  int32_t *entity, *label; /* one pair per value given */
  size_t n, entity_cap, label_cap;
} feature_builder;

static void builder_init(feature_builder *b, const char *name, int multi_valued) {
  memset(b, 0, sizeof *b);
  b->name = name;
  b->multi_valued = multi_valued;
  id_dict_init(&b->labels, 1);
}

static void builder_free(feature_builder *b) {
  id_dict_free(&b->labels);
  free(b->entity);
  free(b->label);
}

static int builder_add(feature_builder *b, int32_t entity, const char *value, size_t len) {
  int32_t label = id_dict_add_string(&b->labels, value, len);
  if (label < 0) return SR_FAIL(SR_EINVAL, "feature %s: more than %d distinct values", b->name, ID_DICT_MAX);
  sr_grow(&b->entity, &b->entity_cap, b->n + 1);
  sr_grow(&b->label, &b->label_cap, b->n + 1);
  b->entity[b->n] = entity;
  b->label[b->n++] = label;
  return SR_OK;
}

/* The feature (rows sorted, repeated values once) over the sorted vocabulary. */
static void builder_finish(feature_builder *b, int64_t n_entities, sr_feature *out, sr_raw_ids *vocab) {
  int64_t n_labels = b->labels.n;
  int32_t *order = sr_malloc((size_t)(n_labels > 0 ? n_labels : 1) * sizeof *order);
  int32_t *rank = sr_malloc((size_t)(n_labels > 0 ? n_labels : 1) * sizeof *rank);
  id_dict_sorted(&b->labels, order);
  for (int64_t r = 0; r < n_labels; r++) rank[order[r]] = (int32_t)r;
  id_dict_export(&b->labels, order, n_labels, vocab);

  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%s", b->name);
  out->multi_valued = b->multi_valued;
  out->vocab_size = n_labels;
  sr_csr *m = &out->values;
  sr_csr_alloc(m, n_entities, n_labels, (int64_t)b->n, 0);
  for (size_t k = 0; k < b->n; k++) m->indptr[b->entity[k] + 1]++;
  for (int64_t e = 0; e < n_entities; e++) m->indptr[e + 1] += m->indptr[e];
  int64_t *next = sr_malloc((size_t)(n_entities > 0 ? n_entities : 1) * sizeof *next);
  memcpy(next, m->indptr, (size_t)n_entities * sizeof *next);
  for (size_t k = 0; k < b->n; k++) m->indices[next[b->entity[k]]++] = rank[b->label[k]];
  sr_csr_sort_rows(m);
  int64_t w = 0; /* drop repeated values (a title with a word twice) */
  for (int64_t e = 0; e < n_entities; e++) {
    int64_t begin = m->indptr[e], end = m->indptr[e + 1];
    m->indptr[e] = w;
    for (int64_t k = begin; k < end; k++)
      if (k == begin || m->indices[k] != m->indices[k - 1]) m->indices[w++] = m->indices[k];
  }
  m->indptr[n_entities] = m->nnz = w;
  free(next);
  free(order);
  free(rank);
}

/* ---- side files ------------------------------------------------------------------------------ */

/* Features of one side file (RecBole files may have many fields), and fields. */
#define MAX_FIELDS_SIDE 64
#define MAX_BUILDERS 32

/* What a RecBole field becomes: a single- or multi-valued feature, or nothing (floats). */
typedef enum { FIELD_SKIPPED, FIELD_TOKEN, FIELD_TOKEN_SEQ } field_use;

typedef struct {
  line_handlers h; /* first: the handlers receive &parser->h */
  field_syntax syntax;
  int n_fields;
  int id_column;           /* the field holding the entity's id */
  const char *entity_kind; /* "movie", "user", "item" */
  const id_lookup *ids;
  uint8_t *described; /* [n_entities]: a line was seen */
  feature_builder builders[MAX_BUILDERS];
  int n_builders;
  /* RecBole: the header's fields, what each becomes, its builder, and the names. */
  const char *id_field;
  field_use use[MAX_FIELDS_SIDE];
  int builder_of[MAX_FIELDS_SIDE];
  char names[MAX_BUILDERS][SR_NAME_MAX];
} side_parser;

static int32_t row_of(const id_lookup *ids, field f) {
  int32_t id;
  if (ids->dict->strings) {
    id = id_dict_find_string(ids->dict, f.s, f.len);
  } else {
    int64_t number;
    id = field_to_int64(f, &number) == 0 ? id_dict_find_number(ids->dict, number) : -1;
  }
  return id < 0 ? -1 : ids->row_of_id[id];
}

/* Splits a side-file line; returns the row of its entity (-1: not kept) in *row. */
static int side_fields(side_parser *p, char *line, size_t len, field *f, int32_t *row) {
  int n = split_fields(line, len, &p->syntax, f, p->n_fields);
  if (n != p->n_fields) {
    char buf[16];
    return SR_FAIL(SR_EFORMAT, "expected %d fields separated by %s, got %d", p->n_fields,
                   delimiter_label(p->syntax.delimiter, buf, sizeof buf), n);
  }
  int64_t number;
  field id = f[p->id_column];
  if (!p->ids->dict->strings && field_to_int64(id, &number) != 0)
    return SR_FAIL(SR_EFORMAT, "%s id '%.*s' is not an integer", p->entity_kind, (int)id.len, id.s);
  *row = row_of(p->ids, id);
  if (*row >= 0 && p->described[*row])
    return SR_FAIL(SR_EFORMAT, "%s %.*s is described twice", p->entity_kind, (int)id.len, id.s);
  if (*row >= 0) p->described[*row] = 1;
  return SR_OK;
}

static int is_token_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* Lower-cased words (runs of letters, digits and non-ASCII bytes). */
static int add_tokens(feature_builder *b, int32_t row, const char *s, size_t len) {
  char token[256];
  size_t n = 0;
  for (size_t i = 0; i <= len; i++) {
    unsigned char c = i < len ? (unsigned char)s[i] : ' ';
    if (is_token_char(c) && n < sizeof token) {
      token[n++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      continue;
    }
    if (n > 0) SR_TRY(builder_add(b, row, token, n));
    n = 0;
  }
  return SR_OK;
}

/* A trailing "(1995)" or "(1975-1979)": the year, and the title without it. */
static int split_year(field title, field *name, int64_t *year) {
  *name = title;
  if (title.len < 6 || title.s[title.len - 1] != ')') return 0;
  const char *open = title.s + title.len - 1;
  while (open > title.s && *open != '(') open--;
  field inside = {(char *)open + 1, (size_t)(title.s + title.len - 1 - (open + 1))};
  if (*open != '(' || inside.len < 4 || field_to_int64((field){inside.s, 4}, year) != 0) return 0;
  for (size_t i = 4; i < inside.len; i++)
    if (inside.s[i] != '-' && (inside.s[i] < '0' || inside.s[i] > '9')) return 0;
  name->len = (size_t)(open - title.s);
  return 1;
}

/* "Comedy|Drama"; ml-20m writes "(no genres listed)" for none. */
static int add_genres(feature_builder *b, int32_t row, field genres) {
  static const char none[] = "(no genres listed)";
  if (genres.len == strlen(none) && memcmp(genres.s, none, genres.len) == 0) return SR_OK;
  size_t start = 0;
  for (size_t i = 0; i <= genres.len; i++) {
    if (i < genres.len && genres.s[i] != '|') continue;
    if (i > start) SR_TRY(builder_add(b, row, genres.s + start, i - start));
    start = i + 1;
  }
  return SR_OK;
}

enum { MOVIE_GENRES, MOVIE_YEAR, MOVIE_TOKENS };

/* "ID::Title (Year)::Genre|Genre" (or the same three CSV columns). */
static int movie_line(line_handlers *h, char *line, size_t len) {
  side_parser *p = (side_parser *)h;
  field f[3];
  int32_t row = -1;
  SR_TRY(side_fields(p, line, len, f, &row));
  if (row < 0) return SR_OK;
  SR_TRY(add_genres(&p->builders[MOVIE_GENRES], row, f[2]));
  field name;
  int64_t year;
  if (split_year(f[1], &name, &year)) {
    char decade[32];
    int n = snprintf(decade, sizeof decade, "%llds", (long long)(year / 10 * 10));
    SR_TRY(builder_add(&p->builders[MOVIE_YEAR], row, decade, (size_t)n));
  }
  return add_tokens(&p->builders[MOVIE_TOKENS], row, name.s, name.len);
}

static int movie_first(line_handlers *h, char *line, size_t len, int *consumed) {
  side_parser *p = (side_parser *)h;
  static const char header[] = "movieId,";
  *consumed = len >= strlen(header) && memcmp(line, header, strlen(header)) == 0;
  p->syntax = *consumed ? (field_syntax){",", 1} : (field_syntax){"::", 0};
  return SR_OK;
}

/* "UserID::Gender::Age::Occupation::Zip-code" (ml-1m). */
static int user_line(line_handlers *h, char *line, size_t len) {
  side_parser *p = (side_parser *)h;
  field f[5];
  int32_t row = -1;
  SR_TRY(side_fields(p, line, len, f, &row));
  if (row < 0) return SR_OK;
  for (int i = 0; i < 3; i++) SR_TRY(builder_add(&p->builders[i], row, f[i + 1].s, f[i + 1].len));
  return builder_add(&p->builders[3], row, f[4].s, f[4].len < 3 ? f[4].len : 3);
}

/* "name:type" header fields: the id field, and a feature per token or
 * token_seq field (named as the field). */
static int recbole_side_header(line_handlers *h, char *line, size_t len, int *consumed) {
  side_parser *p = (side_parser *)h;
  field f[MAX_FIELDS_SIDE];
  *consumed = 1;
  int n = split_fields(line, len, &p->syntax, f, MAX_FIELDS_SIDE);
  if (n < 1 || n > MAX_FIELDS_SIDE)
    return SR_FAIL(SR_EFORMAT, "expected 1 to %d header fields, got %d", MAX_FIELDS_SIDE, n);
  p->n_fields = n;
  p->id_column = -1;
  for (int i = 0; i < n; i++) {
    const char *colon = memchr(f[i].s, ':', f[i].len);
    if (!colon) return SR_FAIL(SR_EFORMAT, "header field '%.*s' is not NAME:TYPE", (int)f[i].len, f[i].s);
    size_t name_len = (size_t)(colon - f[i].s), type_len = f[i].len - name_len - 1;
    int seq = type_len == 9 && memcmp(colon + 1, "token_seq", 9) == 0;
    int token = type_len == 5 && memcmp(colon + 1, "token", 5) == 0;
    p->use[i] = seq ? FIELD_TOKEN_SEQ : token ? FIELD_TOKEN : FIELD_SKIPPED;
    if (name_len == strlen(p->id_field) && memcmp(f[i].s, p->id_field, name_len) == 0) {
      p->id_column = i;
      p->use[i] = FIELD_SKIPPED;
    }
    if (p->use[i] == FIELD_SKIPPED) continue;
    if (name_len == 0 || name_len >= SR_NAME_MAX || memchr(f[i].s, '/', name_len))
      return SR_FAIL(SR_EFORMAT, "field '%.*s': a feature name must be 1 to %d bytes, without '/'",
                     (int)(name_len < 80 ? name_len : 80), f[i].s, SR_NAME_MAX - 1);
    if (p->n_builders == MAX_BUILDERS) return SR_FAIL(SR_EFORMAT, "more than %d token fields", MAX_BUILDERS);
    memcpy(p->names[p->n_builders], f[i].s, name_len);
    p->names[p->n_builders][name_len] = '\0';
    p->builder_of[i] = p->n_builders;
    builder_init(&p->builders[p->n_builders], p->names[p->n_builders], seq);
    p->n_builders++;
  }
  if (p->id_column < 0) return SR_FAIL(SR_EFORMAT, "no field named '%s' in the header", p->id_field);
  return SR_OK;
}

/* A token is one value; a token_seq's values are separated by spaces. */
static int recbole_side_line(line_handlers *h, char *line, size_t len) {
  side_parser *p = (side_parser *)h;
  field f[MAX_FIELDS_SIDE];
  int32_t row = -1;
  SR_TRY(side_fields(p, line, len, f, &row));
  for (int i = 0; row >= 0 && i < p->n_fields; i++) {
    feature_builder *b = &p->builders[p->builder_of[i]];
    if (p->use[i] == FIELD_TOKEN && f[i].len > 0) SR_TRY(builder_add(b, row, f[i].s, f[i].len));
    field value;
    for (size_t pos = 0; p->use[i] == FIELD_TOKEN_SEQ;) {
      while (pos < f[i].len && f[i].s[pos] == ' ') pos++;
      if (pos == f[i].len) break;
      value.s = f[i].s + pos;
      while (pos < f[i].len && f[i].s[pos] != ' ') pos++;
      value.len = (size_t)(f[i].s + pos - value.s);
      SR_TRY(builder_add(b, row, value.s, value.len));
    }
  }
  return SR_OK;
}

/* Reads the side file and finishes its features (n_builders of them). */
static int read_side_file(side_parser *p, const char *path, int64_t n_entities, int skip_bad_lines,
                          sr_import_stats *stats, sr_feature **features, sr_raw_ids **vocab, int *n) {
  p->described = sr_calloc((size_t)(n_entities > 0 ? n_entities : 1), 1);
  sr_import_stats side = {0}; /* the counts of the interaction inputs stay theirs; skipped lines add up */
  int rc = read_lines(path, 0, skip_bad_lines, &p->h, &side);
  if (stats->skipped_lines == 0) memcpy(stats->first_skipped, side.first_skipped, sizeof side.first_skipped);
  stats->skipped_lines += side.skipped_lines;
  if (rc == SR_OK) {
    *features = sr_calloc((size_t)p->n_builders, sizeof **features);
    *vocab = sr_calloc((size_t)p->n_builders, sizeof **vocab);
    *n = p->n_builders;
    for (int i = 0; i < p->n_builders; i++)
      builder_finish(&p->builders[i], n_entities, &(*features)[i], &(*vocab)[i]);
  }
  for (int i = 0; i < p->n_builders; i++) builder_free(&p->builders[i]);
  free(p->described);
  return rc;
}

int movie_features(const char *path, const id_lookup *items, int64_t n_items, int skip_bad_lines,
                   sr_import_stats *stats, sr_feature **features, sr_raw_ids **vocab, int *n) {
  side_parser p = {.h = {.first = movie_first, .line = movie_line},
                   .n_fields = 3,
                   .entity_kind = "movie",
                   .ids = items,
                   .n_builders = 3};
  builder_init(&p.builders[MOVIE_GENRES], "genres", 1);
  builder_init(&p.builders[MOVIE_YEAR], "year_bucket", 0);
  builder_init(&p.builders[MOVIE_TOKENS], "title_tokens", 1);
  return read_side_file(&p, path, n_items, skip_bad_lines, stats, features, vocab, n);
}

int recbole_features(const char *path, const char *id_field, const char *entity_kind, const id_lookup *ids,
                     int64_t n_entities, int skip_bad_lines, sr_import_stats *stats, sr_feature **features,
                     sr_raw_ids **vocab, int *n) {
  side_parser p = {.h = {.first = recbole_side_header, .line = recbole_side_line},
                   .syntax = {"\t", 0},
                   .entity_kind = entity_kind,
                   .ids = ids,
                   .id_field = id_field};
  return read_side_file(&p, path, n_entities, skip_bad_lines, stats, features, vocab, n);
}

int user_features(const char *path, const id_lookup *users, int64_t n_users, int skip_bad_lines,
                  sr_import_stats *stats, sr_feature **features, sr_raw_ids **vocab, int *n) {
  side_parser p = {.h = {.line = user_line},
                   .syntax = {"::", 0},
                   .n_fields = 5,
                   .entity_kind = "user",
                   .ids = users,
                   .n_builders = 4};
  static const char *const names[4] = {"gender", "age", "occupation", "zip3"};
  for (int i = 0; i < 4; i++) builder_init(&p.builders[i], names[i], 0);
  return read_side_file(&p, path, n_users, skip_bad_lines, stats, features, vocab, n);
}

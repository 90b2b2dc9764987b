/*
 * config.c — the schema-driven configuration engine (config.h).
 *
 * Everything here works from the key table in config_schema.c. A YAML file is
 * loaded as a libyaml document tree and walked mapping by mapping; every value
 * goes through one typed conversion (convert_value), which also serves
 * `--set key=value` overrides and the schema defaults themselves, so a value is
 * accepted or rejected the same way wherever it comes from. Changes are staged
 * on a copy of the config and committed only when the whole source applied, so
 * a failed load leaves the caller's config untouched.
 */
#include "shardrec/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "config_schema.h"
#include "shardrec/error.h"
#include "shardrec/mem.h"

/* ---- the key tree ------------------------------------------------------------
 * Paths are dotted; a "group" is any proper prefix of a key path that ends at
 * a '.', e.g. "train" or, for deeper keys, "two_tower.item". The root group is
 * the empty prefix; its children are the sections. */

/* 1 if `path` lies under the group `prefix` (its first n chars). */
static int in_group(const char *path, const char *prefix, size_t n) {
  return n == 0 || (strncmp(path, prefix, n) == 0 && path[n] == '.');
}

/* Start of the part of `path` below the group of length n. */
static const char *below_group(const char *path, size_t n) { return n == 0 ? path : path + n + 1; }

/* Length of the first component of a (relative) path. */
static size_t component_len(const char *s) { return strcspn(s, "."); }

static const sr_config_key *find_key(const char *path) {
  for (int i = 0; i < sr_config_schema_count; i++)
    if (strcmp(sr_config_schema[i].path, path) == 0) return &sr_config_schema[i];
  return NULL;
}

static int is_group(const char *path) {
  size_t n = strlen(path);
  for (int i = 0; i < sr_config_schema_count; i++)
    if (in_group(sr_config_schema[i].path, path, n)) return 1;
  return 0;
}

/* Length of the longest group both paths lie under ("train.lr", "train.eps" -> 5). */
static size_t common_group_len(const char *a, const char *b) {
  size_t common = 0;
  for (size_t i = 0; a[i] && a[i] == b[i]; i++)
    if (a[i] == '.') common = i;
  return common;
}

/* "prefix.name", or "name" at the root. An over-long path is cut to
 * SR_CONFIG_PATH_MAX - 1 characters, more than any key has, so it stays unknown. */
static void join_path(char *out, const char *prefix, const char *name) {
  int len = snprintf(out, SR_CONFIG_PATH_MAX, "%s%s%s", prefix, *prefix ? "." : "", name);
  SR_ASSERT(len >= 0);
}

/* Calls visit(name, name_len, ctx) once for each direct child of a group, in
 * schema order (the table keeps a group's keys adjacent). */
static void for_each_child(const char *prefix, void (*visit)(const char *, size_t, void *), void *ctx) {
  size_t n = strlen(prefix);
  const char *prev = NULL;
  size_t prev_len = 0;
  for (int i = 0; i < sr_config_schema_count; i++) {
    if (!in_group(sr_config_schema[i].path, prefix, n)) continue;
    const char *child = below_group(sr_config_schema[i].path, n);
    size_t len = component_len(child);
    if (prev && prev_len == len && strncmp(prev, child, len) == 0) continue;
    visit(child, len, ctx);
    prev = child;
    prev_len = len;
  }
}

/* Programming errors in the table abort here, before any config is used. */
static void check_schema(void) {
  static const size_t value_size[] = {[SR_CFG_INT] = sizeof(int),
                                      [SR_CFG_INT64] = sizeof(int64_t),
                                      [SR_CFG_FLOAT] = sizeof(double),
                                      [SR_CFG_BOOL] = sizeof(int),
                                      [SR_CFG_ENUM] = sizeof(int)};
  for (int i = 0; i < sr_config_schema_count; i++) {
    const sr_config_key *k = &sr_config_schema[i];
    SR_ASSERT(strchr(k->path, '.') && strlen(k->path) + 8 < SR_CONFIG_PATH_MAX);
    SR_ASSERT(k->type == SR_CFG_STRING ? k->elem_size >= 2 : k->elem_size == value_size[k->type]);
    SR_ASSERT(k->type != SR_CFG_ENUM || k->enum_names);
    SR_ASSERT(k->default_yaml && k->doc && !strchr(k->doc, '|'));
    SR_ASSERT(k->size % k->elem_size == 0 && (k->is_list || k->size == k->elem_size));
    SR_ASSERT(!k->is_list || (k->min_count >= 0 && (size_t)k->min_count <= k->size / k->elem_size));
    for (int j = 0; j < i; j++) {
      const char *a = sr_config_schema[j].path;
      if (strcmp(a, k->path) == 0 || in_group(a, k->path, strlen(k->path)) || in_group(k->path, a, strlen(a)))
        SR_DIE("config schema: '%s' and '%s' collide", a, k->path);
      if (common_group_len(a, k->path) > common_group_len(sr_config_schema[i - 1].path, k->path))
        SR_DIE("config schema: '%s' is not next to the other keys of its group", k->path);
    }
  }
}

/* ---- where a value came from, and error messages -------------------------- */

typedef struct {
  /* A file name, to which messages add ":LINE:COL"; or, for a one-value source
   * (an override, a schema default), the whole location, e.g. "--set a.b=c". */
  const char *name;
  int has_marks;
  yaml_document_t *doc;
} config_source;

/* Fails with SR_ECONFIG: "FILE:LINE:COL: <message>" (1-based), or "--set a=b: <message>". */
__attribute__((format(printf, 3, 4))) static int config_fail(const config_source *src, yaml_mark_t mark,
                                                             const char *fmt, ...) {
  char what[SR_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (src->has_marks) return SR_FAIL(SR_ECONFIG, "%s:%zu:%zu: %s", src->name, mark.line + 1, mark.column + 1, what);
  return SR_FAIL(SR_ECONFIG, "%s: %s", src->name, what);
}

static yaml_mark_t node_mark(const yaml_node_t *node) {
  yaml_mark_t none = {0, 0, 0};
  return node ? node->start_mark : none;
}

static const char *scalar_text(const yaml_node_t *node) { return (const char *)node->data.scalar.value; }

/* YAML's null: `~`, `null` or nothing at all, unquoted. A missing node (an
 * override with an empty value) is null too. */
static int is_null(const yaml_node_t *node) {
  if (!node) return 1;
  if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
  const char *s = scalar_text(node);
  return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* What the user wrote, for "got ..." (long scalars are shortened). */
static void describe_found(const yaml_node_t *node, char *buf, size_t n) {
  if (is_null(node))
    snprintf(buf, n, "null");
  else if (node->type == YAML_SEQUENCE_NODE)
    snprintf(buf, n, "a list");
  else if (node->type == YAML_MAPPING_NODE)
    snprintf(buf, n, "a mapping");
  else if (node->data.scalar.length > 60)
    snprintf(buf, n, "'%.57s...'", scalar_text(node));
  else
    snprintf(buf, n, "'%s'", scalar_text(node));
}

/* ---- describing types and ranges (messages and docs) ------------------------ */

static const struct {
  const char *name, *article, *plural;
} type_info[] = {
    [SR_CFG_STRING] = {"string", "a string", "strings"},
    [SR_CFG_INT] = {"int", "an integer", "integers"},
    [SR_CFG_INT64] = {"int64", "an integer", "integers"},
    [SR_CFG_FLOAT] = {"float", "a number", "numbers"},
    [SR_CFG_BOOL] = {"bool", "a boolean (true/false, yes/no, on/off)", "booleans"},
    [SR_CFG_ENUM] = {"enum", "one of", "names"},
};

static void append(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t n, const char *fmt, ...) {
  size_t used = strlen(buf);
  if (used + 1 >= n) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + used, n - used, fmt, ap);
  va_end(ap);
}

static void append_enum_names(const sr_config_key *key, char *buf, size_t n) {
  for (int i = 0; key->enum_names[i]; i++) append(buf, n, "%s%s", i ? ", " : "", key->enum_names[i]);
}

/* "an integer", "one of adam, adamw", or for a whole list "a list of integers". */
static void describe_expected(const sr_config_key *key, int whole_list, char *buf, size_t n) {
  buf[0] = '\0';
  if (whole_list && key->is_list) {
    append(buf, n, "a list of %s", type_info[key->type].plural);
    if (key->type == SR_CFG_ENUM) append(buf, n, " (");
  } else {
    append(buf, n, "%s", type_info[key->type].article);
    if (key->type == SR_CFG_ENUM) append(buf, n, " ");
  }
  if (key->type == SR_CFG_ENUM) append_enum_names(key, buf, n);
  if (whole_list && key->is_list && key->type == SR_CFG_ENUM) append(buf, n, ")");
}

/* ">= 0", "> 0", "in [0, 1)"; "" when the value is unrestricted. */
static void describe_range(const sr_config_key *key, char *buf, size_t n) {
  const sr_config_bound *lo = &key->lo, *hi = &key->hi;
  buf[0] = '\0';
  if (lo->kind && hi->kind)
    snprintf(buf, n, "in %c%g, %g%c", lo->kind == SR_BOUND_INCLUSIVE ? '[' : '(', lo->value, hi->value,
             hi->kind == SR_BOUND_INCLUSIVE ? ']' : ')');
  else if (lo->kind)
    snprintf(buf, n, "%s %g", lo->kind == SR_BOUND_INCLUSIVE ? ">=" : ">", lo->value);
  else if (hi->kind)
    snprintf(buf, n, "%s %g", hi->kind == SR_BOUND_INCLUSIVE ? "<=" : "<", hi->value);
}

static int within_bound(const sr_config_bound *b, double v, int is_lower) {
  if (b->kind == SR_BOUND_NONE) return 1;
  if (b->kind == SR_BOUND_INCLUSIVE) return is_lower ? v >= b->value : v <= b->value;
  return is_lower ? v > b->value : v < b->value;
}

/* ---- typed conversion of one scalar ------------------------------------------ */

/* Decimal integer: optional sign, digits only. */
static int is_integer_text(const char *s) {
  if (*s == '+' || *s == '-') s++;
  size_t digits = strspn(s, "0123456789");
  return digits > 0 && s[digits] == '\0';
}

/* YAML 1.2 decimal float (or integer): [-+]? (digits [. digits*] | . digits) ([eE] [-+]? digits)?
 * Hex, .inf and .nan are not accepted: no key has a use for them. */
static int is_number_text(const char *s) {
  static const char digits[] = "0123456789";
  if (*s == '+' || *s == '-') s++;
  size_t whole = strspn(s, digits);
  s += whole;
  size_t frac = 0;
  if (*s == '.') {
    frac = strspn(++s, digits);
    s += frac;
  }
  if (whole + frac == 0) return 0;
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '+' || *s == '-') s++;
    size_t exp = strspn(s, digits);
    if (exp == 0) return 0;
    s += exp;
  }
  return *s == '\0';
}

static int parse_bool_text(const char *s, int *out) {
  static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
  for (int i = 0; i < 3; i++) {
    if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
      *out = strcasecmp(s, yes[i]) == 0;
      return 1;
    }
  }
  return 0;
}

static int type_error(const config_source *src, const sr_config_key *key, const char *label, const yaml_node_t *node,
                      int whole_list) {
  char expected[512], found[128];
  describe_expected(key, whole_list, expected, sizeof expected);
  describe_found(node, found, sizeof found);
  return config_fail(src, node_mark(node), "%s: expected %s, got %s", label, expected, found);
}

static int check_range(const config_source *src, const sr_config_key *key, const char *label, const yaml_node_t *node,
                       double v) {
  if (within_bound(&key->lo, v, 1) && within_bound(&key->hi, v, 0)) return SR_OK;
  char range[128];
  describe_range(key, range, sizeof range);
  return config_fail(src, node_mark(node), "%s: must be %s, got %s", label, range, scalar_text(node));
}

static int convert_integer(const config_source *src, const sr_config_key *key, const char *label,
                           const yaml_node_t *node, void *dst) {
  const char *text = scalar_text(node);
  if (!is_integer_text(text)) return type_error(src, key, label, node, 0);
  errno = 0;
  long long v = strtoll(text, NULL, 10);
  int is_int32 = key->type == SR_CFG_INT;
  if (errno == ERANGE || (is_int32 && (v < INT_MIN || v > INT_MAX)))
    return config_fail(src, node_mark(node), "%s: %s does not fit a %d-bit integer", label, text, is_int32 ? 32 : 64);
  SR_TRY(check_range(src, key, label, node, (double)v));
  if (is_int32)
    *(int *)dst = (int)v;
  else
    *(int64_t *)dst = (int64_t)v;
  return SR_OK;
}

static int convert_float(const config_source *src, const sr_config_key *key, const char *label,
                         const yaml_node_t *node, double *dst) {
  const char *text = scalar_text(node);
  if (!is_number_text(text)) return type_error(src, key, label, node, 0);
  errno = 0;
  double v = strtod(text, NULL);
  if (errno == ERANGE && (v > 1.0 || v < -1.0)) /* overflow; underflow to ~0 is harmless */
    return config_fail(src, node_mark(node), "%s: %s does not fit a double", label, text);
  SR_TRY(check_range(src, key, label, node, v));
  *dst = v;
  return SR_OK;
}

static int convert_enum(const config_source *src, const sr_config_key *key, const char *label,
                        const yaml_node_t *node, int *dst) {
  for (int i = 0; key->enum_names[i]; i++) {
    if (strcasecmp(scalar_text(node), key->enum_names[i]) == 0) {
      *dst = i;
      return SR_OK;
    }
  }
  return type_error(src, key, label, node, 0);
}

/* Strings are stored zero-padded, so equal configs are equal byte for byte. */
static int convert_string(const config_source *src, const sr_config_key *key, const char *label,
                          const yaml_node_t *node, char *dst) {
  size_t len = node->data.scalar.length;
  if (strlen(scalar_text(node)) != len)
    return config_fail(src, node_mark(node), "%s: strings cannot contain NUL characters", label);
  if (len >= key->elem_size)
    return config_fail(src, node_mark(node), "%s: longer than %zu characters (%zu given)", label, key->elem_size - 1,
                       len);
  memset(dst, 0, key->elem_size);
  memcpy(dst, scalar_text(node), len);
  return SR_OK;
}

/* Converts one scalar node into the value at dst; `label` names it in messages
 * ("train.lr", "model.hidden[2]"). Numbers, booleans and enum names are taken
 * from the scalar's text whether it was quoted or not. */
static int convert_scalar(const config_source *src, const sr_config_key *key, const char *label,
                          const yaml_node_t *node, void *dst) {
  if (is_null(node) || node->type != YAML_SCALAR_NODE) return type_error(src, key, label, node, 0);
  switch (key->type) {
    case SR_CFG_STRING:
      return convert_string(src, key, label, node, dst);
    case SR_CFG_INT:
    case SR_CFG_INT64:
      return convert_integer(src, key, label, node, dst);
    case SR_CFG_FLOAT:
      return convert_float(src, key, label, node, dst);
    case SR_CFG_BOOL:
      return parse_bool_text(scalar_text(node), dst) ? SR_OK : type_error(src, key, label, node, 0);
    case SR_CFG_ENUM:
      return convert_enum(src, key, label, node, dst);
  }
  SR_DIE("config key '%s' has unknown type %d", key->path, (int)key->type);
}

static int convert_list(const config_source *src, const sr_config_key *key, const yaml_node_t *node, sr_config *c) {
  if (is_null(node) || node->type != YAML_SEQUENCE_NODE) return type_error(src, key, key->path, node, 1);
  int n = (int)(node->data.sequence.items.top - node->data.sequence.items.start);
  int capacity = (int)(key->size / key->elem_size);
  if (n < key->min_count)
    return config_fail(src, node_mark(node), "%s: needs at least %d entr%s, got %d", key->path, key->min_count,
                       key->min_count == 1 ? "y" : "ies", n);
  if (n > capacity)
    return config_fail(src, node_mark(node), "%s: at most %d entries allowed, got %d", key->path, capacity, n);
  char *base = (char *)c + key->offset;
  memset(base, 0, key->size);
  for (int i = 0; i < n; i++) {
    char label[SR_CONFIG_PATH_MAX];
    snprintf(label, sizeof label, "%s[%d]", key->path, i);
    yaml_node_t *item = yaml_document_get_node(src->doc, node->data.sequence.items.start[i]);
    SR_TRY(convert_scalar(src, key, label, item, base + (size_t)i * key->elem_size));
  }
  *(int *)((char *)c + key->count_offset) = n;
  return SR_OK;
}

/* Applies one YAML value to the key's member of c. */
static int convert_value(const config_source *src, const sr_config_key *key, const yaml_node_t *node, sr_config *c) {
  if (key->is_list) return convert_list(src, key, node, c);
  return convert_scalar(src, key, key->path, node, (char *)c + key->offset);
}

/* ---- unknown names and suggestions ------------------------------------------- */

/* Optimal-string-alignment distance (Levenshtein plus adjacent transpositions,
 * the commonest typo: "trian"). Names over 63 characters get no suggestion. */
int sr_edit_distance(const char *a, size_t n, const char *b, size_t m) {
  enum { MAXLEN = 64 };
  if (n >= MAXLEN || m >= MAXLEN) return INT_MAX;
  int d[MAXLEN][MAXLEN];
  for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
  for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
  for (size_t i = 1; i <= n; i++)
    for (size_t j = 1; j <= m; j++) {
      int cost = a[i - 1] != b[j - 1];
      int best = d[i - 1][j - 1] + cost;
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  return d[n][m];
}

/* About one typo per three characters, and at least one. */
static int close_enough(const char *name, int distance) { return distance <= 1 + (int)strlen(name) / 3; }

const char *sr_nearest_name(const char *name, const char *const *candidates, int n) {
  const char *best = NULL;
  int best_distance = INT_MAX;
  for (int i = 0; i < n; i++) {
    int d = sr_edit_distance(name, strlen(name), candidates[i], strlen(candidates[i]));
    if (d < best_distance) {
      best = candidates[i];
      best_distance = d;
    }
  }
  return best && close_enough(name, best_distance) ? best : NULL;
}

typedef struct {
  const char *name; /* the unknown name */
  const char *best;
  size_t best_len;
  int best_distance;
} nearest_child;

static void consider_child(const char *child, size_t len, void *ctx) {
  nearest_child *near = ctx;
  int d = sr_edit_distance(near->name, strlen(near->name), child, len);
  if (d < near->best_distance) *near = (nearest_child){near->name, child, len, d};
}

typedef struct {
  char *buf;
  size_t size;
} child_list;

static void list_child(const char *child, size_t len, void *ctx) {
  child_list *list = ctx;
  append(list->buf, list->size, "%s%.*s", list->buf[0] ? ", " : "", (int)len, child);
}

/* A key anywhere whose last component is `name` ("model.lr" -> "train.lr"). */
static const sr_config_key *find_by_last_component(const char *name) {
  for (int i = 0; i < sr_config_schema_count; i++) {
    const char *last = strrchr(sr_config_schema[i].path, '.');
    if (strcmp(last + 1, name) == 0) return &sr_config_schema[i];
  }
  return NULL;
}

/* " (did you mean 'train.lr'?)" for the nearest sibling of `name` under
 * `prefix`, else for a same-named key elsewhere, else the valid names. */
static void suggest(const char *prefix, const char *name, char *buf, size_t n) {
  nearest_child near = {name, NULL, 0, INT_MAX};
  for_each_child(prefix, consider_child, &near);
  if (near.best && close_enough(name, near.best_distance)) {
    snprintf(buf, n, " (did you mean '%s%s%.*s'?)", prefix, *prefix ? "." : "", (int)near.best_len, near.best);
    return;
  }
  const sr_config_key *elsewhere = find_by_last_component(name);
  if (elsewhere) {
    snprintf(buf, n, " (did you mean '%s'?)", elsewhere->path);
    return;
  }
  char names[512] = "";
  child_list list = {names, sizeof names};
  for_each_child(prefix, list_child, &list);
  if (*prefix)
    snprintf(buf, n, " (valid keys in '%s': %s)", prefix, names);
  else
    snprintf(buf, n, " (valid sections: %s)", names);
}

static int unknown_name(const config_source *src, yaml_mark_t mark, const char *prefix, const char *name) {
  char path[SR_CONFIG_PATH_MAX], hint[1024];
  join_path(path, prefix, name);
  suggest(prefix, name, hint, sizeof hint);
  return config_fail(src, mark, "unknown %s '%s'%s", *prefix ? "key" : "section", path, hint);
}

/* ---- walking a YAML document -------------------------------------------------- */

static int apply_group(const config_source *src, const yaml_node_t *node, const char *path, sr_config *c);

/* A mapping key must be a plain name, not repeated within its mapping. */
static int check_key_node(const config_source *src, const yaml_node_t *map, const yaml_node_pair_t *pair,
                          const char *prefix) {
  yaml_node_t *k = yaml_document_get_node(src->doc, pair->key);
  if (is_null(k) || k->type != YAML_SCALAR_NODE) {
    char found[128];
    describe_found(k, found, sizeof found);
    return config_fail(src, k->start_mark, "%s: expected a key name, got %s", *prefix ? prefix : "top level", found);
  }
  char path[SR_CONFIG_PATH_MAX];
  join_path(path, prefix, scalar_text(k));
  if (strchr(scalar_text(k), '.'))
    return config_fail(src, k->start_mark, "'%s': dotted names are not keys here; nest them one level per '.'", path);
  for (const yaml_node_pair_t *earlier = map->data.mapping.pairs.start; earlier < pair; earlier++) {
    yaml_node_t *e = yaml_document_get_node(src->doc, earlier->key);
    if (strcmp(scalar_text(e), scalar_text(k)) == 0)
      return config_fail(src, k->start_mark, "duplicate %s '%s' (first given at line %zu)",
                         *prefix ? "key" : "section", path, e->start_mark.line + 1);
  }
  return SR_OK;
}

static int apply_mapping(const config_source *src, const yaml_node_t *map, const char *prefix, sr_config *c) {
  for (yaml_node_pair_t *pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
    SR_TRY(check_key_node(src, map, pair, prefix));
    yaml_node_t *k = yaml_document_get_node(src->doc, pair->key);
    yaml_node_t *v = yaml_document_get_node(src->doc, pair->value);
    char path[SR_CONFIG_PATH_MAX];
    join_path(path, prefix, scalar_text(k));
    const sr_config_key *key = find_key(path);
    if (key)
      SR_TRY(convert_value(src, key, v, c));
    else if (is_group(path))
      SR_TRY(apply_group(src, v, path, c));
    else
      return unknown_name(src, k->start_mark, prefix, scalar_text(k));
  }
  return SR_OK;
}

/* A group's value is a mapping of its children; null (every key commented out) sets nothing. */
static int apply_group(const config_source *src, const yaml_node_t *node, const char *path, sr_config *c) {
  if (is_null(node)) return SR_OK;
  if (node->type != YAML_MAPPING_NODE) {
    char found[128];
    describe_found(node, found, sizeof found);
    return config_fail(src, node->start_mark, "%s: expected a mapping of %s, got %s", *path ? path : "top level",
                       *path ? "keys" : "sections", found);
  }
  return apply_mapping(src, node, path, c);
}

/* libyaml's reader (encoding) errors carry a byte offset instead of a mark. */
static yaml_mark_t mark_at_offset(const char *text, size_t offset) {
  yaml_mark_t mark = {offset, 0, 0};
  for (size_t i = 0; i < offset; i++) {
    mark.column = text[i] == '\n' ? 0 : mark.column + 1;
    mark.line += text[i] == '\n';
  }
  return mark;
}

static int syntax_error(const config_source *src, const yaml_parser_t *parser, const char *text) {
  if (parser->error == YAML_MEMORY_ERROR) SR_DIE("out of memory parsing YAML from %s", src->name);
  if (parser->error == YAML_READER_ERROR)
    return config_fail(src, mark_at_offset(text, parser->problem_offset), "YAML syntax error: %s", parser->problem);
  if (parser->context)
    return config_fail(src, parser->problem_mark, "YAML syntax error: %s (%s at line %zu)", parser->problem,
                       parser->context, parser->context_mark.line + 1);
  return config_fail(src, parser->problem_mark, "YAML syntax error: %s", parser->problem);
}

/* Parses text into *doc (owned by the caller on SR_OK). One document only:
 * a second one would be silently ignored otherwise. */
static int load_document(const config_source *src, const char *text, size_t len, yaml_document_t *doc) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) SR_DIE("out of memory creating a YAML parser");
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  int rc = SR_OK;
  if (!yaml_parser_load(&parser, doc)) {
    rc = syntax_error(src, &parser, text);
  } else {
    yaml_document_t extra;
    if (!yaml_parser_load(&parser, &extra)) {
      rc = syntax_error(src, &parser, text);
    } else {
      yaml_node_t *root = yaml_document_get_root_node(&extra);
      if (root) rc = config_fail(src, root->start_mark, "expected a single YAML document, found another");
      yaml_document_delete(&extra);
    }
    if (rc != SR_OK) yaml_document_delete(doc);
  }
  yaml_parser_delete(&parser);
  return rc;
}

/* Bounds checked before libyaml sees a text: its scanner takes time
 * quadratic in the nesting depth (160 KB of nested brackets took ~50 s), and
 * a config, or the one a checkpoint stores, nests a few levels in a few KB.
 * Flow nesting is bounded by the number of '[' and '{' (counted everywhere,
 * quoted or not: an over-count at worst, which no scanner trick can hide),
 * block nesting by the column of each line's content after its indentation
 * and "- " / "? " indicators (every block level adds at least one column). */
enum { MAX_YAML_BYTES = 1 << 20, MAX_YAML_OPENERS = 1024, MAX_YAML_COLUMN = 256 };

static int check_yaml_bounds(const config_source *src, const char *text, size_t len) {
  yaml_mark_t mark = {0, 0, 0};
  if (len > MAX_YAML_BYTES)
    return config_fail(src, mark, "%zu bytes of YAML, more than the %d a config may have", len, MAX_YAML_BYTES);
  int openers = 0;
  for (size_t i = 0, line_start = 0; i < len; i++) {
    if (i == 0 || text[i - 1] == '\n') {
      line_start = i;
      size_t col = 0;
      while (i + col < len && (text[i + col] == ' ' || ((text[i + col] == '-' || text[i + col] == '?') &&
                                                        i + col + 1 < len && text[i + col + 1] == ' ')))
        col++;
      if (col > MAX_YAML_COLUMN) {
        mark.column = col;
        return config_fail(src, mark, "YAML nested deeper than column %d (indentation and '- ' indicators)",
                           MAX_YAML_COLUMN);
      }
    }
    if (text[i] == '\n') mark.line++;
    if ((text[i] == '[' || text[i] == '{') && ++openers > MAX_YAML_OPENERS) {
      mark.column = i - line_start;
      return config_fail(src, mark, "more than %d '[' or '{': YAML nested too deep for a config", MAX_YAML_OPENERS);
    }
  }
  return SR_OK;
}

/* Parses `text` and applies it to c: the whole document as a config tree, or,
 * given a key, as that key's value. All or nothing: c changes only on SR_OK. */
static int apply_text(sr_config *c, config_source src, const char *text, size_t len, const sr_config_key *key) {
  yaml_document_t doc;
  SR_TRY(check_yaml_bounds(&src, text, len));
  SR_TRY(load_document(&src, text, len, &doc));
  src.doc = &doc;
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  sr_config staged = *c;
  int rc = key ? convert_value(&src, key, root, &staged) : apply_group(&src, root, "", &staged);
  yaml_document_delete(&doc);
  if (rc == SR_OK) *c = staged;
  return rc;
}

/* Resolves a dotted override path, failing like the YAML walk does on unknown names. */
static int resolve_path(const config_source *src, const char *path, const sr_config_key **out) {
  yaml_mark_t none = {0, 0, 0};
  char prefix[SR_CONFIG_PATH_MAX] = "", name[SR_CONFIG_PATH_MAX], child[SR_CONFIG_PATH_MAX];
  for (const char *rest = path;;) {
    size_t len = component_len(rest);
    if (len == 0 || len >= sizeof name) return config_fail(src, none, "'%s' is not a section.key path", path);
    memcpy(name, rest, len);
    name[len] = '\0';
    join_path(child, prefix, name);
    if (rest[len] == '.' && is_group(child)) {
      memcpy(prefix, child, sizeof prefix);
      rest += len + 1;
      continue;
    }
    if (rest[len] == '.' && find_key(child)) return config_fail(src, none, "'%s' is a key, not a section", child);
    if (rest[len] == '\0' && (*out = find_key(child)) != NULL) return SR_OK;
    if (rest[len] == '\0' && is_group(child)) {
      char keys[512] = "";
      child_list list = {keys, sizeof keys};
      for_each_child(child, list_child, &list);
      return config_fail(src, none, "'%s' is a section, not a key (its keys: %s)", child, keys);
    }
    return unknown_name(src, none, prefix, name);
  }
}

/* ---- public API ------------------------------------------------------------------ */

void sr_config_defaults(sr_config *c) {
  check_schema();
  memset(c, 0, sizeof *c);
  for (int i = 0; i < sr_config_schema_count; i++) {
    const sr_config_key *key = &sr_config_schema[i];
    char where[SR_CONFIG_PATH_MAX + 32];
    snprintf(where, sizeof where, "schema default of %s", key->path);
    config_source src = {where, 0, NULL};
    if (apply_text(c, src, key->default_yaml, strlen(key->default_yaml), key) != SR_OK)
      SR_DIE("%s", sr_error_message());
  }
}

int sr_config_load_string(sr_config *c, const char *yaml, const char *name) {
  config_source src = {name, 1, NULL};
  return apply_text(c, src, yaml, strlen(yaml), NULL);
}

int sr_config_load_file(sr_config *c, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return SR_FAIL(SR_EIO, "cannot open config '%s': %s", path, strerror(errno));
  char *text = NULL;
  size_t cap = 0, len = 0, got;
  do {
    sr_grow(&text, &cap, len + 65536);
    got = fread(text + len, 1, cap - len, f);
    len += got;
  } while (got > 0);
  int read_failed = ferror(f), saved_errno = errno;
  fclose(f);
  int rc = read_failed ? SR_FAIL(SR_EIO, "cannot read config '%s': %s", path, strerror(saved_errno))
                       : apply_text(c, (config_source){path, 1, NULL}, text, len, NULL);
  free(text);
  return rc;
}

int sr_config_set(sr_config *c, const char *assignment) {
  char where[SR_ERROR_MAX / 2], path[SR_CONFIG_PATH_MAX];
  snprintf(where, sizeof where, "--set %s", assignment);
  config_source src = {where, 0, NULL};
  yaml_mark_t none = {0, 0, 0};
  const char *eq = strchr(assignment, '=');
  if (!eq) return config_fail(&src, none, "expected section.key=value");
  if ((size_t)(eq - assignment) >= sizeof path) return config_fail(&src, none, "key path too long");
  memcpy(path, assignment, (size_t)(eq - assignment));
  path[eq - assignment] = '\0';
  const sr_config_key *key;
  SR_TRY(resolve_path(&src, path, &key));
  return apply_text(c, src, eq + 1, strlen(eq + 1), key);
}

int sr_config_check_required(const sr_config *c) {
  for (int i = 0; i < sr_config_schema_count; i++) {
    const sr_config_key *key = &sr_config_schema[i];
    if (!key->required) continue;
    const char *member = (const char *)c + key->offset;
    int empty = key->is_list ? *(const int *)((const char *)c + key->count_offset) == 0 : member[0] == '\0';
    if (empty)
      return SR_FAIL(SR_ECONFIG, "%s: required, but not set (set it in the config file or with --set %s=...)",
                     key->path, key->path);
  }
  return SR_OK;
}

/* ---- printing ----------------------------------------------------------------- */

typedef struct {
  char *text;
  size_t len, cap;
} text_buffer;

static void emit(text_buffer *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(text_buffer *out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  sr_grow(&out->text, &out->cap, out->len + (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(out->text + out->len, out->cap - out->len, fmt, ap);
  va_end(ap);
  out->len += (size_t)n;
}

/* A string YAML reads back as the same string when written unquoted: starts
 * with a letter or '/', uses no indicator characters, and is not a word YAML
 * 1.1 readers turn into a boolean or null. */
static int is_plain_safe(const char *s) {
  static const char *const reserved[] = {"true", "false", "yes", "no", "on", "off", "y", "n", "null"};
  if (!isalpha((unsigned char)s[0]) && s[0] != '/') return 0;
  for (const char *p = s; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("_@./+-", *p)) return 0;
  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
    if (strcasecmp(s, reserved[i]) == 0) return 0;
  return 1;
}

static void emit_string(text_buffer *out, const char *s) {
  if (is_plain_safe(s)) {
    emit(out, "%s", s);
    return;
  }
  emit(out, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      emit(out, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f)
      emit(out, "\\x%02x", *p);
    else
      emit(out, "%c", *p);
  }
  emit(out, "\"");
}

/* Shortest %g form that reads back as exactly v, always with a '.' so that
 * YAML 1.1 readers also see a float ("5.0", "1.0e-08"); whole numbers below
 * 1e15 in full ("300.0", not "3.0e+02"). */
static void emit_float(text_buffer *out, double v) {
  if (v == floor(v) && fabs(v) < 1e15) {
    emit(out, "%.1f", v);
    return;
  }
  char s[40];
  for (int precision = 1; precision <= 17; precision++) {
    snprintf(s, sizeof s, "%.*g", precision, v);
    if (strtod(s, NULL) == v) break;
  }
  char *exponent = strchr(s, 'e');
  if (strchr(s, '.'))
    emit(out, "%s", s);
  else if (exponent)
    emit(out, "%.*s.0%s", (int)(exponent - s), s, exponent);
  else
    emit(out, "%s.0", s);
}

static void emit_scalar(text_buffer *out, const sr_config_key *key, const void *value) {
  switch (key->type) {
    case SR_CFG_STRING:
      emit_string(out, value);
      return;
    case SR_CFG_INT:
      emit(out, "%d", *(const int *)value);
      return;
    case SR_CFG_INT64:
      emit(out, "%" PRId64, *(const int64_t *)value);
      return;
    case SR_CFG_FLOAT:
      emit_float(out, *(const double *)value);
      return;
    case SR_CFG_BOOL:
      emit(out, "%s", *(const int *)value ? "true" : "false");
      return;
    case SR_CFG_ENUM:
      emit(out, "%s", key->enum_names[*(const int *)value]);
      return;
  }
  SR_DIE("config key '%s' has unknown type %d", key->path, (int)key->type);
}

static void emit_value(text_buffer *out, const sr_config_key *key, const sr_config *c) {
  const char *member = (const char *)c + key->offset;
  if (!key->is_list) {
    emit_scalar(out, key, member);
    return;
  }
  int n = *(const int *)((const char *)c + key->count_offset);
  emit(out, "[");
  for (int i = 0; i < n; i++) {
    if (i) emit(out, ", ");
    emit_scalar(out, key, member + (size_t)i * key->elem_size);
  }
  emit(out, "]");
}

/* Opens the groups of `path` not shared with the previous key, then writes
 * the key itself, indented two spaces per level. */
static void emit_key(text_buffer *out, const char *prev, const sr_config_key *key, const sr_config *c) {
  size_t shared = prev ? common_group_len(prev, key->path) : 0;
  int depth = 0;
  const char *component = key->path;
  for (const char *dot; (dot = strchr(component, '.')) != NULL; component = dot + 1, depth++)
    if ((size_t)(dot - key->path) > shared) emit(out, "%*s%.*s:\n", 2 * depth, "", (int)(dot - component), component);
  emit(out, "%*s%s: ", 2 * depth, "", component);
  emit_value(out, key, c);
  emit(out, "\n");
}

/* Whether key k holds the same value in a and b (strings up to their NUL,
 * lists up to their counts). */
static int same_value(const sr_config *a, const sr_config *b, const sr_config_key *k) {
  const char *pa = (const char *)a + k->offset, *pb = (const char *)b + k->offset;
  size_t n = k->is_list ? 0 : 1;
  if (k->is_list) {
    const int ca = *(const int *)((const char *)a + k->count_offset),
              cb = *(const int *)((const char *)b + k->count_offset);
    if (ca != cb) return 0;
    n = (size_t)ca;
  }
  for (size_t i = 0; i < n; i++, pa += k->elem_size, pb += k->elem_size) {
    const int same =
        k->type == SR_CFG_STRING ? strncmp(pa, pb, k->elem_size) == 0 : memcmp(pa, pb, k->elem_size) == 0;
    if (!same) return 0;
  }
  return 1;
}

int sr_config_diff(const sr_config *a, const sr_config *b, const char *const *prefixes, int n, char *buf,
                   size_t bufsize) {
  int differing = 0;
  size_t used = 0;
  if (bufsize) buf[0] = '\0';
  for (int i = 0; i < sr_config_schema_count; i++) {
    const sr_config_key *k = &sr_config_schema[i];
    int listed = 0;
    for (int p = 0; p < n && !listed; p++) {
      const size_t len = strlen(prefixes[p]);
      listed =
          prefixes[p][len - 1] == '.' ? strncmp(k->path, prefixes[p], len) == 0 : strcmp(k->path, prefixes[p]) == 0;
    }
    if (!listed || same_value(a, b, k)) continue;
    if (used < bufsize) used += (size_t)snprintf(buf + used, bufsize - used, "%s%s", differing ? ", " : "", k->path);
    differing++;
  }
  return differing;
}

int sr_config_format_value(const sr_config *c, const char *path, char *buf, size_t bufsize) {
  for (int i = 0; i < sr_config_schema_count; i++) {
    if (strcmp(sr_config_schema[i].path, path) != 0) continue;
    text_buffer out = {NULL, 0, 0};
    emit(&out, "%s", "");
    emit_value(&out, &sr_config_schema[i], c);
    snprintf(buf, bufsize, "%s", out.text);
    free(out.text);
    return SR_OK;
  }
  return SR_FAIL(SR_ECONFIG, "unknown config key '%s'", path);
}

char *sr_config_changes(const sr_config *c, const sr_config *base, const char *separator, int *n_changed) {
  text_buffer out = {NULL, 0, 0};
  emit(&out, "%s", "");
  int n = 0;
  for (int i = 0; i < sr_config_schema_count; i++) {
    const sr_config_key *k = &sr_config_schema[i];
    if (same_value(c, base, k)) continue;
    emit(&out, "%s%s: ", n++ ? separator : "", k->path);
    emit_value(&out, k, c);
  }
  if (n_changed) *n_changed = n;
  return out.text;
}

char *sr_config_to_yaml(const sr_config *c) {
  text_buffer out = {NULL, 0, 0};
  emit(&out, "# shardrec %s resolved configuration: every key, defaults included\n", SHARDREC_VERSION);
  for (int i = 0; i < sr_config_schema_count; i++)
    emit_key(&out, i ? sr_config_schema[i - 1].path : NULL, &sr_config_schema[i], c);
  return out.text;
}

/* ---- documentation ------------------------------------------------------------- */

void sr_config_markdown_row(const sr_config_key *key, char *buf, size_t bufsize) {
  char allowed[512] = "", range[128];
  describe_range(key, range, sizeof range);
  if (key->is_list) {
    append(allowed, sizeof allowed, "%d to %zu entries", key->min_count, key->size / key->elem_size);
    if (*range) append(allowed, sizeof allowed, ", each %s", range);
    if (key->type == SR_CFG_STRING)
      append(allowed, sizeof allowed, ", each at most %zu characters", key->elem_size - 1);
  } else if (key->type == SR_CFG_STRING) {
    append(allowed, sizeof allowed, "at most %zu characters", key->elem_size - 1);
  } else if (key->type == SR_CFG_ENUM) {
    append_enum_names(key, allowed, sizeof allowed);
  } else if (key->type == SR_CFG_BOOL) {
    append(allowed, sizeof allowed, "true, false");
  } else {
    append(allowed, sizeof allowed, "%s", *range ? range : "any");
  }
  if (key->required) append(allowed, sizeof allowed, "; required");
  snprintf(buf, bufsize, "| `%s` | %s%s | `%s` | %s | %s |", key->path, key->is_list ? "list of " : "",
           type_info[key->type].name, key->default_yaml, allowed, key->doc);
}

/*
 * import_formats.c — reading the inputs of `data import`: a streaming line
 * reader, a field splitter, and one line parser per format (import_internal.h).
 *
 * Every parser turns lines into raw_records and hands them to a sink; it never
 * keeps a line. A problem with a line is returned as an error without position
 * ("expected 4 fields separated by '::', got 3"); read_lines() adds
 * "FILE:LINE: " or, with --skip-bad-lines, counts the line and goes on.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import_internal.h"
#include "shardrec/error.h"
#include "shardrec/fsutil.h"
#include "shardrec/log.h"

/* Progress is considered every 2^20 lines and printed every few seconds. */
#define PROGRESS_LINES_MASK ((1 << 20) - 1)
#define PROGRESS_SECONDS 2.0
/* Skipped lines shown as warnings before only being counted. */
#define SKIPPED_SHOWN 5

/* ---- fields ------------------------------------------------------------------------------ */

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static field trimmed(char *s, size_t len) {
  while (len > 0 && is_blank(*s)) s++, len--;
  while (len > 0 && is_blank(s[len - 1])) len--;
  return (field){s, len};
}

int field_to_int64(field f, int64_t *out) {
  size_t i = f.len > 0 && f.s[0] == '-';
  if (i == f.len) return -1;
  uint64_t v = 0;
  for (; i < f.len; i++) {
    unsigned digit = (unsigned)(f.s[i] - '0');
    if (digit > 9 || v > (UINT64_C(1) << 63) / 10) return -1;
    v = v * 10 + digit;
  }
  int negative = f.s[0] == '-';
  if (v > (uint64_t)INT64_MAX + (uint64_t)negative) return -1;
  *out = negative ? (int64_t)(0 - v) : (int64_t)v;
  return 0;
}

/* "d+[.d*]" with at most 15 digits is m / 10^k with m < 2^53: one correctly
 * rounded division gives exactly what strtod would, several times faster. */
static int plain_decimal(field f, double *out) {
  static const double powers[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                  1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
  int64_t m = 0;
  int digits = 0, decimals = -1;
  for (size_t i = 0; i < f.len; i++) {
    char c = f.s[i];
    if (c == '.' && decimals < 0 && digits > 0) {
      decimals = 0;
      continue;
    }
    if (c < '0' || c > '9' || ++digits > 15) return -1;
    m = m * 10 + (c - '0');
    decimals += decimals >= 0;
  }
  if (digits == 0) return -1;
  *out = (double)m / powers[decimals > 0 ? decimals : 0];
  return 0;
}

int field_to_double(field f, double *out) {
  if (plain_decimal(f, out) == 0) return 0;
  char buf[64];
  if (f.len == 0 || f.len >= sizeof buf) return -1;
  memcpy(buf, f.s, f.len);
  buf[f.len] = '\0';
  char *end;
  errno = 0;
  double v = strtod(buf, &end);
  if (end != buf + f.len || errno == ERANGE || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

/* The next run of non-blank characters at or after *pos, or 0 at the end. */
static int next_token(char *line, size_t len, size_t *pos, field *out) {
  size_t i = *pos;
  while (i < len && is_blank(line[i])) i++;
  if (i == len) return 0;
  size_t start = i;
  while (i < len && !is_blank(line[i])) i++;
  *out = (field){line + start, i - start};
  *pos = i;
  return 1;
}

/* A "quoted" field starting at line[*pos]; unescapes "" in place. Returns -1
 * unless the closing quote is followed by the delimiter or the end. */
static int quoted_field(char *line, size_t len, size_t *pos, const char *delim, size_t dlen, field *out) {
  size_t i = *pos + 1, n = 0;
  char *dst = line + *pos;
  for (;;) {
    if (i == len) return -1;
    if (line[i] == '"' && !(i + 1 < len && line[i + 1] == '"')) break;
    if (line[i] == '"') i++; /* "" is one quote */
    dst[n++] = line[i++];
  }
  i++; /* the closing quote */
  if (i < len && (len - i < dlen || memcmp(line + i, delim, dlen) != 0)) return -1;
  *out = (field){dst, n};
  *pos = i;
  return 0;
}

int split_fields(char *line, size_t len, const field_syntax *syntax, field *out, int max) {
  int n = 0;
  field f;
  if (strcmp(syntax->delimiter, " ") == 0) {
    for (size_t pos = 0; next_token(line, len, &pos, &f); n++)
      if (n < max) out[n] = f;
    return n;
  }
  const char *delim = syntax->delimiter;
  size_t dlen = strlen(delim), pos = 0;
  for (;; n++) {
    size_t start = pos;
    while (syntax->quotes && pos < len && line[pos] == ' ') pos++;
    if (syntax->quotes && pos < len && line[pos] == '"') {
      if (quoted_field(line, len, &pos, delim, dlen, &f) != 0) return -1;
    } else {
      char *end = memmem(line + start, len - start, delim, dlen);
      pos = end ? (size_t)(end - line) : len;
      f = trimmed(line + start, pos - start);
    }
    if (n < max) out[n] = f;
    if (pos == len) return n + 1;
    pos += dlen;
  }
}

const char *delimiter_label(const char *delimiter, char *buf, size_t cap) {
  if (strcmp(delimiter, "\t") == 0) return "tabs";
  if (strcmp(delimiter, " ") == 0) return "blanks";
  snprintf(buf, cap, "'%s'", delimiter);
  return buf;
}

/* ---- lines ------------------------------------------------------------------------------- */

static void note_skipped(const char *path, int64_t line_no, sr_import_stats *stats) {
  if (stats->skipped_lines == 0)
    snprintf(stats->first_skipped, sizeof stats->first_skipped, "%s:%lld: %s", path, (long long)line_no,
             sr_error_message());
  if (stats->skipped_lines < SKIPPED_SHOWN)
    sr_warn("skipping %s:%lld: %s", path, (long long)line_no, sr_error_message());
  stats->skipped_lines++;
  sr_error_clear();
}

static void report_progress(const char *path, int64_t line_no, double start, double *last) {
  double now = sr_now();
  if (now - *last < PROGRESS_SECONDS) return;
  *last = now;
  sr_info("%s: %.1f M lines, %.2f M lines/s", path, (double)line_no / 1e6, (double)line_no / 1e6 / (now - start));
}

static int all_blank(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (!is_blank(s[i])) return 0;
  return 1;
}

/* One non-blank line: the first may be a header; only `line` failures are skippable. */
static int handle_line(line_handlers *h, char *line, size_t len, int first, int skip_bad_lines,
                       sr_import_stats *stats) {
  int consumed = 0;
  if (first && h->first) SR_TRY(h->first(h, line, len, &consumed));
  if (consumed) return SR_OK;
  int rc = h->line(h, line, len);
  if (rc != SR_EFORMAT || !skip_bad_lines) return rc;
  note_skipped(h->path, h->line_no, stats);
  return SR_OK;
}

static int read_open_file(FILE *f, int skip_bad_lines, line_handlers *h, sr_import_stats *stats) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  int64_t non_blank = 0;
  double start = sr_now(), last = start;
  int rc = SR_OK;
  h->line_no = 0;
  while (rc == SR_OK && (got = getline(&line, &cap, f)) >= 0) {
    size_t len = (size_t)got;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    if ((++h->line_no & PROGRESS_LINES_MASK) == 0) report_progress(h->path, h->line_no, start, &last);
    if (all_blank(line, len)) continue;
    stats->lines++;
    rc = handle_line(h, line, len, non_blank++ == 0, skip_bad_lines, stats);
    if (rc != SR_OK) sr_error_prefix("%s:%lld", h->path, (long long)h->line_no);
  }
  free(line);
  if (rc == SR_OK && ferror(f)) rc = SR_FAIL(SR_EIO, "error reading %s: %s", h->path, strerror(errno));
  if (rc == SR_OK && non_blank == 0) rc = SR_FAIL(SR_EFORMAT, "%s: empty file", h->path);
  return rc;
}

int read_lines(const char *path, int file_index, int skip_bad_lines, line_handlers *h, sr_import_stats *stats) {
  FILE *f = fopen(path, "rb");
  if (!f) return SR_FAIL(SR_EIO, "cannot open %s: %s", path, strerror(errno));
  setvbuf(f, NULL, _IOFBF, 1 << 20);
  h->path = path;
  h->file_index = file_index;
  int rc = read_open_file(f, skip_bad_lines, h, stats);
  fclose(f);
  return rc;
}

/* ---- columns --------------------------------------------------------------------------- */

enum { COL_USER, COL_ITEM, COL_RATING, COL_TIMESTAMP, N_COLS };
static const char *const column_names[N_COLS] = {"user", "item", "rating", "timestamp"};
/* Fields looked at per line; columns are numbered below this. */
#define MAX_FIELDS 64
#define COLUMN_NAME_MAX 64

/* Where each column is: a field number, a header name (resolved per file), or absent. */
typedef struct {
  int index[N_COLS];                  /* -1: absent or named */
  char name[N_COLS][COLUMN_NAME_MAX]; /* "" unless named */
  uint8_t optional[N_COLS];           /* a named column the header may lack (RecBole's rating, timestamp) */
} column_spec;

static int column_key(const char *key, size_t len) {
  static const struct {
    const char *key;
    int column;
  } keys[] = {{"user", COL_USER},     {"item", COL_ITEM},           {"rating", COL_RATING},
              {"weight", COL_RATING}, {"timestamp", COL_TIMESTAMP}, {"time", COL_TIMESTAMP}};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (strlen(keys[i].key) == len && memcmp(keys[i].key, key, len) == 0) return keys[i].column;
  return -1;
}

/* One "key=value" of --columns. */
static int parse_column(const char *item, size_t len, int header, column_spec *spec) {
  const char *eq = memchr(item, '=', len);
  int col = eq ? column_key(item, (size_t)(eq - item)) : -1;
  if (col < 0)
    return SR_FAIL(SR_EINVAL,
                   "--columns: '%.*s' is not KEY=COLUMN with KEY user, item, rating (or weight), timestamp", (int)len,
                   item);
  if (spec->index[col] >= 0 || spec->name[col][0])
    return SR_FAIL(SR_EINVAL, "--columns: %s is given twice", column_names[col]);
  field value = {(char *)eq + 1, len - (size_t)(eq + 1 - item)};
  int64_t number;
  if (field_to_int64(value, &number) == 0) {
    if (number < 0 || number >= MAX_FIELDS)
      return SR_FAIL(SR_EINVAL, "--columns: column number %lld outside [0, %d)", (long long)number, MAX_FIELDS);
    spec->index[col] = (int)number;
    return SR_OK;
  }
  if (!header)
    return SR_FAIL(SR_EINVAL, "--columns: '%.*s' names a column: add --header (or give the column number)", (int)len,
                   item);
  if (value.len == 0 || value.len >= COLUMN_NAME_MAX)
    return SR_FAIL(SR_EINVAL, "--columns: column name '%.*s' must be 1 to %d bytes", (int)value.len, value.s,
                   COLUMN_NAME_MAX - 1);
  memcpy(spec->name[col], value.s, value.len);
  spec->name[col][value.len] = '\0';
  return SR_OK;
}

static int parse_column_spec(const char *spec_text, int header, column_spec *spec) {
  memset(spec, 0, sizeof *spec);
  for (int c = 0; c < N_COLS; c++) spec->index[c] = -1;
  const char *text = spec_text ? spec_text : "user=0,item=1";
  for (const char *p = text; *p;) {
    size_t len = strcspn(p, ",");
    SR_TRY(parse_column(p, len, header, spec));
    p += len + (p[len] == ',');
  }
  for (int c = COL_USER; c <= COL_ITEM; c++)
    if (spec->index[c] < 0 && !spec->name[c][0])
      return SR_FAIL(SR_EINVAL, "--columns '%s': no %s column", text, column_names[c]);
  for (int a = 0; a < N_COLS; a++)
    for (int b = a + 1; b < N_COLS; b++)
      if ((spec->index[a] >= 0 && spec->index[a] == spec->index[b]) ||
          (spec->name[a][0] && strcmp(spec->name[a], spec->name[b]) == 0))
        return SR_FAIL(SR_EINVAL, "--columns '%s': %s and %s are the same column", text, column_names[a],
                       column_names[b]);
  return SR_OK;
}

static int has_column(const column_spec *spec, int col) { return spec->index[col] >= 0 || spec->name[col][0]; }

static void movielens_columns(column_spec *spec, int named) {
  static const char *const names[N_COLS] = {"userId", "movieId", "rating", "timestamp"};
  memset(spec, 0, sizeof *spec);
  for (int c = 0; c < N_COLS; c++) {
    spec->index[c] = named ? -1 : c;
    if (named) snprintf(spec->name[c], COLUMN_NAME_MAX, "%s", names[c]);
  }
}

/* ---- RecBole atomic files --------------------------------------------------------------- */

/* RecBole's default field names (its USER_ID_FIELD, ITEM_ID_FIELD, RATING_FIELD, TIME_FIELD). */
static int recbole_columns(const sr_import_opts *o, column_spec *spec) {
  static const char *const names[N_COLS] = {"user_id", "item_id", "rating", "timestamp"};
  if (o->columns) return parse_column_spec(o->columns, 1, spec);
  memset(spec, 0, sizeof *spec);
  for (int c = 0; c < N_COLS; c++) {
    spec->index[c] = -1;
    snprintf(spec->name[c], COLUMN_NAME_MAX, "%s", names[c]);
    spec->optional[c] = c == COL_RATING || c == COL_TIMESTAMP;
  }
  return SR_OK;
}

void recbole_id_fields(const sr_import_opts *o, char user[64], char item[64]) {
  column_spec spec;
  if (recbole_columns(o, &spec) != SR_OK) sr_error_clear(); /* parse_inputs reported it already */
  snprintf(user, 64, "%s", spec.name[COL_USER]);
  snprintf(item, 64, "%s", spec.name[COL_ITEM]);
}

int recbole_presplit(const sr_import_opts *o) {
  static const char *const suffixes[3] = {".train.inter", ".valid.inter", ".test.inter"};
  if (o->format != SR_IMPORT_RECBOLE || o->n_inputs != 3) return 0;
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(o->inputs[i]), m = strlen(suffixes[i]);
    if (n < m || strcmp(o->inputs[i] + n - m, suffixes[i]) != 0) return 0;
  }
  return 1;
}

/* A typed header field "name:type": the name's length, after checking the type. */
static int typed_name(field f, size_t *name_len) {
  static const char *const types[] = {"token", "token_seq", "float", "float_seq"};
  const char *colon = memchr(f.s, ':', f.len);
  if (!colon) return SR_FAIL(SR_EFORMAT, "header field '%.*s' is not NAME:TYPE", (int)f.len, f.s);
  size_t type_len = f.len - (size_t)(colon + 1 - f.s);
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (strlen(types[i]) == type_len && memcmp(colon + 1, types[i], type_len) == 0) {
      *name_len = (size_t)(colon - f.s);
      return SR_OK;
    }
  return SR_FAIL(SR_EFORMAT, "header field '%.*s': type '%.*s' is not token, token_seq, float or float_seq",
                 (int)f.len, f.s, (int)type_len, colon + 1);
}

/* Whether the typed header of the file `path` has a field `name`. */
static int header_has(const char *path, const char *name, int *has) {
  FILE *f = fopen(path, "rb");
  if (!f) return SR_FAIL(SR_EIO, "cannot open %s: %s", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  ssize_t got = getline(&line, &cap, f);
  fclose(f);
  *has = 0;
  size_t len = got > 0 ? (size_t)got : 0;
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
  field fields[MAX_FIELDS];
  field_syntax tab = {"\t", 0};
  int n = split_fields(line, len, &tab, fields, MAX_FIELDS);
  for (int i = 0; i < n && i < MAX_FIELDS; i++) {
    const char *colon = memchr(fields[i].s, ':', fields[i].len);
    size_t name_len = colon ? (size_t)(colon - fields[i].s) : fields[i].len;
    *has |= name_len == strlen(name) && memcmp(fields[i].s, name, name_len) == 0;
  }
  free(line);
  return SR_OK;
}

int format_columns(const sr_import_opts *o, int *has_rating, int *has_timestamp) {
  column_spec spec;
  switch (o->format) {
    case SR_IMPORT_MOVIELENS:
    case SR_IMPORT_NETFLIX:
      *has_rating = *has_timestamp = 1;
      return SR_OK;
    case SR_IMPORT_MSD:
      *has_rating = 1, *has_timestamp = 0;
      return SR_OK;
    case SR_IMPORT_LIGHTGCN:
      *has_rating = *has_timestamp = 0;
      return SR_OK;
    case SR_IMPORT_CSV:
      SR_TRY(parse_column_spec(o->columns, o->header, &spec));
      *has_rating = has_column(&spec, COL_RATING);
      *has_timestamp = has_column(&spec, COL_TIMESTAMP);
      return SR_OK;
    case SR_IMPORT_RECBOLE: /* the typed header of the first file tells */
      SR_TRY(recbole_columns(o, &spec));
      SR_TRY(header_has(o->inputs[0], spec.name[COL_RATING], has_rating));
      SR_TRY(header_has(o->inputs[0], spec.name[COL_TIMESTAMP], has_timestamp));
      *has_rating &= has_column(&spec, COL_RATING);
      *has_timestamp &= has_column(&spec, COL_TIMESTAMP);
      return SR_OK;
    case SR_IMPORT_MULTVAE:
    case SR_IMPORT_AUTO:
      break;
  }
  return SR_FAIL(SR_EINVAL, "import: the format is not resolved");
}

/* ---- the parsers ------------------------------------------------------------------------ */

typedef struct {
  line_handlers h; /* first: the handlers receive &parser->h */
  const sr_import_opts *o;
  record_sink *sink;
  field_syntax syntax;
  column_spec spec; /* as configured */
  int col[N_COLS];  /* this file's field number of each column, -1 = absent */
  int n_fields;     /* fields a line must have: exactly (exact) or at least */
  int exact;
  int typed_header; /* RecBole: header fields are "name:type" */
  char movie[32];   /* Netflix: the current "MOVIE:" id, "" before the first */
} format_parser;

static int wrong_field_count(const format_parser *p, int n) {
  char buf[16];
  return SR_FAIL(SR_EFORMAT, "expected %s%d fields separated by %s, got %d", p->exact ? "" : "at least ", p->n_fields,
                 delimiter_label(p->syntax.delimiter, buf, sizeof buf), n);
}

/* Fixes this file's field numbers: from the header line's names, or as given. */
static int resolve_columns(format_parser *p, char *header, size_t len) {
  field names[MAX_FIELDS];
  int n = header ? split_fields(header, len, &p->syntax, names, MAX_FIELDS) : 0;
  if (n < 0)
    return SR_FAIL(SR_EFORMAT, "a quoted field of the header is not closed, or text follows its closing quote");
  for (int i = 0; p->typed_header && i < n && i < MAX_FIELDS; i++) SR_TRY(typed_name(names[i], &names[i].len));
  p->n_fields = 0;
  for (int c = 0; c < N_COLS; c++) {
    p->col[c] = p->spec.index[c];
    for (int i = 0; p->spec.name[c][0] && i < n && i < MAX_FIELDS; i++)
      if (names[i].len == strlen(p->spec.name[c]) && memcmp(names[i].s, p->spec.name[c], names[i].len) == 0)
        p->col[c] = i;
    if (p->spec.name[c][0] && p->col[c] < 0 && !p->spec.optional[c])
      return SR_FAIL(SR_EFORMAT, "no column named '%s' in the header '%.*s'", p->spec.name[c], (int)len, header);
    if (p->col[c] + 1 > p->n_fields) p->n_fields = p->col[c] + 1;
  }
  return SR_OK;
}

static int bad_number(const char *what, field f, const char *kind) {
  return SR_FAIL(SR_EFORMAT, "%s '%.*s' is not %s", what, (int)f.len, f.s, kind);
}

/* A line of delimited columns (MovieLens, MSD, CSV). */
static int columns_line(line_handlers *h, char *line, size_t len) {
  format_parser *p = (format_parser *)h;
  field f[MAX_FIELDS];
  int n = split_fields(line, len, &p->syntax, f, MAX_FIELDS);
  if (n < 0) return SR_FAIL(SR_EFORMAT, "a quoted field is not closed, or text follows its closing quote");
  if (p->exact ? n != p->n_fields : n < p->n_fields) return wrong_field_count(p, n);
  raw_record r = {.user = f[p->col[COL_USER]], .item = f[p->col[COL_ITEM]]};
  r.has_rating = p->col[COL_RATING] >= 0;
  if (r.has_rating && field_to_double(f[p->col[COL_RATING]], &r.rating) != 0)
    return bad_number("rating", f[p->col[COL_RATING]], "a number");
  r.has_timestamp = p->col[COL_TIMESTAMP] >= 0;
  if (r.has_timestamp && field_to_int64(f[p->col[COL_TIMESTAMP]], &r.timestamp) != 0) {
    double seconds; /* RecBole's timestamps are floats */
    if (!p->typed_header || field_to_double(f[p->col[COL_TIMESTAMP]], &seconds) != 0 || fabs(seconds) > 9e18)
      return bad_number("timestamp", f[p->col[COL_TIMESTAMP]], p->typed_header ? "a number" : "an integer");
    r.timestamp = (int64_t)floor(seconds);
  }
  return p->sink->add(p->sink, &r, h->file_index);
}

/* CSV: the first line is the header with --header, else already data. */
static int csv_first(line_handlers *h, char *line, size_t len, int *consumed) {
  format_parser *p = (format_parser *)h;
  *consumed = p->o->header;
  return resolve_columns(p, p->o->header ? line : NULL, len);
}

/* RecBole: the first line is the typed header. */
static int recbole_first(line_handlers *h, char *line, size_t len, int *consumed) {
  format_parser *p = (format_parser *)h;
  *consumed = 1;
  return resolve_columns(p, line, len);
}

/* MovieLens: which of the three layouts, from the first line. */
static int movielens_first(line_handlers *h, char *line, size_t len, int *consumed) {
  format_parser *p = (format_parser *)h;
  static const char csv_header[] = "userId,";
  int is_csv = len >= strlen(csv_header) && memcmp(line, csv_header, strlen(csv_header)) == 0;
  p->syntax = (field_syntax){is_csv ? "," : memmem(line, len, "::", 2) ? "::" : "\t", is_csv};
  if (!is_csv && !memmem(line, len, "::", 2) && !memchr(line, '\t', len))
    return SR_FAIL(SR_EFORMAT,
                   "not a MovieLens ratings file: expected 'user<TAB>item<TAB>rating<TAB>timestamp' (u.data), "
                   "'user::item::rating::timestamp' (ratings.dat) or the header 'userId,movieId,rating,timestamp' "
                   "(ratings.csv)");
  movielens_columns(&p->spec, is_csv);
  *consumed = is_csv;
  return resolve_columns(p, is_csv ? line : NULL, len);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static int days_in_month(int64_t y, int64_t m) {
  static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return days[m - 1] + (m == 2 && leap);
}

/* "YYYY-MM-DD" (a day that exists) -> seconds since the epoch at midnight UTC. */
static int parse_date(field f, int64_t *seconds) {
  int64_t y, m, d;
  if (f.len != 10 || f.s[4] != '-' || f.s[7] != '-' || field_to_int64((field){f.s, 4}, &y) != 0 ||
      field_to_int64((field){f.s + 5, 2}, &m) != 0 || field_to_int64((field){f.s + 8, 2}, &d) != 0 || m < 1 ||
      m > 12 || d < 1 || d > days_in_month(y, m))
    return -1;
  *seconds = days_from_civil(y, m, d) * 86400;
  return 0;
}

/* Netflix: "MOVIE:" starts a block of "USER,RATING,YYYY-MM-DD" lines. */
static int netflix_line(line_handlers *h, char *line, size_t len) {
  format_parser *p = (format_parser *)h;
  field t = trimmed(line, len);
  if (t.len > 0 && t.s[t.len - 1] == ':') {
    int64_t movie;
    field id = trimmed(t.s, t.len - 1);
    if (field_to_int64(id, &movie) != 0 || id.len >= sizeof p->movie) return bad_number("movie id", id, "an integer");
    memcpy(p->movie, id.s, id.len);
    p->movie[id.len] = '\0';
    return SR_OK;
  }
  if (!p->movie[0]) return SR_FAIL(SR_EFORMAT, "a rating line before any 'MOVIE:' line");
  field f[3];
  int n = split_fields(line, len, &p->syntax, f, 3);
  if (n != 3) return wrong_field_count(p, n);
  raw_record r = {.user = f[0], .item = {p->movie, strlen(p->movie)}, .has_rating = 1, .has_timestamp = 1};
  if (field_to_double(f[1], &r.rating) != 0) return bad_number("rating", f[1], "a number");
  if (parse_date(f[2], &r.timestamp) != 0) return bad_number("date", f[2], "a date YYYY-MM-DD");
  return p->sink->add(p->sink, &r, h->file_index);
}

/* LightGCN: "USER ITEM ITEM ..." (a user may have no items). */
static int lightgcn_line(line_handlers *h, char *line, size_t len) {
  format_parser *p = (format_parser *)h;
  raw_record r = {0};
  size_t pos = 0;
  next_token(line, len, &pos, &r.user); /* the line is not blank */
  while (next_token(line, len, &pos, &r.item)) SR_TRY(p->sink->add(p->sink, &r, h->file_index));
  return SR_OK;
}

static int check_lightgcn_inputs(const sr_import_opts *o) {
  if (o->holdout != SR_HOLDOUT_GIVEN || o->protocol != SR_PROTOCOL_WEAK) return SR_OK;
  if (o->n_inputs != 2)
    return SR_FAIL(SR_EINVAL,
                   "lightgcn: the given split needs two inputs, the training file then the test file (got %d)",
                   o->n_inputs);
  if (sr_same_file(o->inputs[0], o->inputs[1]))
    return SR_FAIL(SR_EINVAL, "lightgcn: %s is given as the training file and as the test file", o->inputs[0]);
  const char *first = strrchr(o->inputs[0], '/'), *second = strrchr(o->inputs[1], '/');
  first = first ? first + 1 : o->inputs[0];
  second = second ? second + 1 : o->inputs[1];
  if (strncmp(first, "test", 4) == 0 && strncmp(second, "train", 5) == 0)
    return SR_FAIL(SR_EINVAL, "lightgcn: give the training file first, then the test file (got %s then %s)",
                   o->inputs[0], o->inputs[1]);
  return SR_OK;
}

/* One NAME.inter, or the three split files in order. */
static int check_recbole_inputs(const sr_import_opts *o) {
  if (recbole_presplit(o)) return SR_OK;
  size_t n = strlen(o->inputs[0]);
  if (o->n_inputs == 1 && n > 6 && strcmp(o->inputs[0] + n - 6, ".inter") == 0) return SR_OK;
  return SR_FAIL(SR_EINVAL,
                 "recbole: give NAME.inter, or NAME.train.inter NAME.valid.inter NAME.test.inter in "
                 "that order (got %d file(s), the first %s)",
                 o->n_inputs, o->inputs[0]);
}

/* Per-format setup of the parser; the CSV delimiter may depend on the file name. */
static void setup_parser(format_parser *p, const char *path) {
  const sr_import_opts *o = p->o;
  size_t n = strlen(path);
  p->movie[0] = '\0';
  p->h.first = NULL;
  p->exact = 1;
  switch (o->format) {
    case SR_IMPORT_MOVIELENS:
      p->h.first = movielens_first;
      p->h.line = columns_line;
      break;
    case SR_IMPORT_NETFLIX:
      p->syntax = (field_syntax){",", 0};
      p->n_fields = 3;
      p->h.line = netflix_line;
      break;
    case SR_IMPORT_MSD:
      p->syntax = (field_syntax){"\t", 0};
      for (int c = 0; c < N_COLS; c++) p->col[c] = c < 3 ? c : -1;
      p->n_fields = 3;
      p->h.line = columns_line;
      break;
    case SR_IMPORT_LIGHTGCN:
      p->h.line = lightgcn_line;
      break;
    case SR_IMPORT_RECBOLE:
      p->syntax = (field_syntax){"\t", 0};
      p->exact = 0;
      p->typed_header = 1;
      p->h.first = recbole_first;
      p->h.line = columns_line;
      break;
    default: /* CSV */
      p->syntax.delimiter = o->delimiter ? o->delimiter : n >= 4 && strcmp(path + n - 4, ".tsv") == 0 ? "\t" : ",";
      p->syntax.quotes = strcmp(p->syntax.delimiter, " ") != 0;
      p->exact = 0;
      p->h.first = csv_first;
      p->h.line = columns_line;
      break;
  }
}

int parse_inputs(const sr_import_opts *o, record_sink *sink, sr_import_stats *stats) {
  format_parser p = {.o = o, .sink = sink};
  if (o->format == SR_IMPORT_CSV) SR_TRY(parse_column_spec(o->columns, o->header, &p.spec));
  if (o->format == SR_IMPORT_RECBOLE) {
    SR_TRY(recbole_columns(o, &p.spec));
    SR_TRY(check_recbole_inputs(o));
  }
  if (o->format == SR_IMPORT_LIGHTGCN) SR_TRY(check_lightgcn_inputs(o));
  for (int i = 0; i < o->n_inputs; i++) {
    setup_parser(&p, o->inputs[i]);
    SR_TRY(read_lines(o->inputs[i], i, o->skip_bad_lines, &p.h, stats));
  }
  return SR_OK;
}

/*
 * import_internal.h — the pieces of `data import` (import.h) shared by the
 * pipeline (import.c), the raw-id dictionary (import_ids.c), the line reader
 * and format parsers (import_formats.c) and the MovieLens side-file features
 * (import_features.c). Not installed: the public interface is import.h.
 */
#ifndef SHARDREC_IMPORT_INTERNAL_H
#define SHARDREC_IMPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shardrec/import.h"

/* ---- raw id dictionary (import_ids.c) ---------------------------------------------- */

/* Raw ids (integers, or byte strings) to dense ids 0..n-1 in first-seen order:
 * an open-addressing hash table of ids over the key storage. */
typedef struct {
  int strings;
  int64_t n;
  int64_t *numbers; /* integer keys [n] */
  char *bytes;      /* string keys, back to back */
  int64_t *offsets; /* [n + 1]: key k is bytes[offsets[k] .. offsets[k + 1]) */
  size_t numbers_cap, bytes_cap, offsets_cap;
  int32_t *slots; /* id + 1, 0 = empty; a power of two, at most half full */
  int64_t n_slots;
} id_dict;

/* At most this many distinct keys: dense ids are int32 (CSR columns). */
#define ID_DICT_MAX INT32_MAX

void id_dict_init(id_dict *d, int strings);
void id_dict_free(id_dict *d);
/* The id of the key, added if new; -1 when the dictionary is full. */
int32_t id_dict_add_number(id_dict *d, int64_t key);
int32_t id_dict_add_string(id_dict *d, const char *s, size_t len);
/* The id of the key, or -1. */
int32_t id_dict_find_number(const id_dict *d, int64_t key);
int32_t id_dict_find_string(const id_dict *d, const char *s, size_t len);
/* order[0..n): the ids sorted by key (integers numerically, strings bytewise). */
void id_dict_sorted(const id_dict *d, int32_t *order);
/* The raw ids of dict ids ids[0..n), in that order. */
void id_dict_export(const id_dict *d, const int32_t *ids, int64_t n, sr_raw_ids *out);
/* "123" or "'abc'" for messages. */
void id_dict_describe(const id_dict *d, int32_t id, char *buf, size_t cap);

/* ---- lines and fields (import_formats.c) ---------------------------------------------- */

typedef struct {
  char *s; /* into the line buffer; not NUL-terminated */
  size_t len;
} field;

/* Whole-field parsers; 0 on success. */
int field_to_int64(field f, int64_t *out);
int field_to_double(field f, double *out);

/* How to cut a line into fields: `delimiter` is a string ("," "\t" "::"), or
 * " " for runs of blanks (spaces and tabs); with `quotes`, a field may be
 * "double-quoted" ("" inside is one quote), as in RFC 4180 CSV. */
typedef struct {
  const char *delimiter;
  int quotes;
} field_syntax;

/* Splits line[0..len) in place; stores at most `max` fields and returns how
 * many there are (possibly more than max), or -1 for a quoted field that is
 * not closed or has text after its closing quote. */
int split_fields(char *line, size_t len, const field_syntax *syntax, field *out, int max);
/* "','", "tabs", "'::'", "blanks" for messages. */
const char *delimiter_label(const char *delimiter, char *buf, size_t cap);

/* Reads a text file line by line, calling handlers with each non-blank line
 * (without its end of line). The first line goes to `first` (which may take it
 * as a header: *consumed = 1); the others to `line`. A handler's failure is
 * prefixed "FILE:LINE: "; with skip_bad_lines, failures of `line` are counted
 * and skipped instead. */
typedef struct line_handlers {
  int (*first)(struct line_handlers *h, char *line, size_t len, int *consumed);
  int (*line)(struct line_handlers *h, char *line, size_t len);
  const char *path; /* the file being read, for handlers that need it */
  int file_index;   /* position of the file among the inputs */
  int64_t line_no;  /* of the line being handled */
} line_handlers;

int read_lines(const char *path, int file_index, int skip_bad_lines, line_handlers *h, sr_import_stats *stats);

/* ---- interaction records ------------------------------------------------------------------ */

/* One interaction as parsed: raw id fields, optional rating and timestamp. */
typedef struct {
  field user, item;
  int has_rating, has_timestamp;
  double rating;
  int64_t timestamp;
} raw_record;

/* Receives each parsed record; a failure is a problem with that line. */
typedef struct record_sink {
  int (*add)(struct record_sink *sink, const raw_record *r, int file_index);
} record_sink;

/* Parses every input of o (format already resolved) into the sink. */
int parse_inputs(const sr_import_opts *o, record_sink *sink, sr_import_stats *stats);
/* Whether the records of o's format carry a rating and a timestamp (for CSV,
 * from --columns, which is checked here). */
int format_columns(const sr_import_opts *o, int *has_rating, int *has_timestamp);

/* The column names of a RecBole input's user and item ids ("user_id",
 * "item_id" unless --columns names others). */
void recbole_id_fields(const sr_import_opts *o, char user[64], char item[64]);
/* Whether o's inputs are RecBole's three split files, in order. */
int recbole_presplit(const sr_import_opts *o);

/* ---- the Mult-VAE authors' split (import_multvae.c) ------------------------------------------ */

/* Reads the directory o->inputs[0]: t->full = users x items of every pair
 * file, entry_keys = the file (part) of each pair, t->items = unique_sid.txt,
 * t->users = the uids. */
int multvae_load(const sr_import_opts *o, sr_import_table *t);
/* The dataset the files give: strong protocol, users and items as numbered. */
int multvae_split(const sr_import_table *t, sr_dataset *d);

/* ---- MovieLens and RecBole side files (import_features.c) ---------------------------------- */

/* Raw id (as in the ratings) -> row of the table, or -1 when not kept. */
typedef struct {
  const id_dict *dict;
  const int32_t *row_of_id; /* [dict->n] */
} id_lookup;

/* genres, year_bucket, title_tokens of movies.dat / movies.csv, rows = items. */
int movie_features(const char *path, const id_lookup *items, int64_t n_items, int skip_bad_lines,
                   sr_import_stats *stats, sr_feature **features, sr_raw_ids **vocab, int *n);
/* Every token (single-valued) and token_seq (multi-valued) field of a RecBole
 * NAME.item / NAME.user file, keyed by its column `id_field`; float fields are
 * not categorical and are left out. */
int recbole_features(const char *path, const char *id_field, const char *entity_kind, const id_lookup *ids,
                     int64_t n_entities, int skip_bad_lines, sr_import_stats *stats, sr_feature **features,
                     sr_raw_ids **vocab, int *n);
/* gender, age, occupation, zip3 of ml-1m users.dat, rows = users. */
int user_features(const char *path, const id_lookup *users, int64_t n_users, int skip_bad_lines,
                  sr_import_stats *stats, sr_feature **features, sr_raw_ids **vocab, int *n);

#endif

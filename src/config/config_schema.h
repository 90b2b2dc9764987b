/*
 * config_schema.h — the table that drives the configuration engine (private).
 *
 * config.c knows nothing about individual keys: it loads YAML, applies
 * overrides, prints and documents whatever config_schema.c lists. Adding a key
 * (or a whole section such as dist.* or checkpoint.*) means adding a member to
 * sr_config and one entry to the table; the engine, to_yaml and the docs check
 * (tests/test_config.cpp against docs/config.md) pick it up.
 *
 * A key's dotted path gives its place in the YAML tree: "train.lr" is key `lr`
 * inside the mapping `train`. Paths may be deeper ("two_tower.item.hidden");
 * keys that share a prefix must be adjacent in the table, which is also the
 * order sr_config_to_yaml() prints them in.
 */
#ifndef SHARDREC_CONFIG_SCHEMA_H
#define SHARDREC_CONFIG_SCHEMA_H

#include <stddef.h>

#include "shardrec/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest dotted path, list element label included ("model.hidden[7]"). */
#define SR_CONFIG_PATH_MAX 128

typedef enum {
  SR_CFG_STRING = 0, /* char[N], NUL-terminated; longer values are rejected */
  SR_CFG_INT = 1,    /* int */
  SR_CFG_INT64 = 2,  /* int64_t */
  SR_CFG_FLOAT = 3,  /* double */
  SR_CFG_BOOL = 4,   /* int, 0 or 1 */
  SR_CFG_ENUM = 5    /* int, index into enum_names */
} sr_config_type;

typedef enum { SR_BOUND_NONE = 0, SR_BOUND_INCLUSIVE = 1, SR_BOUND_EXCLUSIVE = 2 } sr_config_bound_kind;

typedef struct {
  sr_config_bound_kind kind;
  double value;
} sr_config_bound;

typedef struct {
  const char *path;              /* "train.lr" */
  sr_config_type type;           /* of the value, or of each element of a list */
  size_t offset;                 /* of the member in sr_config */
  size_t size;                   /* sizeof the member (a list: the whole array) */
  size_t elem_size;              /* sizeof one value: == size for a scalar, the string buffer for strings */
  int is_list;                   /* member is an array of values with an int count */
  size_t count_offset;           /* list: offset of that count */
  int min_count;                 /* list: fewest elements; the most is size / elem_size */
  sr_config_bound lo, hi;        /* numbers: allowed range of the value (or of each element) */
  const char *const *enum_names; /* enum: NULL-terminated, index = stored value */
  int required;                  /* string or list must be non-empty (checked by validate) */
  const char *default_yaml;      /* default as YAML text ("1e-3", "[600]"), applied like an override */
  const char *doc;               /* one line for docs/config.md */
} sr_config_key;

extern const sr_config_key sr_config_schema[];
extern const int sr_config_schema_count;

/* SR_ECONFIG naming the first `required` key that is empty, else SR_OK. */
int sr_config_check_required(const sr_config *c);

/* The docs/config.md reference row of one key:
 * "| `path` | type | `default` | allowed values | doc |". Tests check that the
 * document contains this exact row for every key, so the two cannot drift. */
void sr_config_markdown_row(const sr_config_key *key, char *buf, size_t bufsize);

#ifdef __cplusplus
}
#endif
#endif

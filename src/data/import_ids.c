/* import_ids.c — the raw-id dictionary of `data import` (import_internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import_internal.h"
#include "shardrec/error.h"
#include "shardrec/h5io.h"
#include "shardrec/mem.h"

void id_dict_init(id_dict *d, int strings) {
  memset(d, 0, sizeof *d);
  d->strings = strings;
  d->n_slots = 1024;
  d->slots = sr_calloc((size_t)d->n_slots, sizeof *d->slots);
  if (strings) {
    sr_grow(&d->offsets, &d->offsets_cap, 1);
    d->offsets[0] = 0;
  }
}

void id_dict_free(id_dict *d) {
  free(d->numbers);
  free(d->bytes);
  free(d->offsets);
  free(d->slots);
  memset(d, 0, sizeof *d);
}

/* splitmix64's finaliser: consecutive integers land in unrelated slots. */
static uint64_t hash_number(int64_t key) {
  uint64_t x = (uint64_t)key;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/* FNV-1a, then the same finaliser to spread the low bits. */
static uint64_t hash_string(const char *s, size_t len) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ULL;
  return hash_number((int64_t)h);
}

static const char *key_bytes(const id_dict *d, int64_t id, size_t *len) {
  *len = (size_t)(d->offsets[id + 1] - d->offsets[id]);
  return d->bytes + d->offsets[id];
}

static uint64_t hash_of_id(const id_dict *d, int64_t id) {
  if (!d->strings) return hash_number(d->numbers[id]);
  size_t len;
  const char *s = key_bytes(d, id, &len);
  return hash_string(s, len);
}

/* Linear probing: the slot holding `key`, or the empty slot where it belongs. */
static int64_t number_slot(const id_dict *d, int64_t key) {
  uint64_t mask = (uint64_t)d->n_slots - 1;
  for (uint64_t at = hash_number(key) & mask;; at = (at + 1) & mask) {
    int32_t id = d->slots[at] - 1;
    if (id < 0 || d->numbers[id] == key) return (int64_t)at;
  }
}

static int64_t string_slot(const id_dict *d, const char *s, size_t len, uint64_t h) {
  uint64_t mask = (uint64_t)d->n_slots - 1;
  for (uint64_t at = h & mask;; at = (at + 1) & mask) {
    int32_t id = d->slots[at] - 1;
    if (id < 0) return (int64_t)at;
    size_t have;
    const char *key = key_bytes(d, id, &have);
    if (have == len && memcmp(key, s, len) == 0) return (int64_t)at;
  }
}

/* Doubles the table when it would pass half full (short probe sequences). */
static void reserve_slot(id_dict *d) {
  if (2 * (d->n + 1) <= d->n_slots) return;
  free(d->slots);
  d->n_slots *= 2;
  d->slots = sr_calloc((size_t)d->n_slots, sizeof *d->slots);
  uint64_t mask = (uint64_t)d->n_slots - 1;
  for (int64_t id = 0; id < d->n; id++) {
    uint64_t at = hash_of_id(d, id) & mask;
    while (d->slots[at]) at = (at + 1) & mask;
    d->slots[at] = (int32_t)(id + 1);
  }
}

int32_t id_dict_find_number(const id_dict *d, int64_t key) { return d->slots[number_slot(d, key)] - 1; }

int32_t id_dict_find_string(const id_dict *d, const char *s, size_t len) {
  return d->slots[string_slot(d, s, len, hash_string(s, len))] - 1;
}

int32_t id_dict_add_number(id_dict *d, int64_t key) {
  int64_t slot = number_slot(d, key);
  if (d->slots[slot]) return d->slots[slot] - 1;
  if (d->n == ID_DICT_MAX) return -1;
  sr_grow(&d->numbers, &d->numbers_cap, (size_t)d->n + 1);
  d->numbers[d->n] = key;
  reserve_slot(d);
  d->slots[number_slot(d, key)] = (int32_t)(d->n + 1);
  return (int32_t)d->n++;
}

int32_t id_dict_add_string(id_dict *d, const char *s, size_t len) {
  uint64_t h = hash_string(s, len);
  int64_t slot = string_slot(d, s, len, h);
  if (d->slots[slot]) return d->slots[slot] - 1;
  if (d->n == ID_DICT_MAX) return -1;
  int64_t end = d->offsets[d->n];
  sr_grow(&d->bytes, &d->bytes_cap, (size_t)end + len + 1);
  memcpy(d->bytes + end, s, len);
  sr_grow(&d->offsets, &d->offsets_cap, (size_t)d->n + 2);
  d->offsets[d->n + 1] = end + (int64_t)len;
  reserve_slot(d);
  d->slots[string_slot(d, s, len, h)] = (int32_t)(d->n + 1);
  return (int32_t)d->n++;
}

static int compare_keys(const void *a, const void *b, void *ctx) {
  const id_dict *d = ctx;
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  if (!d->strings) return (d->numbers[x] > d->numbers[y]) - (d->numbers[x] < d->numbers[y]);
  size_t lx, ly;
  const char *sx = key_bytes(d, x, &lx), *sy = key_bytes(d, y, &ly);
  int c = memcmp(sx, sy, lx < ly ? lx : ly);
  return c ? c : (lx > ly) - (lx < ly);
}

void id_dict_sorted(const id_dict *d, int32_t *order) {
  for (int64_t i = 0; i < d->n; i++) order[i] = (int32_t)i;
  qsort_r(order, (size_t)d->n, sizeof *order, compare_keys, (void *)d);
}

void id_dict_export(const id_dict *d, const int32_t *ids, int64_t n, sr_raw_ids *out) {
  memset(out, 0, sizeof *out);
  out->n = n;
  if (!d->strings) {
    out->numbers = sr_malloc((size_t)(n > 0 ? n : 1) * sizeof *out->numbers);
    for (int64_t i = 0; i < n; i++) out->numbers[i] = d->numbers[ids[i]];
    return;
  }
  size_t len, width = 1;
  for (int64_t i = 0; i < n; i++)
    if (key_bytes(d, ids[i], &len), len > width) width = len;
  out->width = (int)width;
  out->strings = sr_calloc((size_t)(n > 0 ? n : 1), width);
  for (int64_t i = 0; i < n; i++) {
    const char *s = key_bytes(d, ids[i], &len);
    memcpy(out->strings + (size_t)i * width, s, len);
  }
}

void id_dict_describe(const id_dict *d, int32_t id, char *buf, size_t cap) {
  if (!d->strings) {
    snprintf(buf, cap, "%lld", (long long)d->numbers[id]);
    return;
  }
  size_t len;
  const char *s = key_bytes(d, id, &len);
  snprintf(buf, cap, "'%.*s'", (int)len, s);
}

void sr_raw_ids_free(sr_raw_ids *ids) {
  free(ids->numbers);
  free(ids->strings);
  memset(ids, 0, sizeof *ids);
}

int sr_raw_ids_write(const sr_h5file *f, const char *obj, const sr_raw_ids *ids) {
  if (ids->numbers) return sr_h5_write_array(f, obj, SR_H5_INT64, ids->numbers, ids->n);
  if (ids->strings) return sr_h5_write_strings(f, obj, ids->strings, ids->n, ids->width);
  return SR_OK;
}

int sr_raw_ids_read(const sr_h5file *f, const char *obj, int64_t expected, sr_raw_ids *out) {
  memset(out, 0, sizeof *out);
  if (!sr_h5_exists(f, obj)) return SR_OK;
  int strings;
  SR_TRY(sr_h5_holds_strings(f, obj, &strings));
  void *numbers = NULL;
  int rc = strings ? sr_h5_read_strings(f, obj, &out->strings, &out->n, &out->width)
                   : sr_h5_read_array(f, obj, SR_H5_INT64, -1, &numbers, &out->n);
  out->numbers = numbers;
  if (rc == SR_OK && out->n != expected)
    rc = SR_FAIL(SR_EFORMAT, "%s: %s: %lld raw ids, expected %lld", f->path, obj, (long long)out->n,
                 (long long)expected);
  return rc;
}

int sr_raw_ids_read_dataset(const char *path, const sr_dataset *d, sr_raw_ids *users, sr_raw_ids *items) {
  sr_h5file f;
  SR_TRY(sr_h5_open(&f, path));
  int rc = sr_raw_ids_read(&f, "/ids/users", d->n_users, users);
  if (rc == SR_OK) rc = sr_raw_ids_read(&f, "/ids/items", d->n_items, items);
  sr_h5_close(&f);
  return rc;
}

void sr_raw_ids_pick(const sr_raw_ids *ids, const int64_t *rows, int64_t n, sr_raw_ids *out) {
  memset(out, 0, sizeof *out);
  if (!ids->numbers && !ids->strings) return;
  const size_t w = (size_t)ids->width, count = n > 0 ? (size_t)n : 1;
  out->n = n;
  out->width = ids->width;
  if (ids->numbers) out->numbers = sr_malloc(count * sizeof *out->numbers);
  if (ids->strings) out->strings = sr_malloc(count * w);
  for (int64_t r = 0; r < n; r++) {
    if (ids->numbers) out->numbers[r] = ids->numbers[rows[r]];
    if (ids->strings) memcpy(out->strings + (size_t)r * w, ids->strings + (size_t)rows[r] * w, w);
  }
}

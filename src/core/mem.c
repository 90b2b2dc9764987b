/* mem.c — allocation that aborts with the caller's file:line on failure. */
#include "shardrec/mem.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "shardrec/error.h"

void *sr_malloc_at(const char *f, int l, size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) sr_die_at(f, l, "out of memory allocating %zu bytes", n);
  return p;
}

void *sr_calloc_at(const char *f, int l, size_t count, size_t size) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p) sr_die_at(f, l, "out of memory allocating %zu x %zu bytes", count, size);
  return p;
}

void *sr_realloc_at(const char *f, int l, void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) sr_die_at(f, l, "out of memory reallocating to %zu bytes", n);
  return q;
}

void *sr_aligned_calloc_at(const char *f, int l, size_t n) {
  size_t rounded = (n + 63) / 64 * 64;
  void *p = aligned_alloc(64, rounded ? rounded : 64);
  if (!p) sr_die_at(f, l, "out of memory allocating %zu aligned bytes", n);
  memset(p, 0, rounded ? rounded : 64);
  return p;
}

void *sr_lazy_calloc_at(const char *f, int l, size_t n) {
  void *p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) sr_die_at(f, l, "out of memory mapping %zu bytes", n);
  return p;
}

void sr_lazy_free(void *p, size_t n) {
  if (p) munmap(p, n ? n : 1);
}

char *sr_strdup_at(const char *f, int l, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = sr_malloc_at(f, l, n);
  memcpy(p, s, n);
  return p;
}

void sr_grow_at(const char *f, int l, void **buf, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return;
  size_t c = *cap ? *cap : 16;
  while (c < need) c *= 2;
  *buf = sr_realloc_at(f, l, *buf, c * elem);
  *cap = c;
}

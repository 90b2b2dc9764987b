/*
 * mem.h — checked allocation. Out-of-memory aborts with the caller's file:line
 * (via sr_die_at), so allocation sites need no error paths.
 */
#ifndef SHARDREC_MEM_H
#define SHARDREC_MEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

void *sr_malloc_at(const char *f, int l, size_t n);
void *sr_calloc_at(const char *f, int l, size_t count, size_t size);
void *sr_realloc_at(const char *f, int l, void *p, size_t n);
/* 64-byte aligned (cache line / AVX-512), zero-filled; release with free(). */
void *sr_aligned_calloc_at(const char *f, int l, size_t n);
char *sr_strdup_at(const char *f, int l, const char *s);
/* Page-aligned and zero-filled like sr_aligned_calloc, but the pages cost
 * memory only once written (anonymous mmap): the parameter arenas, so that
 * a model too large for the node is refused by the memory check
 * (memory_plan.h) before its untouched arenas fill the memory. Release
 * with sr_lazy_free(p, n), n as allocated. */
void *sr_lazy_calloc_at(const char *f, int l, size_t n);
void sr_lazy_free(void *p, size_t n);

#define sr_malloc(n) sr_malloc_at(__FILE__, __LINE__, (n))
#define sr_calloc(c, s) sr_calloc_at(__FILE__, __LINE__, (c), (s))
#define sr_realloc(p, n) sr_realloc_at(__FILE__, __LINE__, (p), (n))
#define sr_aligned_calloc(n) sr_aligned_calloc_at(__FILE__, __LINE__, (n))
#define sr_strdup(s) sr_strdup_at(__FILE__, __LINE__, (s))
#define sr_lazy_calloc(n) sr_lazy_calloc_at(__FILE__, __LINE__, (n))

/* Grows *buf (element size `elem`) so it holds at least `need` elements. */
void sr_grow_at(const char *f, int l, void **buf, size_t *cap, size_t need, size_t elem);
#define sr_grow(buf, cap, need) sr_grow_at(__FILE__, __LINE__, (void **)(buf), (cap), (need), sizeof(**(buf)))

#ifdef __cplusplus
}
#endif
#endif

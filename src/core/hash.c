/* hash.c — FNV-1a, 64 bits (hash.h). */
#include "shardrec/hash.h"

uint64_t sr_hash64(const void *data, size_t bytes, uint64_t h) {
  const unsigned char *p = data;
  for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

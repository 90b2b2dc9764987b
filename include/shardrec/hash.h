/*
 * hash.h — a 64-bit hash of bytes (FNV-1a): enough to tell whether replicas
 * diverged or a dataset changed, not a defence against a deliberate collision.
 */
#ifndef SHARDREC_HASH_H
#define SHARDREC_HASH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SR_HASH64_INIT 1469598103934665603ull

/* The hash of data[0..bytes) continuing from h (SR_HASH64_INIT to start):
 * hashing A then B from the result of A is the hash of A followed by B. */
uint64_t sr_hash64(const void *data, size_t bytes, uint64_t h);

#ifdef __cplusplus
}
#endif
#endif

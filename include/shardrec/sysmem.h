/*
 * sysmem.h — how much memory this machine (node) can still give: what the
 * trainer checks its per-rank needs against before the first step.
 */
#ifndef SHARDREC_SYSMEM_H
#define SHARDREC_SYSMEM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The environment variable that replaces the measurement (bytes, or with a
 * k/M/G/T suffix: powers of 1024): to test the refusal, or to reserve
 * memory for something else on the node. */
#define SR_SYSMEM_ENV "SHARDREC_MEM_AVAILABLE"

/* Bytes available to new allocations on this node: the smaller of
 * /proc/meminfo's MemAvailable and what the cgroup's memory limit leaves
 * (v2 memory.max - memory.current, or v1 limit - usage), or the value of
 * SR_SYSMEM_ENV when set. -1 when none can be read; SR_EINVAL when
 * SR_SYSMEM_ENV is set but not a size. *source names where it came from. */
int sr_sysmem_available(int64_t *bytes, const char **source);

#ifdef __cplusplus
}
#endif
#endif

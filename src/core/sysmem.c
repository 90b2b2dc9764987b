/* sysmem.c — memory available on this node (sysmem.h). */
#include "shardrec/sysmem.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"

/* "<digits>[kMGT]" (powers of 1024), nothing else. */
static int parse_size(const char *s, int64_t *bytes) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || errno || !isdigit((unsigned char)s[0])) return 0;
  int shift = 0;
  if (*end) {
    const char *units = "kMGT", *u = strchr(units, *end);
    if (!u || end[1] != '\0') return 0;
    shift = 10 * (int)(u - units + 1);
  }
  if (v > (unsigned long long)INT64_MAX >> shift) return 0;
  *bytes = (int64_t)(v << shift);
  return 1;
}

/* The first number of a file ("max" or a missing file: -1). */
static int64_t read_number(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long long v = -1;
  if (fscanf(f, "%lld", &v) != 1) v = -1;
  fclose(f);
  return v;
}

static int64_t meminfo_available(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f) return -1;
  char line[256];
  long long kib = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %lld kB", &kib) == 1) break;
  fclose(f);
  return kib < 0 ? -1 : (int64_t)kib * 1024;
}

/* What the cgroup limit leaves, -1 without a limit. v1 reports "no limit"
 * as a huge number, which the comparison with MemAvailable absorbs. */
static int64_t cgroup_available(void) {
  int64_t limit = read_number("/sys/fs/cgroup/memory.max"), used = read_number("/sys/fs/cgroup/memory.current");
  if (limit < 0) {
    limit = read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    used = read_number("/sys/fs/cgroup/memory/memory.usage_in_bytes");
  }
  if (limit < 0 || used < 0) return -1;
  return limit > used ? limit - used : 0;
}

int sr_sysmem_available(int64_t *bytes, const char **source) {
  const char *override = getenv(SR_SYSMEM_ENV);
  if (override) {
    *source = SR_SYSMEM_ENV;
    if (!parse_size(override, bytes))
      return SR_FAIL(SR_EINVAL, "%s=%s: expected a size in bytes, optionally with a k, M, G or T suffix",
                     SR_SYSMEM_ENV, override);
    return SR_OK;
  }
  int64_t meminfo = meminfo_available(), cgroup = cgroup_available();
  *source = cgroup >= 0 && (meminfo < 0 || cgroup < meminfo) ? "the cgroup memory limit" : "MemAvailable";
  *bytes = cgroup >= 0 && (meminfo < 0 || cgroup < meminfo) ? cgroup : meminfo;
  return SR_OK;
}

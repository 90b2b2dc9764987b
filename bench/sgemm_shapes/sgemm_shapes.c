/*
 * sgemm_shapes.c — where a process's dense products go, shape by shape.
 *
 * perf cannot follow the call chain through OpenBLAS (built without frame
 * pointers), so it says how long sgemm ran but not which products. Loaded
 * with LD_PRELOAD, this module wraps cblas_sgemm, times every call, and at
 * exit prints to stderr, per (transposes, M, N, K): calls, total time and
 * GFLOP/s, largest total first (shapes under 0.5 % of the total are left
 * out), then the total:
 *
 *   LD_PRELOAD=build/bench/libsgemm_shapes.so OMP_NUM_THREADS=1 \
 *       build/bench/bench_two_tower --batch 1024 --steps 100
 *
 * The wrapper adds two clock reads per call; single-threaded callers only
 * (the table is not locked).
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void sgemm_fn(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE, const enum CBLAS_TRANSPOSE, const blasint,
                      const blasint, const blasint, const float, const float *, const blasint, const float *,
                      const blasint, const float, float *, const blasint);

#define MAX_SHAPES 512

typedef struct {
  int trans_a, trans_b;
  blasint m, n, k;
  long calls;
  double seconds;
} shape_time;

static shape_time shapes[MAX_SHAPES];
static int n_shapes, overflowed;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void record(int trans_a, int trans_b, blasint m, blasint n, blasint k, double seconds) {
  int i = 0;
  while (i < n_shapes && !(shapes[i].trans_a == trans_a && shapes[i].trans_b == trans_b && shapes[i].m == m &&
                           shapes[i].n == n && shapes[i].k == k))
    i++;
  if (i == n_shapes) {
    if (n_shapes == MAX_SHAPES) {
      overflowed = 1;
      return;
    }
    shapes[n_shapes++] = (shape_time){trans_a, trans_b, m, n, k, 0, 0.0};
  }
  shapes[i].calls++;
  shapes[i].seconds += seconds;
}

void cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE trans_a, const enum CBLAS_TRANSPOSE trans_b,
                 const blasint m, const blasint n, const blasint k, const float alpha, const float *a,
                 const blasint lda, const float *b, const blasint ldb, const float beta, float *c,
                 const blasint ldc) {
  static sgemm_fn *real;
  if (!real) {
    *(void **)&real = dlsym(RTLD_NEXT, "cblas_sgemm");
    if (!real) {
      fprintf(stderr, "sgemm_shapes: no cblas_sgemm after this module: %s\n", dlerror());
      abort();
    }
  }
  const double t0 = now();
  real(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  /* Row-major (m, n) = op(A) op(B) is column-major (n, m) = op(B)^T op(A)^T:
   * report every call as the row-major product it computes. */
  if (order == CblasColMajor)
    record(trans_b == CblasTrans, trans_a == CblasTrans, n, m, k, now() - t0);
  else
    record(trans_a == CblasTrans, trans_b == CblasTrans, m, n, k, now() - t0);
}

static int by_time_descending(const void *x, const void *y) {
  const double a = ((const shape_time *)x)->seconds, b = ((const shape_time *)y)->seconds;
  return (a < b) - (a > b);
}

__attribute__((destructor)) static void print_shapes(void) {
  if (n_shapes == 0) return;
  qsort(shapes, (size_t)n_shapes, sizeof *shapes, by_time_descending);
  double total = 0.0;
  for (int i = 0; i < n_shapes; i++) total += shapes[i].seconds;
  fprintf(stderr, "sgemm_shapes: op  M  N  K  calls  total ms  GFLOP/s\n");
  for (int i = 0; i < n_shapes && shapes[i].seconds >= 0.005 * total; i++) {
    const shape_time *s = &shapes[i];
    const double flops = 2.0 * (double)s->m * (double)s->n * (double)s->k * (double)s->calls;
    fprintf(stderr, "sgemm_shapes: %c%c %d %d %d %ld %.1f %.1f\n", s->trans_a ? 'T' : 'N', s->trans_b ? 'T' : 'N',
            (int)s->m, (int)s->n, (int)s->k, s->calls, 1e3 * s->seconds, flops / s->seconds / 1e9);
  }
  fprintf(stderr, "sgemm_shapes: total %.1f ms in %d shapes%s\n", 1e3 * total, n_shapes,
          overflowed ? " (more shapes than the table holds: some calls not counted)" : "");
}

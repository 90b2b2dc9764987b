/*
 * cu_internal.h — what the files of src/cuda share (not installed): checked
 * CUDA calls, the per-model device arena, pinned host buffers, and the
 * execution context (stream + cuBLAS/cuSPARSE handles) that kernels run on.
 */
#ifndef SHARDREC_CU_INTERNAL_H
#define SHARDREC_CU_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusparse.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- checked calls ----------------------------------------------------------------
 * A failing CUDA, cuBLAS or cuSPARSE call is a broken invariant or a dead
 * device: the process dies with "CUDA error: <call>: <reason> (file:line,
 * rank r)" and the job ends (the distributed runtime's die hook). Allocations
 * that the user can fix by asking for less go through cu_arena_alloc instead. */
void cu_check_cuda(cudaError_t rc, const char *call, const char *file, int line);
void cu_check_cublas(cublasStatus_t rc, const char *call, const char *file, int line);
void cu_check_cusparse(cusparseStatus_t rc, const char *call, const char *file, int line);
#define CUDA_CHECK(call) cu_check_cuda((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) cu_check_cublas((call), #call, __FILE__, __LINE__)
#define CUSPARSE_CHECK(call) cu_check_cusparse((call), #call, __FILE__, __LINE__)
/* A kernel launch: checks the launch itself (bad configuration); faults inside
 * the kernel surface at the next synchronising call. */
#define CUDA_CHECK_LAUNCH() cu_check_cuda(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

/* ---- the per-model arena ------------------------------------------------------------
 * Every device buffer of a model (parameters, gradients, Adam moments,
 * activations) is one cudaMalloc: no allocation happens per step. Buffers are
 * carved in two passes of the same layout function: a measuring pass
 * (base == NULL) that only adds up sizes, cu_arena_alloc, then the real pass
 * (cu_take, below, in C++). */
typedef struct {
  char *base; /* NULL while measuring */
  size_t size, used;
} cu_arena;

/* Reserves n elements of elem_size bytes, 256-byte aligned; returns the device
 * pointer (NULL while measuring). */
void *cu_arena_take(cu_arena *a, size_t n, size_t elem_size);
/* Allocates the measured size. Out of device memory fails (SR_ENOMEM) with
 * the size needed, the free and total memory, and `advice` (what to lower). */
int cu_arena_alloc(cu_arena *a, const char *what, const char *advice);
void cu_arena_free(cu_arena *a);

/* A device or pinned host buffer that grows (rarely: batches larger than any
 * before) for per-batch data whose size the model cannot know in advance
 * (the nonzeros of a batch). */
typedef struct {
  void *ptr;
  size_t bytes;
  int pinned_host; /* 1: cudaMallocHost, 0: device */
} cu_buffer;
void *cu_buffer_reserve(cu_buffer *b, size_t bytes);
void cu_buffer_free(cu_buffer *b);

/* ---- execution context -------------------------------------------------------------- */
typedef struct {
  cudaStream_t stream; /* compute: every kernel and library call of a model */
  cublasHandle_t blas;
  cusparseHandle_t sparse;
  int precision;         /* sr_precision (device.h): the compute type of every GEMM */
  cu_buffer sparse_work; /* cuSPARSE SpMM workspace */
  /* Per-block partial sums of reductions that return a host value. */
  double *partials, *partials_host; /* [CU_REDUCE_BLOCKS] device, pinned host */
} cu_ctx;
#define CU_REDUCE_BLOCKS 256

void cu_ctx_init(cu_ctx *c, int precision);
void cu_ctx_free(cu_ctx *c);

/* "rank r" of the calling process for messages (-1 before MPI_Init). */
int cu_rank(void);

#ifdef __cplusplus
}

/* Sets ptr to n elements taken from the arena (cu_arena_take). */
template <typename T>
static inline void cu_take(cu_arena *a, T *&ptr, int64_t n) {
  ptr = static_cast<T *>(cu_arena_take(a, (size_t)n, sizeof(T)));
}
#endif
#endif

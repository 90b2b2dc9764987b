/* device.cu — device selection, checked calls, arenas and contexts
 * (device.h, cu_internal.h). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_model.h"
#include "shardrec/device.h"
#include "shardrec/error.h"
#include "shardrec/log.h"

/* ---- checked calls ------------------------------------------------------------------ */

int cu_rank(void) {
  int initialized = 0, finalized = 0, rank = -1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

void cu_check_cuda(cudaError_t rc, const char *call, const char *file, int line) {
  if (rc == cudaSuccess) return;
  sr_die_at(file, line, "CUDA error: %s: %s (%s) on rank %d", call, cudaGetErrorString(rc), cudaGetErrorName(rc),
            cu_rank());
}

void cu_check_cublas(cublasStatus_t rc, const char *call, const char *file, int line) {
  if (rc == CUBLAS_STATUS_SUCCESS) return;
  sr_die_at(file, line, "cuBLAS error: %s: %s on rank %d", call, cublasGetStatusString(rc), cu_rank());
}

void cu_check_cusparse(cusparseStatus_t rc, const char *call, const char *file, int line) {
  if (rc == CUSPARSE_STATUS_SUCCESS) return;
  sr_die_at(file, line, "cuSPARSE error: %s: %s on rank %d", call, cusparseGetErrorString(rc), cu_rank());
}

/* ---- availability and selection ---------------------------------------------------- */

int sr_device_available(char *why, size_t why_size) {
  int count = 0;
  cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc == cudaSuccess && count > 0) return 1;
  if (why) {
    const char *visible = getenv("CUDA_VISIBLE_DEVICES");
    if (rc != cudaSuccess)
      snprintf(why, why_size, "no usable CUDA device: %s (%s)", cudaGetErrorString(rc), cudaGetErrorName(rc));
    else
      snprintf(why, why_size, "no CUDA device is visible%s%s%s", visible ? " (CUDA_VISIBLE_DEVICES=" : "",
               visible ? visible : "", visible ? ")" : "");
  }
  cudaGetLastError(); /* a failed query stays the "last error": clear it for later checks */
  return 0;
}

int sr_device_resolve(int requested, int *use_cuda) {
  *use_cuda = 0;
  if (requested == SR_DEVICE_CPU) return SR_OK;
  char why[256];
  if (sr_device_available(why, sizeof why)) {
    *use_cuda = 1;
    return SR_OK;
  }
  if (requested == SR_DEVICE_AUTO) return SR_OK;
  return SR_FAIL(SR_EINVAL, "run.device: cuda, but %s; train on the CPU with run.device: cpu (or auto)", why);
}

/* The rank's index among the ranks of its node. */
static int local_rank(const sr_dist *dist, int *out) {
  const char *vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i]);
    if (v && *v) {
      *out = atoi(v);
      return SR_OK;
    }
  }
  if (dist->size == 1) { /* alone (perhaps without MPI_Init: sr_dist_self) */
    *out = 0;
    return SR_OK;
  }
  MPI_Comm node;
  if (MPI_Comm_split_type(dist->comm, MPI_COMM_TYPE_SHARED, dist->rank, MPI_INFO_NULL, &node) != MPI_SUCCESS)
    return SR_FAIL(SR_EDIST, "cannot find the node-local rank (MPI_Comm_split_type failed)");
  MPI_Comm_rank(node, out);
  MPI_Comm_free(&node);
  return SR_OK;
}

int sr_device_bind(const sr_dist *dist) {
  char why[256];
  if (!sr_device_available(why, sizeof why)) return SR_FAIL(SR_EINVAL, "rank %d: %s", dist->rank, why);
  int count = 0, local = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  SR_TRY(local_rank(dist, &local));
  const int ordinal = local % count;
  CUDA_CHECK(cudaSetDevice(ordinal));
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, ordinal));
  const char *visible = getenv("CUDA_VISIBLE_DEVICES");
  sr_debug("rank %d (local %d) on CUDA device %d of %d: %s, %.1f GiB (CUDA_VISIBLE_DEVICES=%s)", dist->rank, local,
           ordinal, count, prop.name, (double)prop.totalGlobalMem / (1 << 30), visible ? visible : "unset");
  return SR_OK;
}

/* ---- arenas and buffers -------------------------------------------------------------- */

void *cu_arena_take(cu_arena *a, size_t n, size_t elem_size) {
  const size_t begin = (a->used + 255) / 256 * 256;
  a->used = begin + n * elem_size;
  if (!a->base) return NULL;
  SR_ASSERT(a->used <= a->size);
  return a->base + begin;
}

int cu_arena_alloc(cu_arena *a, const char *what, const char *advice) {
  a->size = a->used > 0 ? a->used : 1;
  a->used = 0;
  void *p = NULL;
  cudaError_t rc = cudaMalloc(&p, a->size);
  if (rc == cudaSuccess) {
    a->base = (char *)p;
    return SR_OK;
  }
  cudaGetLastError();
  size_t free_bytes = 0, total = 0;
  cudaMemGetInfo(&free_bytes, &total);
  const double mib = 1024.0 * 1024.0;
  return SR_FAIL(SR_ENOMEM, "out of device memory on rank %d: %s needs %.0f MiB, %.0f MiB of %.0f MiB are free; %s",
                 cu_rank(), what, (double)a->size / mib, (double)free_bytes / mib, (double)total / mib, advice);
}

void cu_arena_free(cu_arena *a) {
  if (a->base) CUDA_CHECK(cudaFree(a->base));
  memset(a, 0, sizeof *a);
}

void *cu_buffer_reserve(cu_buffer *b, size_t bytes) {
  if (bytes <= b->bytes && b->ptr) return b->ptr;
  size_t want = b->bytes * 2 > bytes ? b->bytes * 2 : bytes; /* geometric: a handful of growths per run */
  if (want == 0) want = 256;
  if (b->ptr) CUDA_CHECK(b->pinned_host ? cudaFreeHost(b->ptr) : cudaFree(b->ptr));
  b->ptr = NULL;
  CUDA_CHECK(b->pinned_host ? cudaMallocHost(&b->ptr, want) : cudaMalloc(&b->ptr, want));
  b->bytes = want;
  return b->ptr;
}

void cu_buffer_free(cu_buffer *b) {
  if (b->ptr) CUDA_CHECK(b->pinned_host ? cudaFreeHost(b->ptr) : cudaFree(b->ptr));
  b->ptr = NULL;
  b->bytes = 0;
}

/* ---- contexts ---------------------------------------------------------------------------- */

void cu_ctx_init(cu_ctx *c, int precision) {
  memset(c, 0, sizeof *c);
  c->precision = precision;
  CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
  CUBLAS_CHECK(cublasCreate(&c->blas));
  CUBLAS_CHECK(cublasSetStream(c->blas, c->stream));
  CUSPARSE_CHECK(cusparseCreate(&c->sparse));
  CUSPARSE_CHECK(cusparseSetStream(c->sparse, c->stream));
  CUDA_CHECK(cudaMalloc(&c->partials, CU_REDUCE_BLOCKS * sizeof *c->partials));
  CUDA_CHECK(cudaMallocHost(&c->partials_host, CU_REDUCE_BLOCKS * sizeof *c->partials_host));
}

void cu_ctx_free(cu_ctx *c) {
  if (!c->stream) return;
  CUDA_CHECK(cudaStreamSynchronize(c->stream));
  cu_buffer_free(&c->sparse_work);
  CUDA_CHECK(cudaFree(c->partials));
  CUDA_CHECK(cudaFreeHost(c->partials_host));
  CUSPARSE_CHECK(cusparseDestroy(c->sparse));
  CUBLAS_CHECK(cublasDestroy(c->blas));
  CUDA_CHECK(cudaStreamDestroy(c->stream));
  memset(c, 0, sizeof *c);
}

/* ---- models ----------------------------------------------------------------------------- */

int sr_device_model_create(const sr_config *cfg, const sr_dataset *data, const sr_dist *dist, sr_model **out) {
  switch ((sr_model_type)cfg->model.type) {
    case SR_MODEL_MULTVAE:
    case SR_MODEL_MULTDAE:
      return cu_vae_create(cfg, data->n_items, dist, out);
    case SR_MODEL_TWOTOWER:
    case SR_MODEL_EASE:
      break;
  }
  return SR_FAIL(SR_EINVAL, "model.type: %s has no GPU implementation yet; use run.device: cpu",
                 sr_model_type_names[cfg->model.type]);
}

/*
 * trainer.cu — the trainer's device side (device.h): gradient collectives on
 * device buffers, the fused device Adam, and host <-> device parameter copies.
 *
 * Two backends, one bucket layout (the host reducer's: buckets, and with
 * dist.shard_optimizer each rank's owned slice of each):
 *  - nccl: collectives run on the device arenas on a communication stream.
 *    A bucket starts (dist.overlap) as soon as backward has enqueued its last
 *    gradient: an event recorded on the compute stream orders it after them.
 *    Replicated optimizer: ncclAllReduce per bucket. Sharded: grouped
 *    ncclReduce of each slice to its owner, Adam on the owned slices, grouped
 *    ncclBroadcast of each slice from its owner — the bytes of a
 *    reduce-scatter + all-gather, on the host reducer's uneven slices.
 *  - mpi: the host reducer's algorithms unchanged, on pinned host copies of
 *    the arenas (gradients down, reduced, back up; with sharding the updated
 *    parameters likewise). No NCCL needed, and several ranks may share a GPU.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef SHARDREC_HAVE_NCCL
#include <nccl.h>
#endif

#include "cu_model.h"
#include "cu_nn.h"
#include "shardrec/device.h"
#include "shardrec/error.h"
#include "shardrec/mem.h"

struct sr_device_trainer {
  const sr_dist *dist;
  cu_model *model;
  const sr_grad_reducer *layout; /* the trainer's host reducer: buckets and owned slices */
  int use_nccl;
  int overlap;
  /* mpi: a reducer like `layout` whose arenas are pinned host buffers */
  sr_params staged_params;
  sr_grad_reducer staged;
  float *pinned[4]; /* values, grads, adam_m, adam_v of staged_params */
#ifdef SHARDREC_HAVE_NCCL
  ncclComm_t comm;
#endif
  cudaStream_t comm_stream;
  cudaEvent_t order; /* recorded on one stream, waited for on the other */
  int *n_ready;      /* [n_buckets] parameters of the bucket finished in this step */
  int next_launch;   /* buckets [0, next_launch) are launched in this step */
  unsigned long long *non_finite, *non_finite_host;
};

/* `to` runs what is enqueued next only after what `from` has enqueued so far. */
static void stream_after(sr_device_trainer *t, cudaStream_t to, cudaStream_t from) {
  CUDA_CHECK(cudaEventRecord(t->order, from));
  CUDA_CHECK(cudaStreamWaitEvent(to, t->order, 0));
}

/* ---- NCCL ---------------------------------------------------------------------------------- */

#ifdef SHARDREC_HAVE_NCCL
static int nccl_fail(ncclResult_t rc, const char *what) {
  return SR_FAIL(SR_EDIST, "%s failed: %s%s", what, ncclGetErrorString(rc),
                 rc == ncclInvalidUsage ? " (NCCL refuses two ranks on one GPU: use dist.backend: mpi)" : "");
}
#define NCCL_TRY(call, what)                                       \
  do {                                                             \
    ncclResult_t nccl_rc_ = (call);                                \
    if (nccl_rc_ != ncclSuccess) return nccl_fail(nccl_rc_, what); \
  } while (0)

/* The communicator, from an id that rank 0 draws and MPI broadcasts. */
static int nccl_init(sr_device_trainer *t) {
  /* Rank 0's id and whether drawing it worked travel together, so that a
   * failure there ends every rank instead of leaving them in the broadcast. */
  struct {
    ncclUniqueId id;
    int drawn;
  } msg;
  memset(&msg, 0, sizeof msg);
  ncclResult_t drawn = ncclSuccess;
  if (t->dist->rank == 0) drawn = ncclGetUniqueId(&msg.id);
  msg.drawn = drawn == ncclSuccess;
  /* A single process may run without MPI_Init (sr_dist_self). */
  if (t->dist->size > 1 && MPI_Bcast(&msg, (int)sizeof msg, MPI_BYTE, 0, t->dist->comm) != MPI_SUCCESS)
    return SR_FAIL(SR_EDIST, "broadcasting the NCCL id failed");
  if (drawn != ncclSuccess) return nccl_fail(drawn, "ncclGetUniqueId");
  if (!msg.drawn) return SR_FAIL(SR_EDIST, "rank 0 could not create the NCCL id (see its message)");
  ncclUniqueId id = msg.id;
  NCCL_TRY(ncclCommInitRank(&t->comm, t->dist->size, id, t->dist->rank), "ncclCommInitRank");
  return SR_OK;
}

/* Each slice of bucket k of `arena`: summed into its owner (reduce) or sent
 * from its owner to every rank (broadcast=1); or the whole bucket all-reduced
 * when the optimizer is replicated. Enqueued on the communication stream. */
static int nccl_bucket(sr_device_trainer *t, float *arena, int k, int broadcast) {
  const sr_grad_bucket *b = &t->layout->buckets[k];
  const int P = t->dist->size;
  if (!t->layout->shard_optimizer) {
    NCCL_TRY(ncclAllReduce(arena + b->begin, arena + b->begin, (size_t)(b->end - b->begin), ncclFloat, ncclSum,
                           t->comm, t->comm_stream),
             "ncclAllReduce of a gradient bucket");
    return SR_OK;
  }
  NCCL_TRY(ncclGroupStart(), "ncclGroupStart");
  for (int part = 0; part < P; part++) {
    const sr_arena_range s = sr_grad_bucket_slice(b, part, P);
    const size_t n = (size_t)(s.end - s.begin);
    const int owner = sr_grad_slice_owner(part, P);
    if (n == 0) continue;
    ncclResult_t rc =
        broadcast
            ? ncclBroadcast(arena + s.begin, arena + s.begin, n, ncclFloat, owner, t->comm, t->comm_stream)
            : ncclReduce(arena + s.begin, arena + s.begin, n, ncclFloat, ncclSum, owner, t->comm, t->comm_stream);
    if (rc != ncclSuccess) {
      ncclGroupEnd();
      return nccl_fail(rc, broadcast ? "ncclBroadcast of a parameter slice" : "ncclReduce of a gradient slice");
    }
  }
  NCCL_TRY(ncclGroupEnd(), "ncclGroupEnd");
  return SR_OK;
}
#endif

/* Starts bucket k's gradient reduction after the gradients enqueued so far. */
static void launch_bucket(sr_device_trainer *t, int k) {
#ifdef SHARDREC_HAVE_NCCL
  stream_after(t, t->comm_stream, t->model->ctx.stream);
  if (nccl_bucket(t, t->model->grads, k, 0) != SR_OK) SR_DIE("%s", sr_error_message());
#else
  (void)t, (void)k;
  SR_DIE("NCCL bucket launched in a build without NCCL");
#endif
}

/* ---- the step ------------------------------------------------------------------------------ */

void sr_device_trainer_begin(sr_device_trainer *t) {
  for (int k = 0; k < t->layout->n_buckets; k++) t->n_ready[k] = 0;
  t->next_launch = 0;
}

void sr_device_trainer_ready_cb(void *trainer, int index) {
  sr_device_trainer *t = (sr_device_trainer *)trainer;
  if (!t->use_nccl || !t->overlap || index >= t->model->base.params.n_dense) return;
  const sr_grad_reducer *l = t->layout;
  t->n_ready[l->bucket_of[index]]++;
  /* Every rank launches buckets in index order, whatever order they finish in. */
  while (t->next_launch < l->n_buckets && t->n_ready[t->next_launch] == l->buckets[t->next_launch].n_params)
    launch_bucket(t, t->next_launch++);
}

/* Host copy <-> device copy of the elements [0, n) of one arena. */
static void copy_arena(sr_device_trainer *t, float *dst, const float *src, int64_t n, cudaMemcpyKind kind) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, (size_t)n * sizeof(float), kind, t->model->ctx.stream));
}

int sr_device_trainer_reduce(sr_device_trainer *t) {
  cudaStream_t compute = t->model->ctx.stream;
  if (t->use_nccl) {
    while (t->next_launch < t->layout->n_buckets) launch_bucket(t, t->next_launch++);
    stream_after(t, compute, t->comm_stream);
    return SR_OK;
  }
  if (t->dist->size == 1) return SR_OK;
  const int64_t n = t->model->base.params.dense_total;
  copy_arena(t, t->staged_params.grads, t->model->grads, n, cudaMemcpyDeviceToHost);
  CUDA_CHECK(cudaStreamSynchronize(compute));
  sr_grad_reducer_begin(&t->staged);
  SR_TRY(sr_grad_reducer_finish(&t->staged));
  copy_arena(t, t->model->grads, t->staged_params.grads, n, cudaMemcpyHostToDevice);
  return SR_OK;
}

/* Adam over the parts of the dense parameters inside the owned ranges:
 * sr_optim_step_ranges, on the device. */
static void adam_owned(sr_device_trainer *t, sr_optim *o) {
  o->step++;
  const sr_params *ps = &t->model->base.params;
  cu_adam_args a;
  a.lr = o->lr, a.beta1 = o->beta1, a.beta2 = o->beta2, a.eps = o->eps;
  a.bias_correction1 = (float)(1.0 - pow((double)o->beta1, (double)o->step));
  a.bias_correction2 = (float)(1.0 - pow((double)o->beta2, (double)o->step));
  const sr_grad_reducer *l = t->layout;
  for (int r = 0; r < l->n_buckets; r++) {
    for (int i = 0; i < ps->n_dense; i++) {
      const sr_param *p = &ps->items[i];
      int64_t lo = l->owned[r].begin - p->offset, hi = l->owned[r].end - p->offset;
      if (lo < 0) lo = 0;
      if (hi > p->numel) hi = p->numel;
      if (lo >= hi) continue;
      const float wd = p->kind == SR_PARAM_BIAS ? 0.0f : o->weight_decay;
      a.coupled_wd = o->kind == SR_OPTIM_ADAM ? wd : 0.0f;
      a.decay = o->kind == SR_OPTIM_ADAMW ? 1.0f - o->lr * wd : 1.0f;
      const int64_t at = p->offset + lo;
      cu_adam(&t->model->ctx, t->model->values + at, t->model->adam_m + at, t->model->adam_v + at,
              t->model->grads + at, hi - lo, a, t->non_finite);
    }
  }
}

/* Sharded optimizer: every rank gets the updated parameters of every slice. */
static int gather_values(sr_device_trainer *t) {
  if (!t->layout->shard_optimizer) return SR_OK;
  cudaStream_t compute = t->model->ctx.stream;
#ifdef SHARDREC_HAVE_NCCL
  if (t->use_nccl) {
    stream_after(t, t->comm_stream, compute);
    for (int k = 0; k < t->layout->n_buckets; k++) SR_TRY(nccl_bucket(t, t->model->values, k, 1));
    stream_after(t, compute, t->comm_stream);
    return SR_OK;
  }
#endif
  if (t->dist->size == 1) return SR_OK;
  const int64_t n = t->model->base.params.dense_total;
  copy_arena(t, t->staged_params.values, t->model->values, n, cudaMemcpyDeviceToHost);
  CUDA_CHECK(cudaStreamSynchronize(compute));
  SR_TRY(sr_grad_reducer_gather_values(&t->staged));
  copy_arena(t, t->model->values, t->staged_params.values, n, cudaMemcpyHostToDevice);
  return SR_OK;
}

int sr_device_trainer_update(sr_device_trainer *t, sr_optim *o, int64_t *n_bad) {
  cudaStream_t compute = t->model->ctx.stream;
  CUDA_CHECK(cudaMemsetAsync(t->non_finite, 0, sizeof *t->non_finite, compute));
  adam_owned(t, o);
  CUDA_CHECK(
      cudaMemcpyAsync(t->non_finite_host, t->non_finite, sizeof *t->non_finite, cudaMemcpyDeviceToHost, compute));
  CUDA_CHECK(cudaStreamSynchronize(compute));
  *n_bad = (int64_t)*t->non_finite_host;
  if (t->layout->shard_optimizer) SR_TRY(sr_dist_sum_i64(t->dist, n_bad, 1));
  SR_TRY(gather_values(t));
  /* Adam consumed the owned gradients; the rest hold partial sums (sharded)
   * or the parameter penalty: clear them all for the next backward pass. */
  const sr_params *ps = &t->model->base.params;
  CUDA_CHECK(cudaMemsetAsync(t->model->grads, 0, (size_t)ps->dense_total * sizeof(float), compute));
  return SR_OK;
}

/* ---- host copies ------------------------------------------------------------------------------- */

int sr_device_trainer_download(sr_device_trainer *t, int with_optimizer_state) {
  sr_params *ps = &t->model->base.params;
  copy_arena(t, ps->values, t->model->values, ps->total, cudaMemcpyDeviceToHost);
  if (with_optimizer_state) {
    copy_arena(t, ps->adam_m, t->model->adam_m, ps->total, cudaMemcpyDeviceToHost);
    copy_arena(t, ps->adam_v, t->model->adam_v, ps->total, cudaMemcpyDeviceToHost);
  }
  CUDA_CHECK(cudaStreamSynchronize(t->model->ctx.stream));
  return SR_OK;
}

int sr_device_trainer_upload(sr_device_trainer *t) {
  const sr_params *ps = &t->model->base.params;
  copy_arena(t, t->model->values, ps->values, ps->total, cudaMemcpyHostToDevice);
  copy_arena(t, t->model->adam_m, ps->adam_m, ps->total, cudaMemcpyHostToDevice);
  copy_arena(t, t->model->adam_v, ps->adam_v, ps->total, cudaMemcpyHostToDevice);
  CUDA_CHECK(cudaStreamSynchronize(t->model->ctx.stream));
  return SR_OK;
}

/* ---- set-up ------------------------------------------------------------------------------------ */

static int pick_backend(int requested, int *use_nccl) {
#ifdef SHARDREC_HAVE_NCCL
  *use_nccl = requested != SR_BACKEND_MPI;
  return SR_OK;
#else
  *use_nccl = 0;
  if (requested != SR_BACKEND_NCCL) return SR_OK;
  return SR_FAIL(SR_EINVAL, "dist.backend: nccl, but this shardrec was built without NCCL; use dist.backend: mpi");
#endif
}

/* Pinned host arenas shaped like the registry's, for the MPI backend. */
static void stage_on_host(sr_device_trainer *t, const sr_config *cfg) {
  const sr_params *ps = &t->model->base.params;
  t->staged_params = *ps; /* same tensors and offsets; the arenas below replace the views' targets */
  const int64_t sizes[4] = {ps->total, ps->dense_total, ps->total, ps->total};
  for (int i = 0; i < 4; i++) {
    CUDA_CHECK(cudaMallocHost((void **)&t->pinned[i], (size_t)(sizes[i] > 0 ? sizes[i] : 1) * sizeof(float)));
    memset(t->pinned[i], 0, (size_t)sizes[i] * sizeof(float));
  }
  t->staged_params.values = t->pinned[0];
  t->staged_params.grads = t->pinned[1];
  t->staged_params.adam_m = t->pinned[2];
  t->staged_params.adam_v = t->pinned[3];
  sr_grad_reducer_init(&t->staged, t->dist, &t->staged_params, (int64_t)(cfg->dist.bucket_mb * 1024 * 1024),
                       0 /* blocking: the gradients arrive whole */, cfg->dist.shard_optimizer);
}

int sr_device_trainer_create(sr_device_trainer **out, const sr_config *cfg, const sr_dist *dist, sr_model *m,
                             sr_grad_reducer *reducer) {
  sr_device_trainer *t = (sr_device_trainer *)sr_calloc(1, sizeof *t);
  t->dist = dist;
  t->model = (cu_model *)m;
  t->layout = reducer;
  t->overlap = cfg->dist.overlap;
  int rc = pick_backend(cfg->dist.backend, &t->use_nccl);
  t->n_ready = (int *)sr_calloc((size_t)(reducer->n_buckets > 0 ? reducer->n_buckets : 1), sizeof *t->n_ready);
  CUDA_CHECK(cudaStreamCreateWithFlags(&t->comm_stream, cudaStreamNonBlocking));
  CUDA_CHECK(cudaEventCreateWithFlags(&t->order, cudaEventDisableTiming));
  CUDA_CHECK(cudaMalloc((void **)&t->non_finite, sizeof *t->non_finite));
  CUDA_CHECK(cudaMallocHost((void **)&t->non_finite_host, sizeof *t->non_finite_host));
#ifdef SHARDREC_HAVE_NCCL
  if (rc == SR_OK && t->use_nccl) rc = nccl_init(t);
#endif
  if (rc == SR_OK && !t->use_nccl) stage_on_host(t, cfg);
  if (rc != SR_OK) {
    sr_device_trainer_free(t);
    return rc;
  }
  *out = t;
  return SR_OK;
}

const char *sr_device_trainer_backend(const sr_device_trainer *t) { return t->use_nccl ? "nccl" : "mpi"; }

void sr_device_trainer_free(sr_device_trainer *t) {
  if (!t) return;
  CUDA_CHECK(cudaStreamSynchronize(t->comm_stream));
#ifdef SHARDREC_HAVE_NCCL
  if (t->comm) ncclCommDestroy(t->comm);
#endif
  if (t->pinned[0]) sr_grad_reducer_free(&t->staged);
  for (int i = 0; i < 4; i++)
    if (t->pinned[i]) CUDA_CHECK(cudaFreeHost(t->pinned[i]));
  CUDA_CHECK(cudaFree(t->non_finite));
  CUDA_CHECK(cudaFreeHost(t->non_finite_host));
  CUDA_CHECK(cudaEventDestroy(t->order));
  CUDA_CHECK(cudaStreamDestroy(t->comm_stream));
  free(t->n_ready);
  free(t);
}

/*
 * grad_reduce.h — gradient all-reduce in fused buckets, overlapped with the
 * backward pass.
 *
 * Buckets are contiguous slices of the registry's gradient arena, formed in
 * reverse registration order (the order in which backward finishes
 * gradients), each at most bucket_bytes unless a single tensor is larger. The
 * model reports each finished parameter (sr_grad_reducer_ready); when every
 * parameter of a bucket is done, its MPI_Iallreduce(SUM) starts while backward
 * goes on, and sr_grad_reducer_finish() waits for the rest. No copies: the
 * collective runs in place on the arena.
 *
 * SUM, not mean: losses are normalised by the global batch (model.h), so the
 * summed gradient is exactly the global-batch gradient.
 *
 * Sharded optimizer (dist.shard_optimizer, ZeRO stage 1): instead of an
 * all-reduce, each bucket is reduce-scattered (a ring of P-1 exchanges), so
 * every rank ends with the summed gradient of its 1/P of each bucket only; it
 * runs Adam on those slices (sr_optim_step_ranges over `owned`), and the
 * updated parameters are all-gathered. Same bytes on the wire as an
 * all-reduce, but the optimizer's memory-bound pass over the parameters is
 * split among the ranks instead of repeated on each. Adam is elementwise, so
 * the parameters are those of the replicated optimizer.
 *
 * Touched rows (params.h: touched_rows): a parameter with a row-sparse
 * gradient (Mult-VAE's first layer, one row per item) gets a bucket of its
 * own. The ranks OR their touched-row flags (one byte per row), pack the
 * rows some rank touched into a buffer, reduce that, and unpack it: rows no
 * rank touched are zero everywhere and never travel. A batch of 500 users
 * touches a fraction of a large catalogue, so this cuts the bytes of the
 * layer's exchange by that fraction. In the ring the packed rows keep the
 * slices of the arena they come from, so every element is summed in the
 * same order as in the same bucket unpacked (bit-identical; so is the
 * all-reduce on 2 ranks, where a + b has one order).
 */
#ifndef SHARDREC_GRAD_REDUCE_H
#define SHARDREC_GRAD_REDUCE_H

#include <mpi.h>
#include <stdint.h>

#include "shardrec/dist.h"
#include "shardrec/optim.h"
#include "shardrec/params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int64_t begin, end;  /* element range in the gradient arena */
  int n_params;        /* parameters in the bucket */
  int n_ready;         /* of them reported finished in this step */
  MPI_Request request; /* MPI_REQUEST_NULL when not in flight */
  /* Row-sparse bucket: its one parameter's index, else -1; and the rows some
   * rank touched in this step (ids, then their gradients packed). */
  int row_sparse;
  int64_t n_packed_rows;
  int64_t *packed_rows;
  float *packed;
  size_t packed_rows_cap, packed_cap;
} sr_grad_bucket;

typedef struct {
  const sr_dist *dist;
  sr_params *params;
  int overlap;
  int n_buckets;
  sr_grad_bucket *buckets;
  int *bucket_of;  /* [params->count] bucket index of each parameter */
  int next_launch; /* buckets [0, next_launch) are launched in this step */
  int shard_optimizer;
  sr_arena_range *owned; /* [n_buckets] this rank's slice of each bucket (sharded optimizer) */
  float *scratch;        /* one slice, for the ring's receives */
  /* Summed over steps: time blocked in sr_grad_reducer_finish (not
   * overlapped) and, with the sharded optimizer, in the parameter all-gather
   * of sr_grad_reducer_gather_values; and all communication time (from the
   * first launch to the end of finish, plus that all-gather). */
  double wait_seconds;
  double total_seconds;
  double first_launch;
  /* Summed over steps: gradient elements that entered a reduction (touched
   * rows only, for row-sparse buckets) and that would without packing. */
  int64_t reduced_elements, dense_elements;
} sr_grad_reducer;

/* overlap = 0: nothing starts during backward; finish() runs one blocking
 * all-reduce per bucket (cheaper when compute already uses every core, since
 * MPI then progresses only inside our calls — see dist.overlap in docs/config.md). */
/* Reduces the registry's dense parameters [0, params->n_dense) (its sparse
 * tail, the embedding tables, is exchanged by the model: model.h). */
void sr_grad_reducer_init(sr_grad_reducer *r, const sr_dist *dist, sr_params *params, int64_t bucket_bytes,
                          int overlap, int shard_optimizer);
void sr_grad_reducer_free(sr_grad_reducer *r);
/* Starts a step: no parameter is finished. */
void sr_grad_reducer_begin(sr_grad_reducer *r);
/* Parameter `index` has its final local gradient; launches its bucket when complete. */
void sr_grad_reducer_ready(sr_grad_reducer *r, int index);
/* Launches what is left and waits for every bucket. */
int sr_grad_reducer_finish(sr_grad_reducer *r);

/* Sharded optimizer: after sr_optim_step_ranges(o, params, r->owned,
 * r->n_buckets), clears the gradient slices other ranks own and gives every
 * rank the updated parameters of all slices. */
int sr_grad_reducer_gather_values(sr_grad_reducer *r);
/* Sharded optimizer: make the Adam moments whole on every rank (before a
 * checkpoint is written). */
int sr_grad_reducer_gather_optimizer_state(sr_grad_reducer *r);

/* Gradient clipping (train.clip_grad_norm), after sr_grad_reducer_finish:
 * the sum of squares of the summed gradient elements this rank answers for,
 * so that adding it over every rank counts each element of the model once.
 * A rank answers for its owned slices (sharded optimizer), or for all of them
 * when it is rank 0 of the reducer's ranks (replicated optimizer: every rank
 * holds the same sums). Item-parallel groups hold the replicated parameters
 * K times: with count_replicated = 0 the parameters that are not split
 * (params.h shard.dim < 0) are left out, for all but one rank of a group. */
double sr_grad_reducer_owned_sq_norm(const sr_grad_reducer *r, int count_replicated);
/* Multiplies the gradient elements the optimizer will consume (the owned
 * slices) by s. */
void sr_grad_reducer_scale(sr_grad_reducer *r, float s);

/* Sharded optimizer layout, for collectives run elsewhere (the GPU backend):
 * slice `part` of P of a bucket, and the rank that owns (updates) it. */
sr_arena_range sr_grad_bucket_slice(const sr_grad_bucket *b, int part, int P);
int sr_grad_slice_owner(int part, int P);

/* The callback form models receive in sr_batch. */
void sr_grad_reducer_ready_cb(void *reducer, int index);

#ifdef __cplusplus
}
#endif
#endif

/*
 * device.h — the GPU backend, as the rest of shardrec sees it (docs/gpu.md).
 *
 * This interface compiles and links in every build. Built without CUDA
 * (cmake -DSHARDREC_CUDA=OFF, or no toolkit), every request for a device
 * fails with a message saying so; built with CUDA on a machine without a
 * usable GPU, the message says why (no driver, no device visible).
 *
 * Everything on the device lives in src/cuda/: device selection, streams,
 * the per-model memory arena, the kernels, the device Mult-VAE/DAE and the
 * trainer's device side below. The host parameter registry (params.h) stays
 * the canonical layout: device arenas mirror it element for element, and
 * checkpoints, best-model snapshots and merging always work on the host copy,
 * so a checkpoint does not know which device wrote it.
 */
#ifndef SHARDREC_DEVICE_H
#define SHARDREC_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "shardrec/config.h"
#include "shardrec/dataset.h"
#include "shardrec/dist.h"
#include "shardrec/grad_reduce.h"
#include "shardrec/model.h"
#include "shardrec/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* run.device, in the order of its names in the config schema. */
typedef enum { SR_DEVICE_CPU = 0, SR_DEVICE_CUDA = 1, SR_DEVICE_AUTO = 2 } sr_device_kind;
/* run.precision of the device's dense products (the CPU always computes in fp32):
 * fp32 (TF32 off), tf32 or bf16 tensor cores; weights and Adam state stay fp32. */
typedef enum { SR_PRECISION_FP32 = 0, SR_PRECISION_TF32 = 1, SR_PRECISION_BF16 = 2 } sr_precision;
/* dist.backend: the collectives of GPU ranks (auto = nccl when built with it). */
typedef enum { SR_BACKEND_AUTO = 0, SR_BACKEND_MPI = 1, SR_BACKEND_NCCL = 2 } sr_comm_backend;

/* 1 when this process can use a CUDA device; else 0, with the reason written
 * to why[0..why_size) when why is non-NULL. */
int sr_device_available(char *why, size_t why_size);

/* Resolves run.device for this process: *use_cuda = 1 for cuda, or for auto
 * when a device is available. cuda without a usable device fails (SR_EINVAL)
 * with the reason and what to set instead. */
int sr_device_resolve(int requested, int *use_cuda);

/* Binds the calling rank to its GPU: the node-local rank (from
 * OMPI_COMM_WORLD_LOCAL_RANK, else SLURM_LOCALID, else a shared-memory split
 * of the communicator) modulo the number of visible devices, so
 * CUDA_VISIBLE_DEVICES restricts and orders the choice. Several ranks may
 * share one device. Logs the binding at debug level. */
int sr_device_bind(const sr_dist *dist);

/* The device implementation of the model cfg->model.type describes (Mult-VAE
 * and Mult-DAE), with the same parameter names, layout and seeded
 * initialisation as sr_model_create_on(cfg, data, dist), and its parameters
 * already on the device. Other model types, and models that split their
 * parameters over ranks, fail with a message naming run.device: cpu. */
int sr_device_model_create(const sr_config *cfg, const sr_dataset *data, const sr_dist *dist, sr_model **out);

/* ---- the trainer's device side --------------------------------------------------
 * For a model from sr_device_model_create(). One training step is
 *     begin; forward_backward (grad_ready = sr_device_trainer_ready_cb);
 *     reduce; [stats, penalty]; update
 * with gradients, Adam and the collectives on the device. The host arenas are
 * brought up to date only when asked (download) and pushed back after the
 * host changed them (upload: resume, init_from, restoring the best snapshot). */
typedef struct sr_device_trainer sr_device_trainer;

/* `reducer` is the host reducer initialised for m->params: its buckets and
 * owned slices define the device collectives, and the MPI backend runs it on
 * the host arenas (pinned for the copies). */
int sr_device_trainer_create(sr_device_trainer **out, const sr_config *cfg, const sr_dist *dist, sr_model *m,
                             sr_grad_reducer *reducer);
void sr_device_trainer_free(sr_device_trainer *t);
/* "nccl" or "mpi", for the start-up line. */
const char *sr_device_trainer_backend(const sr_device_trainer *t);
/* Starts a step: no gradient is final yet. */
void sr_device_trainer_begin(sr_device_trainer *t);
/* sr_batch.grad_ready for device models: parameter `index` has its final
 * local gradient (NCCL: its bucket's reduction may start). */
void sr_device_trainer_ready_cb(void *trainer, int index);
/* Every gradient summed over the ranks (or, with dist.shard_optimizer, each
 * rank's owned slices). */
int sr_device_trainer_reduce(sr_device_trainer *t);
/* Adam/AdamW over this rank's owned slices on the device (o->step counts the
 * update), then the sharded slices gathered; the gradients are zero
 * afterwards. *n_bad = non-finite gradient values met, summed over ranks. */
int sr_device_trainer_update(sr_device_trainer *t, sr_optim *o, int64_t *n_bad);
/* Host values (and with with_optimizer_state the Adam moments, whole on every
 * rank) := device values. Collective when the optimizer is sharded. */
int sr_device_trainer_download(sr_device_trainer *t, int with_optimizer_state);
/* Device values and Adam moments := host ones. */
int sr_device_trainer_upload(sr_device_trainer *t);

#ifdef __cplusplus
}
#endif
#endif

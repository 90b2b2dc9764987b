/*
 * cu_model.h — what every device model shares with the device trainer (not
 * installed): the host model it is (sr_model first, so an sr_model * from
 * sr_device_model_create is a cu_model *), its execution context, and the
 * device mirrors of the registry's four arenas (same offsets as the host ones).
 */
#ifndef SHARDREC_CU_MODEL_H
#define SHARDREC_CU_MODEL_H

#include "cu_internal.h"
#include "shardrec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  sr_model base; /* base.params: the host registry, canonical for checkpoints */
  cu_ctx ctx;
  float *values, *grads, *adam_m, *adam_v; /* device: total, dense_total, total, total elements */
} cu_model;

/* The Mult-VAE / Mult-DAE on the device (vae.cu). */
int cu_vae_create(const sr_config *cfg, int64_t n_items, const sr_dist *dist, sr_model **out);

#ifdef __cplusplus
}
#endif
#endif

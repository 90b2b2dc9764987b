/*
 * vae.h — Mult-VAE and Mult-DAE (Liang et al., WWW 2018; methods.md §1).
 *
 *   encoder: x -> L2-normalise row -> dropout -> [Linear -> tanh]* -> Linear
 *            VAE: the last layer outputs 2*latent = [mu | logvar]; DAE: latent, tanh
 *   decoder: z -> [Linear -> tanh]* -> Linear(.., n_items) = logits
 *   VAE loss = -mean_u sum_i x_ui log_softmax(logits_u)_i + beta * KL,
 *              beta = min(anneal_cap, updates / total_anneal_steps)
 *   DAE loss = the same likelihood + lambda * sum_W ||W||^2, lambda = l2_reg / batch_size
 */
#ifndef SHARDREC_VAE_H
#define SHARDREC_VAE_H

#include <stdint.h>

#include "shardrec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* dist: the ranks the model is built over (NULL: one process). */
int sr_vae_create(const sr_config *cfg, int64_t n_items, const sr_dist *dist, sr_model **out);
/* beta for the batch after `updates` optimizer steps (VAE annealing schedule). */
double sr_vae_beta(double anneal_cap, int64_t total_anneal_steps, uint64_t updates);

#ifdef __cplusplus
}
#endif
#endif

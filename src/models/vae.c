/*
 * vae.c — Mult-VAE and Mult-DAE (vae.h), forward and backward written out.
 *
 * Both are two stacks of linear layers with tanh between them:
 *   encoder dims [I, hidden..., 2K (VAE) | K (DAE)], first layer sparse input
 *   decoder dims [K, hidden reversed..., I], no activation on the logits
 * The DAE's encoder output goes through tanh too (it is z); the VAE's is split
 * into mu and logvar and z is reparameterised from them.
 */
#include "shardrec/vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/mem.h"
#include "shardrec/nn.h"
#include "shardrec/rng.h"

#define MAX_STACK (SR_MAX_LAYERS + 1)

/* A stack of linear layers: layer l maps dims[l] -> dims[l+1]; tanh follows
 * every layer but the last, and the last too when tanh_on_output. */
typedef struct {
  int n_layers;
  int64_t dims[MAX_STACK + 1];
  int weight[MAX_STACK], bias[MAX_STACK]; /* parameter indices */
  int tanh_on_output;
  float *act[MAX_STACK];  /* (B, dims[l+1]) output of layer l after its activation */
  float *dact[MAX_STACK]; /* (B, dims[l+1]) loss gradient w.r.t. act[l] */
  float *scratch;         /* (B, max dim) gradient w.r.t. a pre-activation */
} layer_stack;

typedef struct {
  sr_model base;
  int is_vae;
  int64_t latent;
  double anneal_cap;
  int64_t total_anneal_steps;
  double dropout;
  double l2_lambda; /* DAE: l2_reg / batch_size */
  uint64_t seed;
  layer_stack enc, dec;
  int64_t capacity;                                  /* rows the buffers hold */
  float *mu, *logvar, *eps, *z, *dmu, *dlogvar, *dz; /* (B, K); VAE only */
  float *logits;                                     /* (B, I) training logits, then dlogits in place */
  int64_t logits_capacity;
  float *input_values; /* (nnz) normalised (and dropped-out) input values */
  size_t input_values_cap;
} vae_model;

static int layer_has_tanh(const layer_stack *s, int l) { return l < s->n_layers - 1 || s->tanh_on_output; }

static void stack_register(layer_stack *s, sr_params *ps, const char *prefix, const int64_t *dims, int n_layers,
                           int tanh_on_output) {
  s->n_layers = n_layers;
  s->tanh_on_output = tanh_on_output;
  for (int l = 0; l <= n_layers; l++) s->dims[l] = dims[l];
  for (int l = 0; l < n_layers; l++) {
    char name[SR_PARAM_NAME_MAX];
    int64_t wshape[2] = {dims[l], dims[l + 1]}, bshape[1] = {dims[l + 1]};
    snprintf(name, sizeof name, "%s.%d.weight", prefix, l);
    s->weight[l] = sr_params_add(ps, name, SR_PARAM_WEIGHT, 2, wshape);
    snprintf(name, sizeof name, "%s.%d.bias", prefix, l);
    s->bias[l] = sr_params_add(ps, name, SR_PARAM_BIAS, 1, bshape);
  }
}

/* Xavier-uniform weights, biases ~ N(0, 0.001^2) truncated (methods.md §1). */
static void stack_init(layer_stack *s, sr_params *ps, uint64_t seed) {
  for (int l = 0; l < s->n_layers; l++) {
    sr_param_init_xavier_uniform(ps, s->weight[l], seed, s->dims[l], s->dims[l + 1]);
    sr_param_init_truncated_normal(ps, s->bias[l], seed, 0.001f);
  }
}

/* (Re)allocates the activation buffers for B rows. The output buffer of the
 * decoder's last layer is supplied by the caller (logits or scores). */
static void stack_alloc(layer_stack *s, int64_t B, int own_last) {
  int64_t widest = 0;
  for (int l = 0; l < s->n_layers; l++) {
    if (l < s->n_layers - 1 || own_last) {
      free(s->act[l]);
      free(s->dact[l]);
      s->act[l] = sr_aligned_calloc((size_t)(B * s->dims[l + 1]) * sizeof(float));
      s->dact[l] = sr_aligned_calloc((size_t)(B * s->dims[l + 1]) * sizeof(float));
    }
    if (s->dims[l + 1] > widest) widest = s->dims[l + 1];
  }
  free(s->scratch);
  s->scratch = sr_aligned_calloc((size_t)(B * widest) * sizeof(float));
}

static void stack_free(layer_stack *s, int own_last) {
  for (int l = 0; l < s->n_layers; l++) {
    if (l < s->n_layers - 1 || own_last) {
      free(s->act[l]);
      free(s->dact[l]);
    }
  }
  free(s->scratch);
}

static void add_bias_rows(float *out, const float *bias, int64_t B, int64_t D) {
  for (int64_t r = 0; r < B; r++) sr_axpy(out + r * D, 1.0f, bias, D);
}

/* Forward through the stack. Input: a sparse batch (x, values) when x != NULL,
 * else the dense (B, dims[0]) matrix `dense_in`. */
static void stack_forward(layer_stack *s, sr_params *ps, const sr_csr *x, const float *values, const float *dense_in,
                          int64_t B) {
  for (int l = 0; l < s->n_layers; l++) {
    const float *w = ps->items[s->weight[l]].value, *b = ps->items[s->bias[l]].value;
    int64_t out_dim = s->dims[l + 1];
    if (l == 0 && x) {
      sr_spmm_forward(s->act[0], x, values, w, out_dim);
      add_bias_rows(s->act[0], b, B, out_dim);
    } else {
      const float *in = l == 0 ? dense_in : s->act[l - 1];
      sr_linear_forward(s->act[l], in, w, b, B, s->dims[l], out_dim);
    }
    if (layer_has_tanh(s, l)) sr_tanh_forward(s->act[l], s->act[l], B * out_dim);
  }
}

static void report_ready(const sr_batch *batch, const layer_stack *s, int l) {
  if (!batch->grad_ready) return;
  batch->grad_ready(batch->grad_ready_ctx, s->bias[l]);
  batch->grad_ready(batch->grad_ready_ctx, s->weight[l]);
}

/* Backward through the stack from dact[last] (filled by the caller). Parameter
 * gradients accumulate and are reported final layer by layer; d_dense_in
 * (B, dims[0]), if non-NULL, accumulates the gradient w.r.t. a dense input. */
static void stack_backward(layer_stack *s, sr_params *ps, const sr_batch *batch, const sr_csr *x, const float *values,
                           const float *dense_in, float *d_dense_in, int64_t B) {
  for (int l = s->n_layers - 1; l >= 0; l--) {
    sr_param *w = &ps->items[s->weight[l]], *b = &ps->items[s->bias[l]];
    int64_t in_dim = s->dims[l], out_dim = s->dims[l + 1];
    const float *g = s->dact[l]; /* gradient w.r.t. this layer's pre-activation */
    if (layer_has_tanh(s, l)) {
      memset(s->scratch, 0, (size_t)(B * out_dim) * sizeof(float));
      sr_tanh_backward(s->scratch, s->dact[l], s->act[l], B * out_dim);
      g = s->scratch;
    }
    if (l == 0 && x) {
      sr_spmm_backward_weight(w->grad, x, values, g, out_dim);
      sr_column_sums_acc(b->grad, g, B, out_dim);
      report_ready(batch, s, l);
      continue;
    }
    float *din = NULL;
    if (l > 0) {
      din = s->dact[l - 1];
      memset(din, 0, (size_t)(B * in_dim) * sizeof(float));
    } else {
      din = d_dense_in;
    }
    const float *in = l == 0 ? dense_in : s->act[l - 1];
    sr_linear_backward(din, w->grad, b->grad, g, in, w->value, B, in_dim, out_dim);
    report_ready(batch, s, l);
  }
}

static void ensure_capacity(vae_model *v, int64_t B) {
  if (B <= v->capacity) return;
  stack_alloc(&v->enc, B, 1);
  stack_alloc(&v->dec, B, 0);
  if (v->is_vae) {
    float **bufs[] = {&v->mu, &v->logvar, &v->eps, &v->z, &v->dmu, &v->dlogvar, &v->dz};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
      free(*bufs[i]);
      *bufs[i] = sr_aligned_calloc((size_t)(B * v->latent) * sizeof(float));
    }
  }
  v->capacity = B;
}

/* Normalised (and, in training, dropped-out) values of the input rows. */
static const float *prepare_input(vae_model *v, const sr_csr *x, int training, const int64_t *sample_ids,
                                  uint64_t step) {
  sr_grow(&v->input_values, &v->input_values_cap, (size_t)(x->nnz > 0 ? x->nnz : 1));
  sr_csr_l2norm_values(v->input_values, x);
  if (training && v->dropout > 0)
    sr_csr_dropout_values(v->input_values, x, (float)v->dropout, v->seed, SR_RNG_DROPOUT, step, sample_ids);
  return v->input_values;
}

/* z (B, K) for the decoder: the DAE's tanh encoder output, or the VAE's
 * mu (evaluation) / mu + eps * sigma (training). */
static const float *encode(vae_model *v, const sr_csr *x, const float *values, int training,
                           const int64_t *sample_ids, uint64_t step) {
  int64_t B = x->n_rows, K = v->latent;
  stack_forward(&v->enc, &v->base.params, x, values, NULL, B);
  const float *out = v->enc.act[v->enc.n_layers - 1];
  if (!v->is_vae) return out;
  for (int64_t r = 0; r < B; r++) { /* out (B, 2K) = [mu | logvar] */
    memcpy(v->mu + r * K, out + r * 2 * K, (size_t)K * sizeof(float));
    memcpy(v->logvar + r * K, out + r * 2 * K + K, (size_t)K * sizeof(float));
  }
  if (!training) return v->mu;
  sr_reparam_forward(v->z, v->eps, v->mu, v->logvar, B, K, v->seed, step, sample_ids);
  return v->z;
}

double sr_vae_beta(double anneal_cap, int64_t total_anneal_steps, uint64_t updates) {
  double ramp = (double)updates / (double)total_anneal_steps;
  return ramp < anneal_cap ? ramp : anneal_cap;
}

static int vae_forward_backward(sr_model *m, const sr_batch *batch, sr_step_stats *stats) {
  vae_model *v = (vae_model *)m;
  const sr_csr *x = batch->rows;
  int64_t B = x->n_rows, K = v->latent, I = m->n_items;
  float norm = (float)batch->global_batch;
  memset(stats, 0, sizeof *stats);
  if (B == 0) return SR_OK; /* this rank holds no rows of a short last batch */
  ensure_capacity(v, B);
  if (B > v->logits_capacity) {
    free(v->logits);
    v->logits = sr_aligned_calloc((size_t)(B * I) * sizeof(float));
    v->logits_capacity = B;
  }
  const float *values = prepare_input(v, x, 1, batch->sample_ids, batch->step);
  const float *z = encode(v, x, values, 1, batch->sample_ids, batch->step);

  /* decoder -> logits (B, I); the NLL overwrites them with dlogits */
  v->dec.act[v->dec.n_layers - 1] = v->logits;
  v->dec.dact[v->dec.n_layers - 1] = v->logits;
  stack_forward(&v->dec, &m->params, NULL, NULL, z, B);
  double nll = sr_softmax_nll(v->logits, v->logits, x, B, I, norm);

  double kl = 0.0, beta = 0.0;
  float *dz = v->is_vae ? v->dz : v->enc.dact[v->enc.n_layers - 1];
  memset(dz, 0, (size_t)(B * K) * sizeof(float));
  if (v->is_vae) {
    beta = sr_vae_beta(v->anneal_cap, v->total_anneal_steps, batch->step);
    memset(v->dmu, 0, (size_t)(B * K) * sizeof(float));
    memset(v->dlogvar, 0, (size_t)(B * K) * sizeof(float));
    kl = sr_gaussian_kl(v->dmu, v->dlogvar, v->mu, v->logvar, B, K, norm, (float)beta);
  }
  stack_backward(&v->dec, &m->params, batch, NULL, NULL, z, dz, B);
  if (v->is_vae) {
    sr_reparam_backward(v->dmu, v->dlogvar, v->dz, v->eps, v->logvar, B, K);
    float *dout = v->enc.dact[v->enc.n_layers - 1]; /* (B, 2K) = [dmu | dlogvar] */
    for (int64_t r = 0; r < B; r++) {
      memcpy(dout + r * 2 * K, v->dmu + r * K, (size_t)K * sizeof(float));
      memcpy(dout + r * 2 * K + K, v->dlogvar + r * K, (size_t)K * sizeof(float));
    }
  }
  stack_backward(&v->enc, &m->params, batch, x, values, NULL, NULL, B);

  stats->n_terms = v->is_vae ? 2 : 1;
  stats->term_names[0] = "neg_ll";
  stats->terms[0] = nll;
  if (v->is_vae) {
    stats->term_names[1] = "kl";
    stats->terms[1] = kl;
  }
  stats->beta = beta;
  stats->loss = nll + beta * kl;
  return SR_OK;
}

/* DAE: lambda * sum over weight matrices of ||W||^2 (biases excluded). */
static double vae_add_param_penalty(sr_model *m) {
  vae_model *v = (vae_model *)m;
  if (v->is_vae || v->l2_lambda == 0.0) return 0.0;
  double penalty = 0.0;
  for (int i = 0; i < m->params.count; i++) {
    sr_param *p = &m->params.items[i];
    if (p->kind != SR_PARAM_WEIGHT) continue;
    penalty += v->l2_lambda * sr_sum_squares(p->value, p->numel);
    sr_axpy(p->grad, (float)(2.0 * v->l2_lambda), p->value, p->numel);
  }
  return penalty;
}

static void vae_score(sr_model *m, const sr_csr *input, const int64_t *user_ids, float *scores) {
  (void)user_ids; /* the input row is the whole user representation */
  vae_model *v = (vae_model *)m;
  int64_t B = input->n_rows;
  if (B == 0) return;
  ensure_capacity(v, B);
  const float *values = prepare_input(v, input, 0, NULL, 0);
  const float *z = encode(v, input, values, 0, NULL, 0);
  v->dec.act[v->dec.n_layers - 1] = scores;
  stack_forward(&v->dec, &m->params, NULL, NULL, z, B);
  v->dec.act[v->dec.n_layers - 1] = NULL;
}

static void vae_destroy(sr_model *m) {
  vae_model *v = (vae_model *)m;
  stack_free(&v->enc, 1);
  stack_free(&v->dec, 0);
  float *bufs[] = {v->mu, v->logvar, v->eps, v->z, v->dmu, v->dlogvar, v->dz, v->logits, v->input_values};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  sr_params_free(&m->params);
  free(v);
}

static const sr_model_ops multvae_ops = {.name = "multvae",
                                         .samples = SR_SAMPLES_USERS,
                                         .forward_backward = vae_forward_backward,
                                         .add_param_penalty = vae_add_param_penalty,
                                         .score = vae_score,
                                         .destroy = vae_destroy};
static const sr_model_ops multdae_ops = {.name = "multdae",
                                         .samples = SR_SAMPLES_USERS,
                                         .forward_backward = vae_forward_backward,
                                         .add_param_penalty = vae_add_param_penalty,
                                         .score = vae_score,
                                         .destroy = vae_destroy};

int sr_vae_create(const sr_config *cfg, int64_t n_items, const sr_dist *dist, sr_model **out) {
  (void)dist; /* every parameter is replicated */
  if (n_items < 1) return SR_FAIL(SR_EINVAL, "the dataset has no items");
  vae_model *v = sr_calloc(1, sizeof *v);
  v->is_vae = cfg->model.type == SR_MODEL_MULTVAE;
  v->base.ops = v->is_vae ? &multvae_ops : &multdae_ops;
  v->base.n_items = n_items;
  v->latent = cfg->model.latent_dim;
  v->anneal_cap = cfg->model.anneal_cap;
  v->total_anneal_steps = cfg->model.total_anneal_steps;
  v->dropout = cfg->model.dropout;
  v->l2_lambda = cfg->model.l2_reg / (double)cfg->train.batch_size;
  v->seed = (uint64_t)cfg->run.seed;

  int nh = cfg->model.n_hidden;
  int64_t enc_dims[MAX_STACK + 1], dec_dims[MAX_STACK + 1];
  enc_dims[0] = n_items;
  dec_dims[0] = v->latent;
  for (int l = 0; l < nh; l++) {
    enc_dims[l + 1] = cfg->model.hidden[l];
    dec_dims[l + 1] = cfg->model.hidden[nh - 1 - l];
  }
  enc_dims[nh + 1] = v->is_vae ? 2 * v->latent : v->latent;
  dec_dims[nh + 1] = n_items;

  sr_params_init(&v->base.params);
  stack_register(&v->enc, &v->base.params, "encoder", enc_dims, nh + 1, !v->is_vae);
  stack_register(&v->dec, &v->base.params, "decoder", dec_dims, nh + 1, 0);
  sr_params_finalize(&v->base.params);
  stack_init(&v->enc, &v->base.params, v->seed);
  stack_init(&v->dec, &v->base.params, v->seed);
  *out = &v->base;
  return SR_OK;
}

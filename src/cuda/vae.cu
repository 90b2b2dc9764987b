/*
 * vae.cu — Mult-VAE and Mult-DAE on the device: src/models/vae.c, mirrored.
 *
 * Same structure and names as vae.c (layer_stack, stack_forward,
 * stack_backward, prepare_input, encode, forward_backward, score), with the
 * nn.h kernels replaced by their cu_nn.h twins and every buffer in device
 * memory, so the two files can be read side by side (docs/gpu.md). What only
 * the device needs: the batch upload (upload_batch), the transposed batch for
 * the sparse weight gradient, and losses added up on the host from per-row
 * values.
 *
 * The host registry (names, layout, the seeded initial values) comes from
 * sr_vae_create itself, so a device model starts from exactly the CPU model's
 * parameters and writes checkpoints that the CPU model reads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_model.h"
#include "cu_nn.h"
#include "shardrec/device.h"
#include "shardrec/error.h"
#include "shardrec/mem.h"
#include "shardrec/rng.h"
#include "shardrec/vae.h"

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

/* A batch's rows on the device: x (R, I) and, for training, its transpose
 * x_t (I, R) with perm[k] = the entry of x that entry k of x_t is. */
typedef struct {
  cu_csr x, x_t;
  int32_t *perm;
  int64_t *sample_ids; /* [R] */
} device_batch;

typedef struct {
  cu_model dev; /* dev.base is the sr_model */
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
  float *logits;                                     /* (B, I) logits, then dlogits in place (or scores) */
  double *row_loss, *row_kl;                         /* [B] per-row loss terms */
  cu_arena arena;                                    /* everything above and the parameter arenas */
  /* Per batch (sized by its nonzeros, grown rarely): pinned staging on the
   * host, its copy on the device, the input values (normalised, dropped out)
   * in x's and in x_t's entry order, and the per-row losses back on the host. */
  cu_buffer staging, staged, input_values, input_values_t, losses_host;
  device_batch batch;
  cudaStream_t copy_stream; /* host-to-device copies of batches */
  cudaEvent_t batch_ready;
} vae_model;

static int layer_has_tanh(const layer_stack *s, int l) { return l < s->n_layers - 1 || s->tanh_on_output; }

static float *dev_value(vae_model *v, int index) { return v->dev.values + v->dev.base.params.items[index].offset; }
static float *dev_grad(vae_model *v, int index) { return v->dev.grads + v->dev.base.params.items[index].offset; }

/* The stack's layers as sr_vae_create registered them ("<prefix>.<l>.weight",
 * shape (in, out), and "<prefix>.<l>.bias"). */
static void stack_from_registry(layer_stack *s, sr_params *ps, const char *prefix, int tanh_on_output) {
  memset(s, 0, sizeof *s);
  s->tanh_on_output = tanh_on_output;
  for (int l = 0; l < MAX_STACK; l++) {
    char name[SR_PARAM_NAME_MAX];
    snprintf(name, sizeof name, "%s.%d.weight", prefix, l);
    const sr_param *w = sr_params_find(ps, name);
    if (!w) break;
    snprintf(name, sizeof name, "%s.%d.bias", prefix, l);
    const sr_param *b = sr_params_find(ps, name);
    SR_ASSERT(b && w->ndim == 2);
    s->weight[l] = (int)(w - ps->items);
    s->bias[l] = (int)(b - ps->items);
    s->dims[l] = w->shape[0];
    s->dims[l + 1] = w->shape[1];
    s->n_layers = l + 1;
  }
  SR_ASSERT(s->n_layers > 0);
}

/* The activation buffers of B rows. The output of the decoder's last layer is
 * the model's logits buffer (set by the caller), so it is not taken here. */
static void stack_layout(layer_stack *s, cu_arena *a, int64_t B, int own_last) {
  int64_t widest = 0;
  for (int l = 0; l < s->n_layers; l++) {
    if (l < s->n_layers - 1 || own_last) {
      cu_take(a, s->act[l], B * s->dims[l + 1]);
      cu_take(a, s->dact[l], B * s->dims[l + 1]);
    }
    if (s->dims[l + 1] > widest) widest = s->dims[l + 1];
  }
  cu_take(a, s->scratch, B * widest);
}

/* Every device buffer of the model, in one arena (measured, then carved). */
static void model_layout(vae_model *v, cu_arena *a) {
  const sr_params *ps = &v->dev.base.params;
  const int64_t B = v->capacity, K = v->latent, I = v->dev.base.n_items;
  cu_take(a, v->dev.values, ps->total);
  cu_take(a, v->dev.grads, ps->dense_total);
  cu_take(a, v->dev.adam_m, ps->total);
  cu_take(a, v->dev.adam_v, ps->total);
  stack_layout(&v->enc, a, B, 1);
  stack_layout(&v->dec, a, B, 0);
  if (v->is_vae) {
    float **bufs[] = {&v->mu, &v->logvar, &v->eps, &v->z, &v->dmu, &v->dlogvar, &v->dz};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cu_take(a, *bufs[i], B * K);
  }
  cu_take(a, v->logits, B * I);
  cu_take(a, v->row_loss, B);
  cu_take(a, v->row_kl, B);
}

/* Forward through the stack. Input: a sparse batch (x, values) when x != NULL,
 * else the dense (B, dims[0]) matrix `dense_in`. */
static void stack_forward(vae_model *v, layer_stack *s, const cu_csr *x, const float *values, const float *dense_in,
                          int64_t B) {
  cu_ctx *c = &v->dev.ctx;
  for (int l = 0; l < s->n_layers; l++) {
    const float *w = dev_value(v, s->weight[l]), *b = dev_value(v, s->bias[l]);
    int64_t out_dim = s->dims[l + 1];
    if (l == 0 && x) {
      cu_spmm_forward(c, s->act[0], x, values, w, out_dim);
      cu_add_bias_rows(c, s->act[0], b, B, out_dim);
    } else {
      const float *in = l == 0 ? dense_in : s->act[l - 1];
      cu_linear_forward(c, s->act[l], in, w, b, B, s->dims[l], out_dim);
    }
    if (layer_has_tanh(s, l)) cu_tanh_forward(c, s->act[l], s->act[l], B * out_dim);
  }
}

static void report_ready(const sr_batch *batch, const layer_stack *s, int l) {
  if (!batch->grad_ready) return;
  batch->grad_ready(batch->grad_ready_ctx, s->bias[l]);
  batch->grad_ready(batch->grad_ready_ctx, s->weight[l]);
}

/* Backward through the stack from dact[last] (filled by the caller). Parameter
 * gradients accumulate and are reported final layer by layer (their kernels
 * are enqueued, which is what the device trainer needs); d_dense_in
 * (B, dims[0]), if non-NULL, accumulates the gradient w.r.t. a dense input.
 * A sparse first layer takes its weight gradient from the transposed batch. */
static void stack_backward(vae_model *v, layer_stack *s, const sr_batch *batch, const cu_csr *x_t,
                           const float *values_t, const float *dense_in, float *d_dense_in, int64_t B) {
  cu_ctx *c = &v->dev.ctx;
  for (int l = s->n_layers - 1; l >= 0; l--) {
    float *w_grad = dev_grad(v, s->weight[l]), *b_grad = dev_grad(v, s->bias[l]);
    int64_t in_dim = s->dims[l], out_dim = s->dims[l + 1];
    const float *g = s->dact[l]; /* gradient w.r.t. this layer's pre-activation */
    if (layer_has_tanh(s, l)) {
      CUDA_CHECK(cudaMemsetAsync(s->scratch, 0, (size_t)(B * out_dim) * sizeof(float), c->stream));
      cu_tanh_backward(c, s->scratch, s->dact[l], s->act[l], B * out_dim);
      g = s->scratch;
    }
    if (l == 0 && x_t) {
      cu_spmm_backward_weight(c, w_grad, x_t, values_t, g, out_dim);
      cu_column_sums_acc(c, b_grad, g, B, out_dim);
      report_ready(batch, s, l);
      continue;
    }
    float *din = NULL;
    if (l > 0) {
      din = s->dact[l - 1];
      CUDA_CHECK(cudaMemsetAsync(din, 0, (size_t)(B * in_dim) * sizeof(float), c->stream));
    } else {
      din = d_dense_in;
    }
    const float *in = l == 0 ? dense_in : s->act[l - 1];
    cu_linear_backward(c, din, w_grad, b_grad, g, in, dev_value(v, s->weight[l]), B, in_dim, out_dim);
    report_ready(batch, s, l);
  }
}

/* Where the next piece of a staging block starts: 256-byte aligned, as the
 * device copy of the block keeps the same offsets. */
static size_t staged_piece(size_t *used, size_t bytes) {
  const size_t at = (*used + 255) / 256 * 256;
  *used = at + bytes;
  return at;
}

/* Copies the rows x (and their sample ids; and with `transpose` the
 * transposed batch) to the device on the copy stream; the compute stream
 * waits for it. The pinned staging block is free again: the previous call
 * synchronised on its results. */
static void upload_batch(vae_model *v, const sr_csr *x, const int64_t *sample_ids, int transpose) {
  const int64_t R = x->n_rows, C = x->n_cols, nnz = x->nnz;
  SR_ASSERT(nnz <= 0x7fffffff);
  size_t used = 0;
  const size_t at_indptr = staged_piece(&used, (size_t)(R + 1) * sizeof(int32_t));
  const size_t at_indices = staged_piece(&used, (size_t)nnz * sizeof(int32_t));
  const size_t at_values = staged_piece(&used, x->values ? (size_t)nnz * sizeof(float) : 0);
  const size_t at_ids = staged_piece(&used, sample_ids ? (size_t)R * sizeof(int64_t) : 0);
  const size_t at_indptr_t = staged_piece(&used, transpose ? (size_t)(C + 1) * sizeof(int32_t) : 0);
  const size_t at_indices_t = staged_piece(&used, transpose ? (size_t)nnz * sizeof(int32_t) : 0);
  const size_t at_perm = staged_piece(&used, transpose ? (size_t)nnz * sizeof(int32_t) : 0);
  char *host = (char *)cu_buffer_reserve(&v->staging, used);
  char *dev = (char *)cu_buffer_reserve(&v->staged, used);

  int32_t *indptr = (int32_t *)(host + at_indptr);
  for (int64_t r = 0; r <= R; r++) indptr[r] = (int32_t)x->indptr[r];
  memcpy(host + at_indices, x->indices, (size_t)nnz * sizeof(int32_t));
  if (x->values) memcpy(host + at_values, x->values, (size_t)nnz * sizeof(float));
  if (sample_ids) memcpy(host + at_ids, sample_ids, (size_t)R * sizeof(int64_t));
  if (transpose)
    cu_csr_transpose_host(x, (int32_t *)(host + at_indptr_t), (int32_t *)(host + at_indices_t),
                          (int32_t *)(host + at_perm));
  CUDA_CHECK(cudaMemcpyAsync(dev, host, used, cudaMemcpyHostToDevice, v->copy_stream));
  CUDA_CHECK(cudaEventRecord(v->batch_ready, v->copy_stream));
  CUDA_CHECK(cudaStreamWaitEvent(v->dev.ctx.stream, v->batch_ready, 0));

  device_batch *b = &v->batch;
  b->x = cu_csr{R,
                C,
                nnz,
                (int32_t *)(dev + at_indptr),
                (int32_t *)(dev + at_indices),
                x->values ? (float *)(dev + at_values) : NULL};
  b->sample_ids = sample_ids ? (int64_t *)(dev + at_ids) : NULL;
  b->x_t = cu_csr{C, R, nnz, (int32_t *)(dev + at_indptr_t), (int32_t *)(dev + at_indices_t), NULL};
  b->perm = transpose ? (int32_t *)(dev + at_perm) : NULL;
}

/* Normalised (and, in training, dropped-out) values of the input rows; in
 * training also in the transposed batch's order (*values_t). */
static const float *prepare_input(vae_model *v, int training, uint64_t step, const float **values_t) {
  cu_ctx *c = &v->dev.ctx;
  const device_batch *b = &v->batch;
  const size_t bytes = (size_t)(b->x.nnz > 0 ? b->x.nnz : 1) * sizeof(float);
  float *values = (float *)cu_buffer_reserve(&v->input_values, bytes);
  cu_csr_l2norm_values(c, values, &b->x);
  if (training && v->dropout > 0)
    cu_csr_dropout_values(c, values, &b->x, (float)v->dropout, cu_rng_key_for(v->seed, SR_RNG_DROPOUT), step,
                          b->sample_ids);
  if (training) {
    float *t = (float *)cu_buffer_reserve(&v->input_values_t, bytes);
    cu_gather_values(c, t, values, b->perm, b->x.nnz);
    *values_t = t;
  }
  return values;
}

/* z (B, K) for the decoder: the DAE's tanh encoder output, or the VAE's
 * mu (evaluation) / mu + eps * sigma (training). */
static const float *encode(vae_model *v, const float *values, int training, uint64_t step) {
  const cu_csr *x = &v->batch.x;
  int64_t B = x->n_rows, K = v->latent;
  stack_forward(v, &v->enc, x, values, NULL, B);
  const float *out = v->enc.act[v->enc.n_layers - 1];
  if (!v->is_vae) return out;
  /* out (B, 2K) = [mu | logvar]: two strided copies */
  cudaStream_t s = v->dev.ctx.stream;
  const size_t row = (size_t)K * sizeof(float);
  CUDA_CHECK(cudaMemcpy2DAsync(v->mu, row, out, 2 * row, row, (size_t)B, cudaMemcpyDeviceToDevice, s));
  CUDA_CHECK(cudaMemcpy2DAsync(v->logvar, row, out + K, 2 * row, row, (size_t)B, cudaMemcpyDeviceToDevice, s));
  if (!training) return v->mu;
  cu_reparam_forward(&v->dev.ctx, v->z, v->eps, v->mu, v->logvar, B, K, cu_rng_key_for(v->seed, SR_RNG_NOISE), step,
                     v->batch.sample_ids);
  return v->z;
}

static int check_capacity(const vae_model *v, int64_t B) {
  if (B <= v->capacity) return SR_OK;
  return SR_FAIL(SR_EINVAL,
                 "a batch of %lld rows exceeds the %lld the device buffers were sized for "
                 "(max of train.batch_size and train.eval_batch_size)",
                 (long long)B, (long long)v->capacity);
}

/* Row values (device, [R]) copied back and added in row order. Synchronises. */
static void sum_rows(vae_model *v, const double *rows_dev, int64_t R, double *sum) {
  double *host = (double *)cu_buffer_reserve(&v->losses_host, (size_t)R * sizeof(double));
  CUDA_CHECK(cudaMemcpyAsync(host, rows_dev, (size_t)R * sizeof(double), cudaMemcpyDeviceToHost, v->dev.ctx.stream));
  CUDA_CHECK(cudaStreamSynchronize(v->dev.ctx.stream));
  *sum = 0.0;
  for (int64_t r = 0; r < R; r++) *sum += host[r];
}

static int vae_forward_backward(sr_model *m, const sr_batch *batch, sr_step_stats *stats) {
  vae_model *v = (vae_model *)m;
  cu_ctx *c = &v->dev.ctx;
  const sr_csr *x = batch->rows;
  int64_t B = x->n_rows, K = v->latent, I = m->n_items;
  float norm = (float)batch->global_batch;
  memset(stats, 0, sizeof *stats);
  /* Named even without rows: rank 0 reports the reduced terms by these. */
  stats->n_terms = v->is_vae ? 2 : 1;
  stats->term_names[0] = "neg_ll";
  if (v->is_vae) stats->term_names[1] = "kl";
  if (B == 0) return SR_OK; /* this rank holds no rows of a short last batch */
  SR_TRY(check_capacity(v, B));
  upload_batch(v, x, batch->sample_ids, 1);
  const float *values_t = NULL;
  const float *values = prepare_input(v, 1, batch->step, &values_t);
  const float *z = encode(v, values, 1, batch->step);

  /* decoder -> logits (B, I); the NLL overwrites them with dlogits */
  v->dec.act[v->dec.n_layers - 1] = v->logits;
  v->dec.dact[v->dec.n_layers - 1] = v->logits;
  stack_forward(v, &v->dec, NULL, NULL, z, B);
  cu_softmax_nll(c, v->logits, v->logits, &v->batch.x, B, I, norm, v->row_loss);

  double beta = 0.0;
  float *dz = v->is_vae ? v->dz : v->enc.dact[v->enc.n_layers - 1];
  CUDA_CHECK(cudaMemsetAsync(dz, 0, (size_t)(B * K) * sizeof(float), c->stream));
  if (v->is_vae) {
    beta = sr_vae_beta(v->anneal_cap, v->total_anneal_steps, batch->step);
    CUDA_CHECK(cudaMemsetAsync(v->dmu, 0, (size_t)(B * K) * sizeof(float), c->stream));
    CUDA_CHECK(cudaMemsetAsync(v->dlogvar, 0, (size_t)(B * K) * sizeof(float), c->stream));
    cu_gaussian_kl(c, v->dmu, v->dlogvar, v->mu, v->logvar, B, K, norm, (float)beta, v->row_kl);
  }
  stack_backward(v, &v->dec, batch, NULL, NULL, z, dz, B);
  if (v->is_vae) {
    cu_reparam_backward(c, v->dmu, v->dlogvar, v->dz, v->eps, v->logvar, B, K);
    float *dout = v->enc.dact[v->enc.n_layers - 1]; /* (B, 2K) = [dmu | dlogvar] */
    const size_t row = (size_t)K * sizeof(float);
    CUDA_CHECK(cudaMemcpy2DAsync(dout, 2 * row, v->dmu, row, row, (size_t)B, cudaMemcpyDeviceToDevice, c->stream));
    CUDA_CHECK(
        cudaMemcpy2DAsync(dout + K, 2 * row, v->dlogvar, row, row, (size_t)B, cudaMemcpyDeviceToDevice, c->stream));
  }
  stack_backward(v, &v->enc, batch, &v->batch.x_t, values_t, NULL, NULL, B);

  double nll = 0.0, kl = 0.0;
  sum_rows(v, v->row_loss, B, &nll);
  if (v->is_vae) sum_rows(v, v->row_kl, B, &kl);
  nll /= norm;
  kl /= norm;
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
    const sr_param *p = &m->params.items[i];
    if (p->kind != SR_PARAM_WEIGHT) continue;
    penalty += v->l2_lambda * cu_sum_squares(&v->dev.ctx, dev_value(v, i), p->numel);
    cu_axpy(&v->dev.ctx, dev_grad(v, i), (float)(2.0 * v->l2_lambda), dev_value(v, i), p->numel);
  }
  return penalty;
}

static void vae_score(sr_model *m, const sr_csr *input, const int64_t *user_ids, float *scores) {
  (void)user_ids; /* the input row is the whole user representation */
  vae_model *v = (vae_model *)m;
  int64_t B = input->n_rows;
  if (B == 0) return;
  if (check_capacity(v, B) != SR_OK) SR_DIE("%s", sr_error_message());
  upload_batch(v, input, NULL, 0);
  const float *values = prepare_input(v, 0, 0, NULL);
  const float *z = encode(v, values, 0, 0);
  v->dec.act[v->dec.n_layers - 1] = v->logits;
  stack_forward(v, &v->dec, NULL, NULL, z, B);
  CUDA_CHECK(cudaMemcpyAsync(scores, v->logits, (size_t)(B * m->n_items) * sizeof(float), cudaMemcpyDeviceToHost,
                             v->dev.ctx.stream));
  CUDA_CHECK(cudaStreamSynchronize(v->dev.ctx.stream));
}

static void vae_destroy(sr_model *m) {
  vae_model *v = (vae_model *)m;
  cu_ctx_free(&v->dev.ctx); /* synchronises: nothing is in flight below */
  cu_buffer *bufs[] = {&v->staging, &v->staged, &v->input_values, &v->input_values_t, &v->losses_host};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cu_buffer_free(bufs[i]);
  if (v->copy_stream) CUDA_CHECK(cudaStreamDestroy(v->copy_stream));
  if (v->batch_ready) CUDA_CHECK(cudaEventDestroy(v->batch_ready));
  cu_arena_free(&v->arena);
  sr_params_free(&m->params);
  free(v);
}

/* Every member in declaration order (C++ designated initialisers). No host
 * activation estimate (memory_plan.h): activations live in the device arena,
 * whose allocation reports what it needs (cu_arena_alloc). */
#define VAE_OPS(model_name)                                                                                    \
  {                                                                                                            \
    .name = model_name, .samples = SR_SAMPLES_USERS, .forward_backward = vae_forward_backward,                 \
    .add_param_penalty = vae_add_param_penalty, .reduce_sparse = NULL, .update_sparse = NULL, .fit = NULL,     \
    .begin_eval = NULL, .score = vae_score, .write_state = NULL, .read_state = NULL, .activation_bytes = NULL, \
    .destroy = vae_destroy                                                                                     \
  }
static const sr_model_ops multvae_ops = VAE_OPS("multvae");
static const sr_model_ops multdae_ops = VAE_OPS("multdae");

int cu_vae_create(const sr_config *cfg, int64_t n_items, const sr_dist *dist, sr_model **out) {
  sr_model *host = NULL;
  /* The device trainer reduces whole gradients: no touched rows (params.h). */
  sr_config host_cfg = *cfg;
  host_cfg.dist.exchange_touched_rows = 0;
  SR_TRY(sr_vae_create(&host_cfg, n_items, dist, &host));
  if (host->items || sr_params_sharded(&host->params) > 0) {
    sr_model_destroy(host);
    return SR_FAIL(SR_EINVAL,
                   "item parallelism (dist.item_parallel > 1) does not run on the GPU yet; use "
                   "run.device: cpu or dist.item_parallel: 1");
  }
  vae_model *v = (vae_model *)sr_calloc(1, sizeof *v);
  v->staging.pinned_host = v->losses_host.pinned_host = 1;
  v->is_vae = cfg->model.type == SR_MODEL_MULTVAE;
  sr_model *m = &v->dev.base;
  m->ops = v->is_vae ? &multvae_ops : &multdae_ops;
  m->n_items = n_items;
  m->dist = host->dist;
  /* The registry, initialised by the CPU model, moves over; the rest of the
   * CPU model goes. */
  m->params = host->params;
  sr_params_init(&host->params);
  sr_model_destroy(host);
  v->latent = cfg->model.latent_dim;
  v->anneal_cap = cfg->model.anneal_cap;
  v->total_anneal_steps = cfg->model.total_anneal_steps;
  v->dropout = cfg->model.dropout;
  v->l2_lambda = cfg->model.l2_reg / (double)cfg->train.batch_size;
  v->seed = (uint64_t)cfg->run.seed;
  v->capacity =
      cfg->train.batch_size > cfg->train.eval_batch_size ? cfg->train.batch_size : cfg->train.eval_batch_size;
  stack_from_registry(&v->enc, &m->params, "encoder", !v->is_vae);
  stack_from_registry(&v->dec, &m->params, "decoder", 0);

  cu_ctx_init(&v->dev.ctx, cfg->run.precision);
  CUDA_CHECK(cudaStreamCreateWithFlags(&v->copy_stream, cudaStreamNonBlocking));
  CUDA_CHECK(cudaEventCreateWithFlags(&v->batch_ready, cudaEventDisableTiming));
  model_layout(v, &v->arena);
  int rc = cu_arena_alloc(&v->arena, "the model's parameters, Adam state and activations",
                          "lower train.batch_size or train.eval_batch_size (activations grow with both), or "
                          "model.hidden");
  if (rc != SR_OK) {
    vae_destroy(m);
    return rc;
  }
  model_layout(v, &v->arena);
  const sr_params *ps = &m->params;
  CUDA_CHECK(cudaMemcpy(v->dev.values, ps->values, (size_t)ps->total * sizeof(float), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemset(v->dev.grads, 0, (size_t)ps->dense_total * sizeof(float)));
  CUDA_CHECK(cudaMemset(v->dev.adam_m, 0, (size_t)ps->total * sizeof(float)));
  CUDA_CHECK(cudaMemset(v->dev.adam_v, 0, (size_t)ps->total * sizeof(float)));
  /* These ran on the legacy stream, which the (non-blocking) compute stream
   * does not wait for: finish them before anything writes the arenas there. */
  CUDA_CHECK(cudaDeviceSynchronize());
  *out = m;
  return SR_OK;
}

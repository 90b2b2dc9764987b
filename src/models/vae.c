/*
 * vae.c — Mult-VAE and Mult-DAE (vae.h), forward and backward written out.
 *
 * Both are two stacks of linear layers with tanh between them:
 *   encoder dims [I, hidden..., 2K (VAE) | K (DAE)], first layer sparse input
 *   decoder dims [K, hidden reversed..., I], no activation on the logits
 * The DAE's encoder output goes through tanh too (it is z); the VAE's is split
 * into mu and logvar and z is reparameterised from them.
 *
 * Item parallelism (item_parallel.h): the K ranks of a group hold items
 * [item_begin, item_end) of the two item layers, the rows of encoder.0.weight
 * and the columns of the last decoder layer (weight and bias); I below is
 * then this rank's item count. Every rank normalises and drops out the whole
 * input row, keeps its items' entries, and the (B, H) partial products of
 * the first layer are summed in the group; the middle layers run identically
 * on all K ranks. The logits (B, I) are this rank's items only: the softmax
 * combines the rows' statistics in the group, and the gradient w.r.t. the
 * last layer's input is summed in the group.
 */
#include "shardrec/vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/item_parallel.h"
#include "shardrec/log.h"
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
  /* Item parallelism: the group the item end of the stack is split over
   * (NULL: not split). The encoder's first layer (sparse input) then sums
   * its partial products over the group before the bias; the decoder's last
   * layer sums the gradient w.r.t. its input. */
  sr_item_grid *split_input, *split_output;
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
  /* Item parallelism (base.items == &grid): this rank's entries of the batch
   * rows, (B, I) with raw values (the softmax targets), their input values
   * and where each came from in the whole rows. */
  sr_item_grid grid;
  sr_csr local_rows;
  float *local_values;
  int64_t *local_source;
  size_t local_cap, local_source_cap;
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

/* Xavier-uniform weights, biases ~ N(0, 0.001^2) truncated (methods.md §1);
 * the fans are those of the whole tensor, also for a slice of it. */
static void stack_init(layer_stack *s, sr_params *ps, uint64_t seed) {
  for (int l = 0; l < s->n_layers; l++) {
    int64_t whole[SR_PARAM_MAX_DIM];
    sr_param_full_shape(&ps->items[s->weight[l]], whole);
    sr_param_init_xavier_uniform(ps, s->weight[l], seed, whole[0], whole[1]);
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
 * else the dense (B, dims[0]) matrix `dense_in`. Collective over the group
 * when the first layer's input is split. */
static int stack_forward(layer_stack *s, sr_params *ps, const sr_csr *x, const float *values, const float *dense_in,
                         int64_t B) {
  for (int l = 0; l < s->n_layers; l++) {
    const float *w = ps->items[s->weight[l]].value, *b = ps->items[s->bias[l]].value;
    int64_t out_dim = s->dims[l + 1];
    if (l == 0 && x) {
      sr_spmm_forward(s->act[0], x, values, w, out_dim);
      if (s->split_input) SR_TRY(sr_item_grid_sum(s->split_input, s->act[0], B * out_dim));
      add_bias_rows(s->act[0], b, B, out_dim);
    } else {
      const float *in = l == 0 ? dense_in : s->act[l - 1];
      sr_linear_forward(s->act[l], in, w, b, B, s->dims[l], out_dim);
    }
    if (layer_has_tanh(s, l)) sr_tanh_forward(s->act[l], s->act[l], B * out_dim);
  }
  return SR_OK;
}

static void report_ready(const sr_batch *batch, const layer_stack *s, int l) {
  if (!batch->grad_ready) return;
  batch->grad_ready(batch->grad_ready_ctx, s->bias[l]);
  batch->grad_ready(batch->grad_ready_ctx, s->weight[l]);
}

/* The rows of the first layer's weight that x's entries reached: the only
 * ones with a gradient (params.h touched_rows). */
static void mark_touched_rows(sr_param *w, const sr_csr *x) {
  if (!w->touched_rows) return;
  memset(w->touched_rows, 0, (size_t)w->shape[0]);
  for (int64_t k = 0; k < x->nnz; k++) w->touched_rows[x->indices[k]] = 1;
}

/* Backward through the stack from dact[last] (filled by the caller). Parameter
 * gradients accumulate and are reported final layer by layer; d_dense_in
 * (B, dims[0]), if non-NULL, accumulates the gradient w.r.t. a dense input
 * (it must hold no other term when the last layer's output is split: the
 * group sums it). */
static int stack_backward(layer_stack *s, sr_params *ps, const sr_batch *batch, const sr_csr *x, const float *values,
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
      mark_touched_rows(w, x);
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
    /* (B, OUT_local) . (IN, OUT_local)^T is this rank's share of din. */
    if (l == s->n_layers - 1 && s->split_output && din) SR_TRY(sr_item_grid_sum(s->split_output, din, B * in_dim));
  }
  return SR_OK;
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

/* Normalised (and, in training, dropped-out) values of the input rows, and
 * the rows the model computes with (*rows): x itself, or with item
 * parallelism this rank's entries of x (v->local_rows). The norm and the
 * dropout draws are those of the whole row: the k-th stored entry of row r
 * uses the k-th draw of r's stream whoever holds it. */
static const float *prepare_input(vae_model *v, const sr_csr *x, int training, const int64_t *sample_ids,
                                  uint64_t step, const sr_csr **rows) {
  sr_grow(&v->input_values, &v->input_values_cap, (size_t)(x->nnz > 0 ? x->nnz : 1));
  sr_csr_l2norm_values(v->input_values, x);
  if (training && v->dropout > 0)
    sr_csr_dropout_values(v->input_values, x, (float)v->dropout, v->seed, SR_RNG_DROPOUT, step, sample_ids);
  *rows = x;
  if (!v->base.items) return v->input_values;
  sr_csr_free(&v->local_rows);
  sr_grow(&v->local_source, &v->local_source_cap, (size_t)(x->nnz > 0 ? x->nnz : 1));
  sr_csr_slice_columns(x, v->grid.item_begin, v->grid.item_end, &v->local_rows, v->local_source);
  sr_grow(&v->local_values, &v->local_cap, (size_t)(v->local_rows.nnz > 0 ? v->local_rows.nnz : 1));
  for (int64_t k = 0; k < v->local_rows.nnz; k++) v->local_values[k] = v->input_values[v->local_source[k]];
  *rows = &v->local_rows;
  return v->local_values;
}

/* *z (B, K) for the decoder: the DAE's tanh encoder output, or the VAE's
 * mu (evaluation) / mu + eps * sigma (training). */
static int encode(vae_model *v, const sr_csr *x, const float *values, int training, const int64_t *sample_ids,
                  uint64_t step, const float **z) {
  int64_t B = x->n_rows, K = v->latent;
  SR_TRY(stack_forward(&v->enc, &v->base.params, x, values, NULL, B));
  const float *out = v->enc.act[v->enc.n_layers - 1];
  *z = out;
  if (!v->is_vae) return SR_OK;
  for (int64_t r = 0; r < B; r++) { /* out (B, 2K) = [mu | logvar] */
    memcpy(v->mu + r * K, out + r * 2 * K, (size_t)K * sizeof(float));
    memcpy(v->logvar + r * K, out + r * 2 * K + K, (size_t)K * sizeof(float));
  }
  *z = v->mu;
  if (!training) return SR_OK;
  sr_reparam_forward(v->z, v->eps, v->mu, v->logvar, B, K, v->seed, step, sample_ids);
  *z = v->z;
  return SR_OK;
}

double sr_vae_beta(double anneal_cap, int64_t total_anneal_steps, uint64_t updates) {
  double ramp = (double)updates / (double)total_anneal_steps;
  return ramp < anneal_cap ? ramp : anneal_cap;
}

/* The item columns this rank computes: all items, or its slice. */
static int64_t local_items(const vae_model *v) {
  return v->base.items ? v->grid.item_end - v->grid.item_begin : v->base.n_items;
}

/* The forward and backward pass; collective over the group with item
 * parallelism (the group's ranks hold the same rows, so they all get here
 * with the same B, 0 included). */
static int forward_backward(vae_model *v, const sr_batch *batch, sr_step_stats *stats) {
  sr_model *m = &v->base;
  const sr_csr *whole = batch->rows, *x;
  int64_t B = whole->n_rows, K = v->latent, I = local_items(v);
  float norm = (float)batch->global_batch;
  if (B == 0) return SR_OK; /* this rank holds no rows of a short last batch */
  ensure_capacity(v, B);
  if (B > v->logits_capacity) {
    free(v->logits);
    v->logits = sr_aligned_calloc((size_t)(B * I) * sizeof(float));
    v->logits_capacity = B;
  }
  const float *values = prepare_input(v, whole, 1, batch->sample_ids, batch->step, &x), *z;
  SR_TRY(encode(v, x, values, 1, batch->sample_ids, batch->step, &z));

  /* decoder -> logits (B, I); the NLL overwrites them with dlogits */
  v->dec.act[v->dec.n_layers - 1] = v->logits;
  v->dec.dact[v->dec.n_layers - 1] = v->logits;
  SR_TRY(stack_forward(&v->dec, &m->params, NULL, NULL, z, B));
  double nll;
  if (m->items)
    SR_TRY(sr_item_grid_softmax_nll(m->items, v->logits, v->logits, x, B, norm, &nll));
  else
    nll = sr_softmax_nll(v->logits, v->logits, x, B, I, norm);

  double kl = 0.0, beta = 0.0;
  float *dz = v->is_vae ? v->dz : v->enc.dact[v->enc.n_layers - 1];
  memset(dz, 0, (size_t)(B * K) * sizeof(float));
  if (v->is_vae) {
    beta = sr_vae_beta(v->anneal_cap, v->total_anneal_steps, batch->step);
    memset(v->dmu, 0, (size_t)(B * K) * sizeof(float));
    memset(v->dlogvar, 0, (size_t)(B * K) * sizeof(float));
    kl = sr_gaussian_kl(v->dmu, v->dlogvar, v->mu, v->logvar, B, K, norm, (float)beta);
  }
  SR_TRY(stack_backward(&v->dec, &m->params, batch, NULL, NULL, z, dz, B));
  if (v->is_vae) {
    sr_reparam_backward(v->dmu, v->dlogvar, v->dz, v->eps, v->logvar, B, K);
    float *dout = v->enc.dact[v->enc.n_layers - 1]; /* (B, 2K) = [dmu | dlogvar] */
    for (int64_t r = 0; r < B; r++) {
      memcpy(dout + r * 2 * K, v->dmu + r * K, (size_t)K * sizeof(float));
      memcpy(dout + r * 2 * K + K, v->dlogvar + r * K, (size_t)K * sizeof(float));
    }
  }
  SR_TRY(stack_backward(&v->enc, &m->params, batch, x, values, NULL, NULL, B));

  /* Every rank of a group computed the same loss: its shard 0 reports it. */
  if (m->items && v->grid.shard != 0) nll = kl = 0.0;
  stats->terms[0] = nll;
  stats->terms[1] = kl;
  stats->beta = beta;
  stats->loss = nll + beta * kl;
  return SR_OK;
}

static int vae_forward_backward(sr_model *m, const sr_batch *batch, sr_step_stats *stats) {
  vae_model *v = (vae_model *)m;
  memset(stats, 0, sizeof *stats);
  stats->n_terms = v->is_vae ? 2 : 1;
  stats->term_names[0] = "neg_ll";
  if (v->is_vae) stats->term_names[1] = "kl";
  return forward_backward(v, batch, stats);
}

/* DAE: lambda * sum over weight matrices of ||W||^2 (biases excluded); the
 * slices of split weights add their squares over the group. */
static double vae_add_param_penalty(sr_model *m) {
  vae_model *v = (vae_model *)m;
  if (v->is_vae || v->l2_lambda == 0.0) return 0.0;
  double squares[2] = {0.0, 0.0}; /* replicated weights, this rank's slices */
  for (int i = 0; i < m->params.count; i++) {
    sr_param *p = &m->params.items[i];
    if (p->kind != SR_PARAM_WEIGHT) continue;
    squares[p->shard.dim >= 0] += sr_sum_squares(p->value, p->numel);
    sr_axpy(p->grad, (float)(2.0 * v->l2_lambda), p->value, p->numel);
  }
  if (m->items && sr_dist_sum_f64(&v->grid.group, &squares[1], 1) != SR_OK)
    SR_DIE("DAE penalty: %s", sr_error_message()); /* the op cannot fail: a lost rank ends the job */
  return v->l2_lambda * (squares[0] + squares[1]);
}

static void vae_score(sr_model *m, const sr_csr *input, const int64_t *user_ids, float *scores) {
  (void)user_ids; /* the input row is the whole user representation */
  vae_model *v = (vae_model *)m;
  int64_t B = input->n_rows;
  if (B == 0) return;
  ensure_capacity(v, B);
  const sr_csr *x;
  const float *values = prepare_input(v, input, 0, NULL, 0, &x), *z;
  v->dec.act[v->dec.n_layers - 1] = scores;
  int rc = encode(v, x, values, 0, NULL, 0, &z);
  if (rc == SR_OK) rc = stack_forward(&v->dec, &m->params, NULL, NULL, z, B);
  v->dec.act[v->dec.n_layers - 1] = NULL;
  if (rc != SR_OK) SR_DIE("scoring: %s", sr_error_message()); /* the op cannot fail: a lost rank ends the job */
}

/* Bytes of one stack's buffers at B rows (the caller supplies the decoder's output). */
static int64_t stack_bytes(const layer_stack *s, int64_t B, int own_last) {
  int64_t floats = 0, widest = 0;
  for (int l = 0; l < s->n_layers; l++) {
    if (l < s->n_layers - 1 || own_last) floats += 2 * B * s->dims[l + 1];
    if (s->dims[l + 1] > widest) widest = s->dims[l + 1];
  }
  return (floats + B * widest) * (int64_t)sizeof(float);
}

/* The row buffers grow to the larger batch and stay; the logits are
 * training's (evaluation writes into the caller's scores). The input values
 * (a few per row) are not counted. */
static int64_t vae_activation_bytes(const sr_model *m, int64_t train_rows, int64_t eval_rows) {
  const vae_model *v = (const vae_model *)m;
  const int64_t B = train_rows > eval_rows ? train_rows : eval_rows;
  const int64_t latent = v->is_vae ? 7 * B * v->latent * (int64_t)sizeof(float) : 0;
  return stack_bytes(&v->enc, B, 1) + stack_bytes(&v->dec, B, 0) + latent +
         train_rows * local_items(v) * (int64_t)sizeof(float);
}

static void vae_destroy(sr_model *m) {
  vae_model *v = (vae_model *)m;
  stack_free(&v->enc, 1);
  stack_free(&v->dec, 0);
  float *bufs[] = {v->mu, v->logvar, v->eps,          v->z,           v->dmu, v->dlogvar,
                   v->dz, v->logits, v->input_values, v->local_values};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  free(v->local_source);
  sr_csr_free(&v->local_rows);
  if (m->items) sr_item_grid_free(&v->grid);
  sr_params_free(&m->params);
  free(v);
}

/* The two models differ only in their name (and in what vae_model says). */
#define VAE_OPS(model_name)                                                                                   \
  {                                                                                                           \
    .name = model_name, .samples = SR_SAMPLES_USERS, .forward_backward = vae_forward_backward,                \
    .add_param_penalty = vae_add_param_penalty, .score = vae_score, .activation_bytes = vae_activation_bytes, \
    .destroy = vae_destroy                                                                                    \
  }
static const sr_model_ops multvae_ops = VAE_OPS("multvae");
static const sr_model_ops multdae_ops = VAE_OPS("multdae");

/* Item parallelism over dist when dist.item_parallel says so (a single
 * process ignores it): the grid, and the stacks' item ends split over it. */
static int split_items(vae_model *v, const sr_config *cfg, const sr_dist *dist) {
  int replica, replicas;
  SR_TRY(sr_item_grid_data_part(dist, cfg->dist.item_parallel, &replica, &replicas));
  if (replicas == dist->size) return SR_OK; /* K = 1 */
  SR_TRY(sr_item_grid_init(&v->grid, dist, cfg->dist.item_parallel, v->base.n_items));
  v->base.items = &v->grid;
  v->enc.split_input = v->dec.split_output = &v->grid;
  return SR_OK;
}

/* With item parallelism: encoder.0.weight (I, H) holds this rank's rows,
 * the last decoder layer's weight (H, I) and bias (I) its columns. */
static void declare_item_slices(vae_model *v) {
  if (!v->base.items) return;
  sr_params *ps = &v->base.params;
  const int64_t begin = v->grid.item_begin, I = v->base.n_items;
  const int last = v->dec.n_layers - 1;
  sr_params_set_shard(ps, v->enc.weight[0], 0, begin, I);
  sr_params_set_shard(ps, v->dec.weight[last], 1, begin, I);
  sr_params_set_shard(ps, v->dec.bias[last], 0, begin, I);
}

int sr_vae_create(const sr_config *cfg, int64_t n_items, const sr_dist *dist, sr_model **out) {
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
  sr_params_init(&v->base.params);
  int rc = dist ? split_items(v, cfg, dist) : SR_OK;
  if (rc != SR_OK) {
    vae_destroy(&v->base);
    return rc;
  }

  int nh = cfg->model.n_hidden;
  int64_t enc_dims[MAX_STACK + 1], dec_dims[MAX_STACK + 1];
  enc_dims[0] = local_items(v);
  dec_dims[0] = v->latent;
  for (int l = 0; l < nh; l++) {
    enc_dims[l + 1] = cfg->model.hidden[l];
    dec_dims[l + 1] = cfg->model.hidden[nh - 1 - l];
  }
  enc_dims[nh + 1] = v->is_vae ? 2 * v->latent : v->latent;
  dec_dims[nh + 1] = local_items(v);

  stack_register(&v->enc, &v->base.params, "encoder", enc_dims, nh + 1, !v->is_vae);
  stack_register(&v->dec, &v->base.params, "decoder", dec_dims, nh + 1, 0);
  declare_item_slices(v);
  if (cfg->dist.exchange_touched_rows) sr_params_set_row_sparse(&v->base.params, v->enc.weight[0]);
  sr_params_finalize(&v->base.params);
  stack_init(&v->enc, &v->base.params, v->seed);
  stack_init(&v->dec, &v->base.params, v->seed);
  *out = &v->base;
  return SR_OK;
}

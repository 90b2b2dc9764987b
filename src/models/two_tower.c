/*
 * two_tower.c — the SSL-augmented two-tower retrieval model (two_tower.h),
 * forward and backward written out.
 *
 * Parameters are registered dense first (both MLPs, then every feature's
 * default embedding), embedding tables last: the trainer reduces and updates
 * the dense prefix and leaves the tables (the registry's sparse tail, which
 * has no dense gradient buffer) to update_sparse.
 */
#include "shardrec/two_tower.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/contrastive.h"
#include "shardrec/embedding.h"
#include "shardrec/error.h"
#include "shardrec/exchange.h"
#include "shardrec/feature_mask.h"
#include "shardrec/h5io.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"
#include "shardrec/nn.h"
#include "shardrec/rng.h"
#include "shardrec/shard.h"

#define L2_EPS 1e-6f
#define MAX_LINEAR (SR_MAX_LAYERS + 1)
#define EVAL_CHUNK 4096 /* items embedded per pass in evaluation */

typedef enum { SOURCE_TABLE = 0, SOURCE_ITEM_ID, SOURCE_USER_ID, SOURCE_HISTORY } feature_source;

/* SR_RNG_DROPOUT substreams (rng.h) of the training draws: history dropout,
 * then the tower dropout of each kind of pass, hidden layer l using the
 * pass's substream + l (l < SR_MAX_LAYERS < 16). */
enum {
  STREAM_HISTORY = 1,
  STREAM_QUERY_MLP = 16,
  STREAM_ITEM_MLP = 32,
  STREAM_VIEW1_MLP = 48,
  STREAM_VIEW2_MLP = 64,
  STREAM_UNIFORM_MLP = 80
};

typedef struct {
  char name[SR_FEATURE_NAME_MAX];
  feature_source source;
  int multi_valued;
  int64_t vocab;
  sr_csr values;          /* SOURCE_TABLE: (entities, vocab), copied from the dataset */
  int table, default_row; /* parameter indices: (vocab, E) and (E) */
  sr_sparse_grad grad;    /* the table's gradient, accumulated over the step's passes */
  /* Row-sharded table: rank r owns rows [bounds[r], bounds[r + 1]) (size + 1
   * entries); NULL: every rank holds the whole table. */
  int64_t *bounds;
} tower_feature;

typedef struct {
  const char *name; /* "query" | "item": parameter name prefix */
  int n_features;
  tower_feature feature[SR_MAX_TOWER_FEATURES];
  int n_layers;                 /* linear layers; ReLU after all but the last */
  int64_t dims[MAX_LINEAR + 1]; /* dims[0] = n_features * E, dims[n_layers] = d */
  int weight[MAX_LINEAR], bias[MAX_LINEAR];
} tower;

/* One tower's forward over R entities and everything its backward needs. */
typedef struct {
  int64_t R, cap; /* rows in use, rows allocated */
  sr_csr bag[SR_MAX_TOWER_FEATURES];
  uint8_t *keep[SR_MAX_TOWER_FEATURES]; /* (nnz) value dropout, or NULL: every value kept */
  int masked[SR_MAX_TOWER_FEATURES];    /* the feature is masked for every row (SSL view) */
  uint8_t *all_rows;                    /* (cap) ones: the row mask of a masked feature */
  float *act[MAX_LINEAR + 1];           /* act[0] (R, dims[0]) the concatenated features; act[l+1] layer l's output */
  float *dact[MAX_LINEAR + 1];          /* gradients w.r.t. act[l] */
  float *dpre;                          /* (R, widest) gradient w.r.t. a hidden layer's pre-activation */
  float *feature_rows;                  /* (R, E) one feature's embedding rows or their gradient */
  float *out, *norms;                   /* (R, d) normalised output, (R) its norms */
  /* Training-only regularisers of this use (pass_bags resets them to off). */
  float dropout;                    /* tower dropout after each hidden ReLU (0: none) */
  uint32_t dropout_stream;          /* STREAM_*_MLP of the pass */
  uint64_t step;                    /* the training step (keys the draws) */
  const int64_t *row_keys;          /* (R) global sample index of each row (keys the draws) */
  float *drop_mask[MAX_LINEAR + 1]; /* (R, dims[l]) 0 or 1/(1-p) for hidden act[l] */
  size_t drop_mask_cap[MAX_LINEAR + 1];
  float l2_scale;  /* loss.embedding_l2 / N on the rows this pass looks up (0: none) */
  double l2_value; /* the penalty of those rows, summed by tower_forward */
} tower_pass;

typedef struct {
  sr_model base;
  uint64_t seed;
  int64_t E, d; /* feature embedding width, tower output width */
  tower query, item;
  /* One pass per use; a pass's buffers are sized by its tower's layer widths,
   * so a pass always serves the same tower (qpass: query, the others: item).
   * Evaluation reuses qpass and ipass. */
  tower_pass qpass, ipass, view1, view2, upass; /* upass: the uniform negatives */
  /* loss */
  int loss_type;
  float tau, ssl_tau, focal_gamma, auc_tau;
  sr_ms_params ms;
  int logq;
  float logq_factor; /* log p enters the kernels' (s - log p)/tau as this times log p */
  sr_freq_estimator freq;
  int64_t freq_last_step; /* the estimator has seen the batches of steps <= this (-1: none) */
  int remove_hits;        /* loss.remove_accidental_hits */
  int64_t n_uniform;      /* loss.uniform_negatives: M, global */
  /* regularisers (issue 18) */
  float history_dropout, tower_dropout, embedding_l2;
  int64_t *item_counts; /* static logQ: this shard's training count of each item, until summed */
  float *static_log_p;  /* static logQ: (n_items), from the counts of every shard at the first step */
  /* SSL */
  int ssl, masking;
  float ssl_weight, value_dropout;
  int64_t ssl_batch; /* M, global */
  double *mi;        /* (F, F) mutual information of the item tower's features (CFM) */
  /* optimizer of the tables */
  int embedding_optimizer;
  int cross_device;
  const sr_dist *dist; /* the ranks the row-sharded tables are split over (NULL: none are) */
  /* With row-sharded tables, evaluation splits the items too (base.items =
   * &scoring): each rank embeds and scores its item range only. */
  sr_item_grid scoring;
  float *item_embeddings; /* (this rank's scored items, d) evaluation-mode item embeddings (begin_eval) */
  /* step scratch, grown as needed */
  float *candidates, *dcandidates, *log_p, *dq, *dx, *du, *gathered, *dgathered;
  size_t candidates_cap, dcandidates_cap, log_p_cap, dq_cap, dx_cap, du_cap, gathered_cap, dgathered_cap;
  int64_t *ids, *positions, *global_ids, *global_positions, *ssl_ids, *ssl_pos, *item_ids, *candidate_ids,
      *uniform_ids, *uniform_pos;
  size_t ids_cap, positions_cap, global_ids_cap, global_positions_cap, ssl_ids_cap, ssl_pos_cap, item_ids_cap,
      candidate_ids_cap, uniform_ids_cap, uniform_pos_cap;
  /* a row-sharded table's lookup: the bag's distinct ids, their rows fetched
   * from the owners, and the bag renumbered into them */
  int64_t *fetch_ids;
  float *fetched;
  size_t fetch_ids_cap, fetched_cap;
  sr_csr fetch_bag;
  double exchange_seconds; /* training steps' time in row-sharded table exchanges */
} two_tower;

/* ---- building --------------------------------------------------------------------- */

static const sr_feature *find_feature(const sr_feature *features, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(features[i].name, name) == 0) return &features[i];
  return NULL;
}

static int feature_missing(const char *key, int index, const char *kind, const char *name, const sr_feature *have,
                           int n_have, const char *builtin) {
  char list[512] = "";
  size_t used = (size_t)snprintf(list, sizeof list, "%s", builtin);
  for (int i = 0; i < n_have && used < sizeof list; i++)
    used += (size_t)snprintf(list + used, sizeof list - used, ", %s", have[i].name);
  return SR_FAIL(SR_ECONFIG, "%s[%d]: no %s feature '%s' in the dataset (available: %s)", key, index, kind, name,
                 list);
}

static void add_feature(tower *t, const char *name, feature_source source, int multi_valued, int64_t vocab,
                        const sr_csr *values) {
  tower_feature *f = &t->feature[t->n_features++];
  snprintf(f->name, sizeof f->name, "%s", name);
  f->source = source;
  f->multi_valued = multi_valued;
  f->vocab = vocab;
  if (values) sr_csr_copy(values, &f->values);
}

static int has_feature(const tower *t, const char *name) {
  for (int i = 0; i < t->n_features; i++)
    if (strcmp(t->feature[i].name, name) == 0) return 1;
  return 0;
}

/* Longest feature name that fits parameter names such as "query.NAME.default". */
#define FEATURE_NAME_ROOM (SR_PARAM_NAME_MAX - 1 - (int)sizeof("query..default") + 1)

static int check_room(const tower *t, const char *key, const char *name) {
  if (has_feature(t, name)) return SR_FAIL(SR_ECONFIG, "%s: feature '%s' is listed twice", key, name);
  if ((int)strlen(name) > FEATURE_NAME_ROOM)
    return SR_FAIL(SR_ECONFIG, "%s: feature name '%s' is longer than %d characters", key, name, FEATURE_NAME_ROOM);
  if (t->n_features == SR_MAX_TOWER_FEATURES)
    return SR_FAIL(SR_ECONFIG, "%s: more than %d features", key, SR_MAX_TOWER_FEATURES);
  return SR_OK;
}

static int build_query_features(tower *t, const sr_config *cfg, const sr_dataset *data) {
  const char *key = "model.query_features";
  for (int i = 0; i < cfg->model.n_query_features; i++) {
    const char *name = cfg->model.query_features[i];
    SR_TRY(check_room(t, key, name));
    if (strcmp(name, "history") == 0) {
      add_feature(t, name, SOURCE_HISTORY, 1, data->n_items, NULL);
    } else if (strcmp(name, "user_id") == 0) {
      add_feature(t, name, SOURCE_USER_ID, 0, data->n_users, NULL);
    } else {
      const sr_feature *f = find_feature(data->user_features, data->n_user_features, name);
      if (!f)
        return feature_missing(key, i, "user", name, data->user_features, data->n_user_features, "history, user_id");
      add_feature(t, name, SOURCE_TABLE, f->multi_valued, f->vocab_size, &f->values);
    }
  }
  return SR_OK;
}

/* ids (n_items, n_items): row i = {i}, but empty for a cold-start item, whose
 * id embedding (never trained) is replaced by the feature's learned default. */
static void item_ids_but_cold(const sr_dataset *data, sr_csr *ids) {
  sr_csr_alloc(ids, data->n_items, data->n_items, data->n_items, 0);
  int64_t nnz = 0, next_cold = 0;
  for (int64_t i = 0; i < data->n_items; i++) {
    if (next_cold < data->n_cold_items && data->cold_items[next_cold] == i)
      next_cold++;
    else
      ids->indices[nnz++] = (int32_t)i;
    ids->indptr[i + 1] = nnz;
  }
  ids->nnz = nnz;
}

static int build_item_features(tower *t, const sr_config *cfg, const sr_dataset *data) {
  const char *key = "model.item_features";
  for (int i = 0; i < cfg->model.n_item_features; i++) {
    const char *name = cfg->model.item_features[i];
    if (strcmp(name, "all") == 0) {
      for (int k = 0; k < data->n_item_features; k++) {
        const sr_feature *f = &data->item_features[k];
        SR_TRY(check_room(t, key, f->name));
        add_feature(t, f->name, SOURCE_TABLE, f->multi_valued, f->vocab_size, &f->values);
      }
      continue;
    }
    SR_TRY(check_room(t, key, name));
    if (strcmp(name, "item_id") == 0 && data->n_cold_items > 0) {
      sr_csr ids;
      item_ids_but_cold(data, &ids);
      add_feature(t, name, SOURCE_TABLE, 0, data->n_items, &ids);
      sr_csr_free(&ids);
    } else if (strcmp(name, "item_id") == 0) {
      add_feature(t, name, SOURCE_ITEM_ID, 0, data->n_items, NULL);
    } else {
      const sr_feature *f = find_feature(data->item_features, data->n_item_features, name);
      if (!f)
        return feature_missing(key, i, "item", name, data->item_features, data->n_item_features, "item_id, all");
      add_feature(t, name, SOURCE_TABLE, f->multi_valued, f->vocab_size, &f->values);
    }
  }
  return SR_OK;
}

static void register_mlp(tower *t, sr_params *ps, const sr_config *cfg, int64_t E, int64_t d) {
  t->n_layers = cfg->model.n_tower_hidden + 1;
  t->dims[0] = t->n_features * E;
  for (int l = 0; l < cfg->model.n_tower_hidden; l++) t->dims[l + 1] = cfg->model.tower_hidden[l];
  t->dims[t->n_layers] = d;
  for (int l = 0; l < t->n_layers; l++) {
    char name[SR_PARAM_NAME_MAX];
    int64_t wshape[2] = {t->dims[l], t->dims[l + 1]}, bshape[1] = {t->dims[l + 1]};
    snprintf(name, sizeof name, "%s.mlp.%d.weight", t->name, l);
    t->weight[l] = sr_params_add(ps, name, SR_PARAM_WEIGHT, 2, wshape);
    snprintf(name, sizeof name, "%s.mlp.%d.bias", t->name, l);
    t->bias[l] = sr_params_add(ps, name, SR_PARAM_BIAS, 1, bshape);
  }
}

static void register_defaults(tower *t, sr_params *ps, int64_t E) {
  for (int f = 0; f < t->n_features; f++) {
    char name[SR_PARAM_NAME_MAX];
    int len = snprintf(name, sizeof name, "%s.%s.default", t->name, t->feature[f].name);
    SR_ASSERT(len < (int)sizeof name); /* check_room bounds feature names */
    t->feature[f].default_row = sr_params_add(ps, name, SR_PARAM_EMBEDDING, 1, &E);
  }
}

/* With `dist` (row sharding over more than one rank), a table of at least
 * one row per rank is split into contiguous ranges balanced by row count;
 * smaller tables (a few feature values) stay whole on every rank. */
static void register_tables(tower *t, sr_params *ps, int64_t E, const sr_dist *dist) {
  for (int f = 0; f < t->n_features; f++) {
    tower_feature *ft = &t->feature[f];
    char name[SR_PARAM_NAME_MAX];
    int64_t shape[2] = {ft->vocab, E};
    int len = snprintf(name, sizeof name, "%s.%s.table", t->name, ft->name);
    SR_ASSERT(len < (int)sizeof name); /* check_room bounds feature names */
    const int split = dist && ft->vocab >= dist->size;
    if (split) {
      ft->bounds = sr_malloc((size_t)(dist->size + 1) * sizeof *ft->bounds);
      for (int r = 0; r < dist->size; r++)
        sr_shard_even_range(ft->vocab, r, dist->size, &ft->bounds[r], &ft->bounds[r + 1]);
      shape[0] = ft->bounds[dist->rank + 1] - ft->bounds[dist->rank];
    }
    ft->table = sr_params_add(ps, name, SR_PARAM_EMBEDDING, 2, shape);
    if (split) sr_params_set_shard(ps, ft->table, 0, ft->bounds[dist->rank], ft->vocab);
    sr_sparse_grad_init(&ft->grad, E);
  }
}

/* Xavier-uniform MLP weights, zero biases; embeddings (tables and defaults)
 * ~ N(0, 1/E) truncated, so a mean-pooled feature starts at unit scale. */
static void init_tower(tower *t, sr_params *ps, uint64_t seed, int64_t E) {
  for (int l = 0; l < t->n_layers; l++)
    sr_param_init_xavier_uniform(ps, t->weight[l], seed, t->dims[l], t->dims[l + 1]);
  for (int f = 0; f < t->n_features; f++) {
    sr_param_init_truncated_normal(ps, t->feature[f].table, seed, 1.0f / sqrtf((float)E));
    sr_param_init_truncated_normal(ps, t->feature[f].default_row, seed, 1.0f / sqrtf((float)E));
  }
}

/* ---- one tower's forward and backward ------------------------------------------------ */

static void grow_f32(float **buf, size_t *cap, int64_t n) { sr_grow(buf, cap, (size_t)(n > 0 ? n : 1)); }
static void grow_i64(int64_t **buf, size_t *cap, int64_t n) { sr_grow(buf, cap, (size_t)(n > 0 ? n : 1)); }

static void pass_reserve(const tower *t, tower_pass *p, int64_t R, int64_t E) {
  p->R = R;
  if (R <= p->cap) return;
  int64_t widest = 1;
  for (int l = 0; l <= t->n_layers; l++) {
    free(p->act[l]);
    free(p->dact[l]);
    p->act[l] = sr_aligned_calloc((size_t)(R * t->dims[l]) * sizeof(float));
    p->dact[l] = sr_aligned_calloc((size_t)(R * t->dims[l]) * sizeof(float));
    if (t->dims[l] > widest) widest = t->dims[l];
  }
  free(p->dpre);
  free(p->feature_rows);
  free(p->out);
  free(p->norms);
  free(p->all_rows);
  p->dpre = sr_aligned_calloc((size_t)(R * widest) * sizeof(float));
  p->feature_rows = sr_aligned_calloc((size_t)(R * E) * sizeof(float));
  p->out = sr_aligned_calloc((size_t)(R * t->dims[t->n_layers]) * sizeof(float));
  p->norms = sr_aligned_calloc((size_t)R * sizeof(float));
  p->all_rows = sr_malloc((size_t)R);
  memset(p->all_rows, 1, (size_t)R);
  p->cap = R;
}

static void pass_clear(tower_pass *p) {
  for (int f = 0; f < SR_MAX_TOWER_FEATURES; f++) {
    sr_csr_free(&p->bag[f]);
    free(p->keep[f]);
    p->keep[f] = NULL;
    p->masked[f] = 0;
  }
  p->dropout = 0.0f;
  p->row_keys = NULL;
  p->l2_scale = 0.0f;
  p->l2_value = 0.0;
}

static void pass_free(tower_pass *p) {
  pass_clear(p);
  for (int l = 0; l <= MAX_LINEAR; l++) {
    free(p->act[l]);
    free(p->dact[l]);
    free(p->drop_mask[l]);
  }
  free(p->dpre);
  free(p->feature_rows);
  free(p->out);
  free(p->norms);
  free(p->all_rows);
}

/* bag (R, vocab): row r = {ids[r]}. */
static void bag_of_ids(sr_csr *bag, const int64_t *ids, int64_t R, int64_t vocab) {
  sr_csr_alloc(bag, R, vocab, R, 0);
  for (int64_t r = 0; r < R; r++) {
    bag->indptr[r + 1] = r + 1;
    bag->indices[r] = (int32_t)ids[r];
  }
}

/* bag (R, n_items): row r = the items of rows[r], without targets[r] when
 * targets is non-NULL (a training pair must not see its own answer). */
static void bag_of_history(sr_csr *bag, const sr_csr *rows, const int32_t *targets) {
  sr_csr_alloc(bag, rows->n_rows, rows->n_cols, rows->nnz, 0);
  int64_t k = 0;
  for (int64_t r = 0; r < rows->n_rows; r++) {
    for (int64_t e = rows->indptr[r]; e < rows->indptr[r + 1]; e++)
      if (!targets || rows->indices[e] != targets[r]) bag->indices[k++] = rows->indices[e];
    bag->indptr[r + 1] = k;
  }
  bag->nnz = k;
}

/* Builds every feature's bag for R entities: `ids` are item ids (item tower)
 * or user ids (query tower, with their history rows and targets). */
static void pass_bags(const tower *t, tower_pass *p, const int64_t *ids, int64_t R, const sr_csr *history,
                      const int32_t *targets) {
  pass_clear(p);
  for (int f = 0; f < t->n_features; f++) {
    const tower_feature *ft = &t->feature[f];
    switch (ft->source) {
      case SOURCE_TABLE:
        sr_csr_gather_rows(&ft->values, ids, R, &p->bag[f]);
        break;
      case SOURCE_ITEM_ID:
      case SOURCE_USER_ID:
        bag_of_ids(&p->bag[f], ids, R, ft->vocab);
        break;
      case SOURCE_HISTORY:
        bag_of_history(&p->bag[f], history, targets);
        break;
    }
  }
}

static int compare_i64(const void *pa, const void *pb) {
  const int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
  return (a > b) - (a < b);
}

/* The rows a bag of a row-sharded table looks up, fetched from their owners
 * (collective): *table = the fetched rows, *bag = the bag renumbered into
 * them (same entries in the same order, so the forward sums what the whole
 * table would give, in the same order). */
static int fetch_bag_rows(two_tower *tt, const tower_feature *ft, const sr_csr *bag, const float *local,
                          const float **table, const sr_csr **renumbered) {
  int64_t n = 0;
  sr_grow(&tt->fetch_ids, &tt->fetch_ids_cap, (size_t)(bag->nnz > 0 ? bag->nnz : 1));
  for (int64_t k = 0; k < bag->nnz; k++) tt->fetch_ids[k] = bag->indices[k];
  qsort(tt->fetch_ids, (size_t)bag->nnz, sizeof *tt->fetch_ids, compare_i64);
  for (int64_t k = 0; k < bag->nnz; k++)
    if (k == 0 || tt->fetch_ids[k] != tt->fetch_ids[n - 1]) tt->fetch_ids[n++] = tt->fetch_ids[k];
  grow_f32(&tt->fetched, &tt->fetched_cap, n * tt->E);
  SR_TRY(sr_fetch_rows_f32(tt->dist, ft->bounds, local, tt->E, tt->fetch_ids, n, tt->fetched));
  sr_csr_free(&tt->fetch_bag);
  sr_csr_alloc(&tt->fetch_bag, bag->n_rows, n, bag->nnz, 0);
  memcpy(tt->fetch_bag.indptr, bag->indptr, (size_t)(bag->n_rows + 1) * sizeof *bag->indptr);
  for (int64_t k = 0; k < bag->nnz; k++) {
    const int64_t *at = bsearch(&(int64_t){bag->indices[k]}, tt->fetch_ids, (size_t)n, sizeof *at, compare_i64);
    tt->fetch_bag.indices[k] = (int32_t)(at - tt->fetch_ids);
  }
  *table = tt->fetched;
  *renumbered = &tt->fetch_bag;
  return SR_OK;
}

/* p->out (R, d) from the bags (and masks / keeps) already in p. Collective
 * when a table is row-sharded (every rank runs the same passes, R may be 0);
 * the time in its exchanges is added to *clock unless clock is NULL. */
static int tower_forward(two_tower *tt, tower *t, tower_pass *p, double *clock) {
  sr_params *ps = &tt->base.params;
  const int64_t R = p->R, width = t->dims[0], E = tt->E;
  for (int f = 0; f < t->n_features; f++) {
    tower_feature *ft = &t->feature[f];
    const float *table = ps->items[ft->table].value;
    const sr_csr *bag = &p->bag[f];
    /* A masked feature uses its default on every rank: nothing to look up. */
    if (ft->bounds && !p->masked[f]) {
      const double t0 = sr_now();
      SR_TRY(fetch_bag_rows(tt, ft, bag, table, &table, &bag));
      if (clock) *clock += sr_now() - t0;
    }
    if (R == 0) continue;
    const uint8_t *masked = p->masked[f] ? p->all_rows : NULL;
    sr_embedding_bag_forward(p->feature_rows, bag, p->keep[f], masked, table, ps->items[ft->default_row].value, E);
    /* The L2 gradient needs the rows looked up: here, while fetched rows are at hand. */
    if (p->l2_scale > 0.0f)
      p->l2_value += sr_embedding_bag_l2(&ft->grad, &p->bag[f], bag, p->keep[f], masked, table, E, p->l2_scale);
    for (int64_t r = 0; r < R; r++)
      memcpy(p->act[0] + r * width + f * E, p->feature_rows + r * E, (size_t)E * sizeof(float));
  }
  if (R == 0) return SR_OK;
  for (int l = 0; l < t->n_layers; l++) {
    sr_linear_forward(p->act[l + 1], p->act[l], ps->items[t->weight[l]].value, ps->items[t->bias[l]].value, R,
                      t->dims[l], t->dims[l + 1]);
    if (l == t->n_layers - 1) break;
    sr_relu_forward(p->act[l + 1], p->act[l + 1], R * t->dims[l + 1]);
    if (p->dropout > 0.0f) {
      grow_f32(&p->drop_mask[l + 1], &p->drop_mask_cap[l + 1], R * t->dims[l + 1]);
      sr_dropout_forward(p->act[l + 1], p->drop_mask[l + 1], p->act[l + 1], R, t->dims[l + 1], p->dropout, tt->seed,
                         SR_RNG_DROPOUT + 256u * (p->dropout_stream + (uint32_t)l), p->step, p->row_keys);
    }
  }
  sr_l2norm_forward(p->out, p->norms, p->act[t->n_layers], R, t->dims[t->n_layers], L2_EPS);
  return SR_OK;
}

/* Accumulates the gradients of the tower's parameters given dout (R, d), the
 * loss gradient w.r.t. p->out: dense ones into the registry's gradient arena,
 * the tables' into their sparse lists. */
static void tower_backward(tower *t, sr_params *ps, tower_pass *p, const float *dout, int64_t E) {
  const int64_t R = p->R, L = t->n_layers;
  if (R == 0) return;
  memset(p->dact[L], 0, (size_t)(R * t->dims[L]) * sizeof(float));
  sr_l2norm_backward(p->dact[L], dout, p->out, p->norms, R, t->dims[L], L2_EPS);
  const float *dz = p->dact[L]; /* gradient w.r.t. layer l's pre-activation output */
  for (int64_t l = L - 1; l >= 0; l--) {
    memset(p->dact[l], 0, (size_t)(R * t->dims[l]) * sizeof(float));
    const sr_param *w = &ps->items[t->weight[l]], *b = &ps->items[t->bias[l]];
    sr_linear_backward(p->dact[l], w->grad, b->grad, dz, p->act[l], w->value, R, t->dims[l], t->dims[l + 1]);
    if (l == 0) break;
    memset(p->dpre, 0, (size_t)(R * t->dims[l]) * sizeof(float));
    sr_relu_backward(p->dpre, p->dact[l], p->act[l], R * t->dims[l]);
    /* act[l] is 0 where dropped, so the ReLU gate above is already 0 there;
     * kept units carry the mask's 1/(1-p). */
    if (p->dropout > 0.0f)
      for (int64_t k = 0; k < R * t->dims[l]; k++) p->dpre[k] *= p->drop_mask[l][k];
    dz = p->dpre;
  }
  const int64_t width = t->dims[0];
  for (int f = 0; f < t->n_features; f++) {
    tower_feature *ft = &t->feature[f];
    for (int64_t r = 0; r < R; r++)
      memcpy(p->feature_rows + r * E, p->dact[0] + r * width + f * E, (size_t)E * sizeof(float));
    sr_embedding_bag_backward(&ft->grad, ps->items[ft->default_row].grad, p->feature_rows, &p->bag[f], p->keep[f],
                              p->masked[f] ? p->all_rows : NULL, E);
  }
}

/* ---- the training step ----------------------------------------------------------------- */

/* Feeds the estimator the global batch's items (global order) once per step. */
static void observe_batch(two_tower *tt, const int64_t *global_ids, int64_t N, uint64_t step) {
  if (tt->logq != SR_LOGQ_STREAMING || (int64_t)step <= tt->freq_last_step) return;
  sr_freq_update(&tt->freq, global_ids, N, (int64_t)step);
  tt->freq_last_step = (int64_t)step;
}

/* Static logQ: the training counts of every rank's shard, summed once. */
static int static_log_prob(two_tower *tt, const sr_dist *dist) {
  if (tt->static_log_p) return SR_OK;
  const int64_t I = tt->base.n_items;
  SR_TRY(sr_dist_sum_i64(dist, tt->item_counts, (int)I));
  int64_t total = 0;
  for (int64_t j = 0; j < I; j++) total += tt->item_counts[j];
  tt->static_log_p = sr_malloc((size_t)I * sizeof(float));
  /* An item never trained on gets half a count (its log stays finite). */
  for (int64_t j = 0; j < I; j++)
    tt->static_log_p[j] = (float)log((tt->item_counts[j] > 0 ? (double)tt->item_counts[j] : 0.5) / (double)total);
  free(tt->item_counts);
  tt->item_counts = NULL;
  return SR_OK;
}

/* log_p (n_batch + n_uniform) of the candidates: the batch's items ids[0..n_batch)
 * from the estimator (or the static frequencies), then n_uniform uniform
 * negatives, each of which a step draws with probability n_uniform / n_items
 * (mixed negative sampling: every candidate carries the probability of the
 * way it was sampled). NULL when the correction is off. */
static const float *candidate_log_prob(two_tower *tt, const int64_t *ids, int64_t n_batch, int64_t n_uniform) {
  if (tt->logq == SR_LOGQ_NONE || tt->loss_type == SR_LOSS_MULTISIM || tt->loss_type == SR_LOSS_AUC) return NULL;
  const int64_t n = n_batch + n_uniform;
  grow_f32(&tt->log_p, &tt->log_p_cap, n);
  if (tt->logq == SR_LOGQ_STREAMING) {
    sr_freq_log_prob(tt->log_p, &tt->freq, ids, n_batch);
  } else {
    for (int64_t k = 0; k < n_batch; k++) tt->log_p[k] = tt->static_log_p[ids[k]];
  }
  const float log_uniform = n_uniform > 0 ? (float)log((double)n_uniform / (double)tt->base.n_items) : 0.0f;
  for (int64_t k = n_batch; k < n; k++) tt->log_p[k] = log_uniform;
  if (tt->logq_factor != 1.0f)
    for (int64_t k = 0; k < n; k++) tt->log_p[k] *= tt->logq_factor;
  return tt->log_p;
}

/* The configured main loss of queries q (Bq, d) against candidates x (C, d)
 * whose item ids are ids (C); with loss.remove_accidental_hits the softmax
 * losses leave other copies of each query's positive out. */
static double main_loss(two_tower *tt, float *dq, float *dx, const float *q, const float *x, const int64_t *pos,
                        const float *log_p, const int64_t *ids, int64_t Bq, int64_t C, float norm) {
  const int64_t d = tt->d;
  const int64_t *hits = tt->remove_hits ? ids : NULL;
  switch ((sr_loss_type)tt->loss_type) {
    case SR_LOSS_SOFTMAX:
      return sr_focal_softmax_loss(dq, dx, q, x, pos, log_p, hits, Bq, C, d, tt->tau, 0.0f, norm);
    case SR_LOSS_FOCAL:
      return sr_focal_softmax_loss(dq, dx, q, x, pos, log_p, hits, Bq, C, d, tt->tau, tt->focal_gamma, norm);
    case SR_LOSS_MULTISIM:
      return sr_ms_loss(dq, dx, q, x, pos, NULL, Bq, C, d, &tt->ms, norm);
    case SR_LOSS_AUC:
      return sr_auc_loss(dq, dx, q, x, pos, Bq, C, d, tt->auc_tau, norm);
  }
  return 0.0;
}

/* Rank r's contiguous share [lo, hi) of M per-step draws. */
static void share_of(int64_t M, const sr_dist *dist, int64_t *lo, int64_t *hi) {
  *lo = M * dist->rank / dist->size;
  *hi = M * (dist->rank + 1) / dist->size;
}

/* Items [lo, hi) of a step's uniform draws from the corpus: the j-th is keyed
 * by (purpose, step, j). */
static void draw_uniform_items(const two_tower *tt, uint32_t purpose, int64_t *ids, int64_t lo, int64_t hi,
                               uint64_t step) {
  for (int64_t j = lo; j < hi; j++) {
    sr_rng r;
    sr_rng_init(&r, tt->seed, purpose, step, (uint64_t)j);
    ids[j - lo] = (int64_t)sr_rng_below(&r, (uint64_t)tt->base.n_items);
  }
}

/* Marks p as a training use: tower dropout keyed by (step, row_keys) on the
 * pass's substream, and the embedding L2 (scale; 0: none) on its lookups. */
static void train_pass(const two_tower *tt, tower_pass *p, uint32_t stream, const int64_t *row_keys, uint64_t step,
                       float l2_scale) {
  p->dropout = tt->tower_dropout;
  p->dropout_stream = stream;
  p->row_keys = row_keys;
  p->step = step;
  p->l2_scale = l2_scale;
}

/* History dropout: each item of a pair's history is dropped with probability
 * model.history_dropout, keyed by (step, global sample); a pair left with no
 * item uses the history default, as an empty fold-in does. */
static void drop_history(two_tower *tt, tower_pass *p, const sr_batch *b) {
  if (tt->history_dropout <= 0.0f) return;
  for (int f = 0; f < tt->query.n_features; f++) {
    if (tt->query.feature[f].source != SOURCE_HISTORY) continue;
    p->keep[f] = sr_malloc((size_t)(p->bag[f].nnz > 0 ? p->bag[f].nnz : 1));
    sr_embedding_bag_dropout(p->keep[f], &p->bag[f], tt->history_dropout, tt->seed,
                             SR_RNG_DROPOUT + 256u * STREAM_HISTORY, b->step, b->sample_ids);
  }
}

/* The item tower on this rank's share of the step's M uniform negatives
 * (mixed negative sampling, Yang et al. 2020): all M ids drawn on every rank
 * (the candidates' ids), the share embedded here into upass. */
static int uniform_forward(two_tower *tt, const sr_batch *b) {
  const int64_t M = tt->n_uniform;
  int64_t lo, hi;
  share_of(M, b->dist, &lo, &hi);
  grow_i64(&tt->uniform_ids, &tt->uniform_ids_cap, M);
  grow_i64(&tt->uniform_pos, &tt->uniform_pos_cap, hi - lo);
  draw_uniform_items(tt, SR_RNG_NEGATIVES, tt->uniform_ids, 0, M, b->step);
  for (int64_t j = lo; j < hi; j++) tt->uniform_pos[j - lo] = j;
  pass_reserve(&tt->item, &tt->upass, hi - lo, tt->E);
  pass_bags(&tt->item, &tt->upass, tt->uniform_ids + lo, hi - lo, NULL, NULL);
  train_pass(tt, &tt->upass, STREAM_UNIFORM_MLP, tt->uniform_pos, b->step, 0.0f);
  return tower_forward(tt, &tt->item, &tt->upass, &tt->exchange_seconds);
}

/* The scores of B local queries against their candidates: the batch's items
 * (every rank's, in global batch order, when cross-device; else this rank's
 * B), then the uniform negatives (all M in draw order when cross-device;
 * else this rank's share). Writes dq (B, d), the gradient dx (B, d) of this
 * rank's batch items and du (its uniform share, d), each summed over every
 * rank's queries when cross-device. A rank with B = 0 still joins the
 * exchanges; the losses then write zero gradients. */
static int main_term(two_tower *tt, const sr_batch *b, const sr_exchange_layout *l, double *loss) {
  const sr_dist *dist = b->dist;
  const int64_t B = l->count[dist->rank], N = b->global_batch, d = tt->d, Ul = tt->n_uniform > 0 ? tt->upass.R : 0;
  const int64_t n_batch = tt->cross_device ? N : B, n_uniform = tt->cross_device ? tt->n_uniform : Ul;
  const int64_t C = n_batch + n_uniform;
  grow_f32(&tt->dq, &tt->dq_cap, B * d);
  grow_f32(&tt->dx, &tt->dx_cap, B * d);
  grow_f32(&tt->du, &tt->du_cap, Ul * d);
  grow_f32(&tt->candidates, &tt->candidates_cap, C * d);
  grow_f32(&tt->dcandidates, &tt->dcandidates_cap, C * d);
  grow_i64(&tt->candidate_ids, &tt->candidate_ids_cap, C);
  const int64_t *pos = b->positions;
  if (tt->cross_device) {
    /* Gather the items, then put row k (which sits at global position
     * global_positions[k]) where the single-process batch has it. */
    grow_f32(&tt->gathered, &tt->gathered_cap, N * d);
    grow_f32(&tt->dgathered, &tt->dgathered_cap, N * d);
    SR_TRY(sr_gather_rows_f32(dist, l, tt->ipass.out, d, tt->gathered));
    for (int64_t k = 0; k < N; k++)
      memcpy(tt->candidates + tt->global_positions[k] * d, tt->gathered + k * d, (size_t)d * sizeof(float));
    memcpy(tt->candidate_ids, tt->global_ids, (size_t)N * sizeof(int64_t));
  } else {
    grow_i64(&tt->positions, &tt->positions_cap, B);
    for (int64_t i = 0; i < B; i++) tt->positions[i] = i;
    pos = tt->positions;
    memcpy(tt->candidates, tt->ipass.out, (size_t)(B * d) * sizeof(float));
    memcpy(tt->candidate_ids, tt->item_ids, (size_t)B * sizeof(int64_t));
  }
  sr_exchange_layout lu = {0};
  if (tt->n_uniform > 0) {
    float *uniform_rows = tt->candidates + n_batch * d;
    if (tt->cross_device) {
      SR_TRY(sr_exchange_layout_init(&lu, dist, Ul));
      const int rc = sr_gather_rows_f32(dist, &lu, tt->upass.out, d, uniform_rows); /* rank order is draw order */
      if (rc != SR_OK) sr_exchange_layout_free(&lu);
      SR_TRY(rc);
      memcpy(tt->candidate_ids + n_batch, tt->uniform_ids, (size_t)n_uniform * sizeof(int64_t));
    } else {
      int64_t lo, hi;
      share_of(tt->n_uniform, dist, &lo, &hi);
      memcpy(uniform_rows, tt->upass.out, (size_t)(Ul * d) * sizeof(float));
      memcpy(tt->candidate_ids + n_batch, tt->uniform_ids + lo, (size_t)Ul * sizeof(int64_t));
    }
  }
  const float *log_p = candidate_log_prob(tt, tt->candidate_ids, n_batch, n_uniform);
  *loss = main_loss(tt, tt->dq, tt->dcandidates, tt->qpass.out, tt->candidates, pos, log_p, tt->candidate_ids, B, C,
                    (float)N);
  int rc = SR_OK;
  if (tt->cross_device) {
    for (int64_t k = 0; k < N; k++)
      memcpy(tt->dgathered + k * d, tt->dcandidates + tt->global_positions[k] * d, (size_t)d * sizeof(float));
    rc = sr_scatter_sum_rows_f32(dist, l, tt->dgathered, d, tt->dx);
    if (rc == SR_OK && tt->n_uniform > 0) rc = sr_scatter_sum_rows_f32(dist, &lu, tt->dcandidates + N * d, d, tt->du);
  } else {
    memcpy(tt->dx, tt->dcandidates, (size_t)(B * d) * sizeof(float));
    memcpy(tt->du, tt->dcandidates + B * d, (size_t)(Ul * d) * sizeof(float));
  }
  if (tt->n_uniform > 0 && tt->cross_device) sr_exchange_layout_free(&lu);
  return rc;
}

/* The global ids of the batch's items in global order (global_ids) and, in
 * gathered (rank) order, where each gathered row sits (global_positions). */
static int gather_batch_items(two_tower *tt, const sr_batch *b, const sr_exchange_layout *l) {
  const int64_t N = b->global_batch;
  grow_i64(&tt->global_positions, &tt->global_positions_cap, N);
  grow_i64(&tt->ids, &tt->ids_cap, N);
  grow_i64(&tt->global_ids, &tt->global_ids_cap, N);
  SR_TRY(sr_gather_i64(b->dist, l, b->positions, tt->global_positions));
  SR_TRY(sr_gather_i64(b->dist, l, tt->item_ids, tt->ids));
  for (int64_t k = 0; k < N; k++) tt->global_ids[tt->global_positions[k]] = tt->ids[k];
  return SR_OK;
}

/* One SSL view: the item features in the masked group use their defaults,
 * the others drop values of multi-valued features. */
static void prepare_view(two_tower *tt, tower_pass *p, const uint8_t *in_a, int mask_a, uint64_t step) {
  for (int f = 0; f < tt->item.n_features; f++) {
    p->masked[f] = mask_a ? in_a[f] != 0 : in_a[f] == 0;
    if (p->masked[f] || !tt->item.feature[f].multi_valued || tt->value_dropout <= 0) continue;
    p->keep[f] = sr_malloc((size_t)(p->bag[f].nnz > 0 ? p->bag[f].nnz : 1));
    sr_embedding_bag_dropout(p->keep[f], &p->bag[f], tt->value_dropout, tt->seed, SR_RNG_SSL + 256u * (uint32_t)f,
                             step, tt->ssl_pos);
  }
}

static int ssl_term(two_tower *tt, const sr_batch *b, double *loss) {
  const sr_dist *dist = b->dist;
  const int64_t M = tt->ssl_batch, d = tt->d, E = tt->E;
  int64_t lo, hi;
  share_of(M, dist, &lo, &hi);
  const int64_t Ml = hi - lo;
  grow_i64(&tt->ssl_ids, &tt->ssl_ids_cap, Ml);
  grow_i64(&tt->ssl_pos, &tt->ssl_pos_cap, Ml);
  draw_uniform_items(tt, SR_RNG_SSL + 256u * (uint32_t)SR_SSL_SAMPLE_SUBSTREAM, tt->ssl_ids, lo, hi, b->step);
  for (int64_t i = 0; i < Ml; i++) tt->ssl_pos[i] = lo + i; /* global SSL index: keys dropout, is the positive */
  uint8_t in_a[SR_MAX_TOWER_FEATURES];
  if (tt->masking == SR_MASK_CFM)
    sr_cfm_split(in_a, tt->mi, tt->item.n_features, sr_cfm_seed_feature(tt->seed, b->step, tt->item.n_features));
  else
    sr_rfm_split(in_a, tt->item.n_features, tt->seed, b->step);
  tower_pass *views[2] = {&tt->view1, &tt->view2};
  for (int v = 0; v < 2; v++) {
    pass_reserve(&tt->item, views[v], Ml, E);
    pass_bags(&tt->item, views[v], tt->ssl_ids, Ml, NULL, NULL);
    prepare_view(tt, views[v], in_a, v == 0, b->step);
    train_pass(tt, views[v], v == 0 ? STREAM_VIEW1_MLP : STREAM_VIEW2_MLP, tt->ssl_pos, b->step, 0.0f);
    SR_TRY(tower_forward(tt, &tt->item, views[v], &tt->exchange_seconds));
  }
  const float *z1 = tt->view1.out, *z2 = tt->view2.out;
  /* dz1 in dq's place, dz2 in dx's: the main term's are consumed by now. */
  grow_f32(&tt->dq, &tt->dq_cap, Ml * d);
  grow_f32(&tt->dx, &tt->dx_cap, Ml * d);
  double value = 0.0;
  if (tt->cross_device) {
    sr_exchange_layout l;
    SR_TRY(sr_exchange_layout_init(&l, dist, Ml));
    grow_f32(&tt->gathered, &tt->gathered_cap, M * d);
    grow_f32(&tt->dgathered, &tt->dgathered_cap, M * d);
    int rc = sr_gather_rows_f32(dist, &l, z2, d, tt->gathered); /* rank order is global order */
    if (rc == SR_OK) {
      value = sr_batch_softmax_loss(tt->dq, tt->dgathered, z1, tt->gathered, tt->ssl_pos, NULL, Ml, M, d, tt->ssl_tau,
                                    (float)M);
      rc = sr_scatter_sum_rows_f32(dist, &l, tt->dgathered, d, tt->dx);
    }
    sr_exchange_layout_free(&l);
    SR_TRY(rc);
  } else {
    value = sr_infonce_loss(tt->dq, tt->dx, z1, z2, Ml, d, tt->ssl_tau, (float)M);
  }
  const float w = tt->ssl_weight;
  for (int64_t k = 0; k < Ml * d; k++) {
    tt->dq[k] *= w;
    tt->dx[k] *= w;
  }
  tower_backward(&tt->item, &tt->base.params, &tt->view1, tt->dq, E);
  tower_backward(&tt->item, &tt->base.params, &tt->view2, tt->dx, E);
  *loss = value;
  return SR_OK;
}

static int two_tower_forward_backward(sr_model *m, const sr_batch *b, sr_step_stats *st) {
  two_tower *tt = (two_tower *)m;
  const int64_t B = b->rows->n_rows, E = tt->E;
  sr_params *ps = &m->params;
  grow_i64(&tt->item_ids, &tt->item_ids_cap, B);
  for (int64_t i = 0; i < B; i++) tt->item_ids[i] = b->targets[i];

  /* The embedding L2 is a sum over the pairs, divided by the global batch like the loss. */
  const float l2_scale = tt->embedding_l2 / (float)b->global_batch;
  pass_reserve(&tt->query, &tt->qpass, B, E);
  pass_bags(&tt->query, &tt->qpass, b->user_ids, B, b->rows, b->targets);
  drop_history(tt, &tt->qpass, b);
  train_pass(tt, &tt->qpass, STREAM_QUERY_MLP, b->sample_ids, b->step, l2_scale);
  SR_TRY(tower_forward(tt, &tt->query, &tt->qpass, &tt->exchange_seconds));
  pass_reserve(&tt->item, &tt->ipass, B, E);
  pass_bags(&tt->item, &tt->ipass, tt->item_ids, B, NULL, NULL);
  train_pass(tt, &tt->ipass, STREAM_ITEM_MLP, b->sample_ids, b->step, l2_scale);
  SR_TRY(tower_forward(tt, &tt->item, &tt->ipass, &tt->exchange_seconds));
  if (tt->n_uniform > 0) SR_TRY(uniform_forward(tt, b));

  sr_exchange_layout l;
  SR_TRY(sr_exchange_layout_init(&l, b->dist, B));
  int rc = l.total == b->global_batch ? SR_OK
                                      : SR_FAIL(SR_EINVAL, "the ranks hold %lld samples of a global batch of %lld",
                                                (long long)l.total, (long long)b->global_batch);
  if (rc == SR_OK) rc = gather_batch_items(tt, b, &l);
  if (rc == SR_OK) observe_batch(tt, tt->global_ids, b->global_batch, b->step);
  if (rc == SR_OK && tt->logq == SR_LOGQ_STATIC) rc = static_log_prob(tt, b->dist);
  double main_value = 0.0, ssl_value = 0.0;
  if (rc == SR_OK) rc = main_term(tt, b, &l, &main_value);
  sr_exchange_layout_free(&l);
  SR_TRY(rc);
  tower_backward(&tt->query, ps, &tt->qpass, tt->dq, E);
  tower_backward(&tt->item, ps, &tt->ipass, tt->dx, E);
  if (tt->n_uniform > 0) tower_backward(&tt->item, ps, &tt->upass, tt->du, E);
  if (tt->ssl) SR_TRY(ssl_term(tt, b, &ssl_value));

  const double l2_value = tt->qpass.l2_value + tt->ipass.l2_value;
  st->n_terms = 2;
  st->term_names[0] = "main";
  st->terms[0] = main_value;
  st->term_names[1] = "ssl";
  st->terms[1] = ssl_value;
  if (tt->embedding_l2 > 0.0f) {
    st->term_names[st->n_terms] = "l2";
    st->terms[st->n_terms++] = l2_value;
  }
  st->beta = 0.0;
  st->loss = main_value + tt->ssl_weight * ssl_value + l2_value;
  return SR_OK;
}

static double two_tower_add_param_penalty(sr_model *m) {
  (void)m; /* regularisation is train.weight_decay on the dense weights */
  return 0.0;
}

/* Non-finite values of a gradient list (they would poison the table). */
static int64_t count_non_finite(const sr_sparse_grad *g) {
  int64_t bad = 0;
  for (int64_t k = 0; k < g->n * g->dim; k++) bad += !isfinite(g->rows[k]);
  return bad;
}

/* Sum of squares of a gradient list's values. */
static double sq_norm(const sr_sparse_grad *g) {
  double sum = 0.0;
  for (int64_t k = 0; k < g->n * g->dim; k++) sum += (double)g->rows[k] * g->rows[k];
  return sum;
}

/* A replicated table sums every rank's list (every rank then holds the same
 * summed rows); a row-sharded one sends each row to its owner (ids
 * renumbered to its slice). Adds to *owned_sq the sum of squares of the rows
 * this rank answers for: its own rows of a sharded table, the whole list of
 * a replicated one on rank 0 only (so that the sum over ranks counts each
 * row once). */
static int reduce_tower_tables(two_tower *tt, tower *t, const sr_dist *dist, double *owned_sq) {
  for (int f = 0; f < t->n_features; f++) {
    tower_feature *ft = &t->feature[f];
    if (ft->bounds) {
      const double t0 = sr_now();
      SR_TRY(sr_sparse_grad_reduce_to_owners(dist, ft->bounds, &ft->grad));
      tt->exchange_seconds += sr_now() - t0;
      for (int64_t i = 0; i < ft->grad.n; i++) ft->grad.ids[i] -= ft->bounds[dist->rank];
      *owned_sq += sq_norm(&ft->grad);
    } else {
      SR_TRY(sr_sparse_grad_allreduce(dist, &ft->grad));
      if (dist->rank == 0) *owned_sq += sq_norm(&ft->grad);
    }
  }
  return SR_OK;
}

/* Updates every table's listed rows from its reduced gradient times
 * grad_scale, counting non-finite values into *n_bad (replicated tables:
 * the same count on every rank) or *sharded_bad (this rank's rows). */
static void update_tower_tables(two_tower *tt, tower *t, const sr_optim *o, float grad_scale, int64_t *n_bad,
                                int64_t *sharded_bad) {
  sr_params *ps = &tt->base.params;
  for (int f = 0; f < t->n_features; f++) {
    tower_feature *ft = &t->feature[f];
    sr_param *table = &ps->items[ft->table];
    *(ft->bounds ? sharded_bad : n_bad) += count_non_finite(&ft->grad);
    if (grad_scale != 1.0f)
      for (int64_t k = 0; k < ft->grad.n * ft->grad.dim; k++) ft->grad.rows[k] *= grad_scale;
    if (tt->embedding_optimizer == SR_SPARSE_ADAGRAD) {
      sr_sparse_adagrad_step(table->value, table->adam_v, &ft->grad, o->lr, o->eps);
    } else {
      sr_sparse_adam hp = {o->lr, o->beta1, o->beta2, o->eps};
      sr_sparse_adam_step(table->value, table->adam_m, table->adam_v, &ft->grad, &hp, o->step);
    }
    sr_sparse_grad_clear(&ft->grad);
  }
}

void sr_two_tower_gradient(sr_model *m, float *grads) {
  two_tower *tt = (two_tower *)m;
  memcpy(grads, m->params.grads, (size_t)m->params.dense_total * sizeof(float));
  memset(grads + m->params.dense_total, 0, (size_t)(m->params.total - m->params.dense_total) * sizeof(float));
  tower *towers[2] = {&tt->query, &tt->item};
  for (int t = 0; t < 2; t++) {
    for (int f = 0; f < towers[t]->n_features; f++) {
      tower_feature *ft = &towers[t]->feature[f];
      sr_sparse_grad_add_to_dense(grads + m->params.items[ft->table].offset, &ft->grad);
      sr_sparse_grad_clear(&ft->grad);
    }
  }
}

static int two_tower_reduce_sparse(sr_model *m, const sr_dist *dist, double *owned_sq) {
  two_tower *tt = (two_tower *)m;
  SR_TRY(reduce_tower_tables(tt, &tt->query, dist, owned_sq));
  return reduce_tower_tables(tt, &tt->item, dist, owned_sq);
}

static int two_tower_update_sparse(sr_model *m, const sr_dist *dist, const sr_optim *o, float grad_scale,
                                   int64_t *n_bad) {
  two_tower *tt = (two_tower *)m;
  int64_t sharded_bad = 0;
  update_tower_tables(tt, &tt->query, o, grad_scale, n_bad, &sharded_bad);
  update_tower_tables(tt, &tt->item, o, grad_scale, n_bad, &sharded_bad);
  /* Every rank reports the same count, as the trainer's decision to stop needs. */
  if (tt->dist) SR_TRY(sr_dist_sum_i64(dist, &sharded_bad, 1));
  *n_bad += sharded_bad;
  return SR_OK;
}

/* ---- evaluation and export ---------------------------------------------------------------- */

/* Evaluation-mode passes have no error path of their own (model.h's score);
 * the only failure, an exchange of row-sharded tables, ends the job, as any
 * MPI failure does. */
static void forward_or_die(two_tower *tt, tower *t, tower_pass *p) {
  if (tower_forward(tt, t, p, NULL) != SR_OK) SR_DIE("%s", sr_error_message());
}

/* out (end - begin, d) = the evaluation-mode embeddings of items [begin,
 * end), in n_passes passes of EVAL_CHUNK items (collective with row-sharded
 * tables: every rank makes n_passes, empty ones past its range). */
static void embed_item_range(two_tower *tt, int64_t begin, int64_t end, int64_t n_passes, float *out) {
  const int64_t d = tt->d;
  int64_t *ids = sr_malloc((size_t)EVAL_CHUNK * sizeof *ids);
  for (int64_t pass = 0; pass < n_passes; pass++) {
    const int64_t first = begin + pass * EVAL_CHUNK, n = first >= end               ? 0
                                                         : end - first < EVAL_CHUNK ? end - first
                                                                                    : EVAL_CHUNK;
    for (int64_t k = 0; k < n; k++) ids[k] = first + k;
    pass_reserve(&tt->item, &tt->ipass, n, tt->E);
    pass_bags(&tt->item, &tt->ipass, ids, n, NULL, NULL);
    forward_or_die(tt, &tt->item, &tt->ipass);
    if (n > 0) memcpy(out + (first - begin) * d, tt->ipass.out, (size_t)(n * d) * sizeof(float));
  }
  pass_clear(&tt->ipass);
  free(ids);
}

static int64_t passes_for(int64_t items) { return (items + EVAL_CHUNK - 1) / EVAL_CHUNK; }

void sr_two_tower_embed_items(sr_model *m, float *out) {
  embed_item_range((two_tower *)m, 0, m->n_items, passes_for(m->n_items), out);
}

/* The query tower on R users in evaluation mode: qpass.out (R, d). */
static const float *query_embeddings(two_tower *tt, const sr_csr *history, const int64_t *user_ids) {
  const int64_t R = history->n_rows;
  pass_reserve(&tt->query, &tt->qpass, R, tt->E);
  pass_bags(&tt->query, &tt->qpass, user_ids, R, history, NULL);
  forward_or_die(tt, &tt->query, &tt->qpass);
  pass_clear(&tt->qpass);
  return tt->qpass.out;
}

void sr_two_tower_embed_users(sr_model *m, const sr_csr *history, const int64_t *user_ids, float *out) {
  two_tower *tt = (two_tower *)m;
  if (history->n_rows == 0) return;
  memcpy(out, query_embeddings(tt, history, user_ids), (size_t)(history->n_rows * tt->d) * sizeof(float));
}

int64_t sr_two_tower_dim(const sr_model *m) { return ((const two_tower *)m)->d; }

double sr_two_tower_table_exchange_seconds(const sr_model *m) { return ((const two_tower *)m)->exchange_seconds; }

/* The items this rank scores: all of them, or its range of the scoring grid. */
static void scored_items(const sr_model *m, int64_t *begin, int64_t *end) {
  *begin = m->items ? m->items->item_begin : 0;
  *end = m->items ? m->items->item_end : m->n_items;
}

static void two_tower_begin_eval(sr_model *m) {
  two_tower *tt = (two_tower *)m;
  int64_t begin, end;
  scored_items(m, &begin, &end);
  if (!tt->item_embeddings) tt->item_embeddings = sr_aligned_calloc((size_t)((end - begin) * tt->d) * sizeof(float));
  /* Ranges differ by one item at most: the widest sets every rank's passes. */
  const int64_t widest = m->items ? (m->n_items + m->items->n_shards - 1) / m->items->n_shards : m->n_items;
  embed_item_range(tt, begin, end, passes_for(widest), tt->item_embeddings);
}

/* scores (R, scored items) = user embeddings . item embeddings^T (one GEMM). */
static void two_tower_score(sr_model *m, const sr_csr *input, const int64_t *user_ids, float *scores) {
  two_tower *tt = (two_tower *)m;
  const int64_t R = input->n_rows;
  int64_t begin, end;
  scored_items(m, &begin, &end);
  const float *queries = query_embeddings(tt, input, user_ids); /* collective with row-sharded tables */
  if (R > 0) sr_scores_forward(scores, queries, tt->item_embeddings, R, end - begin, tt->d);
}

/* ---- memory (memory_plan.h) ---------------------------------------------------------------- */

/* Bytes pass_reserve holds for R rows of tower t (with tower dropout, and
 * its masks of the hidden layers). */
static int64_t pass_bytes(const tower *t, int64_t R, int64_t E, int dropout) {
  int64_t floats = 0, widest = 1;
  for (int l = 0; l <= t->n_layers; l++) {
    floats += 2 * R * t->dims[l]; /* act, dact */
    if (dropout && l > 0 && l < t->n_layers) floats += R * t->dims[l];
    if (t->dims[l] > widest) widest = t->dims[l];
  }
  floats += R * (widest + E + t->dims[t->n_layers] + 1); /* dpre, feature_rows, out, norms */
  return floats * (int64_t)sizeof(float) + R;
}

/* The passes (query and item at the larger of the training and evaluation
 * rows, both SSL views, the uniform negatives), the gathered candidates of
 * cross-device negatives and the loss kernels' ~4 MiB score blocks, and the
 * evaluation's item embeddings (n_items, d), which every rank holds whole. */
static int64_t two_tower_activation_bytes(const sr_model *m, int64_t train_rows, int64_t eval_rows) {
  const two_tower *tt = (const two_tower *)m;
  const int64_t P = m->dist ? m->dist->size : 1, E = tt->E, d = tt->d, f = (int64_t)sizeof(float);
  const int64_t query_rows = train_rows > eval_rows ? train_rows : eval_rows;
  const int64_t item_rows = train_rows > EVAL_CHUNK ? train_rows : EVAL_CHUNK;
  const int dropout = tt->tower_dropout > 0.0f;
  int64_t bytes = pass_bytes(&tt->query, query_rows, E, dropout) + pass_bytes(&tt->item, item_rows, E, dropout);
  if (tt->ssl) bytes += 2 * pass_bytes(&tt->item, (tt->ssl_batch + P - 1) / P, E, dropout);
  if (tt->n_uniform > 0) bytes += pass_bytes(&tt->item, (tt->n_uniform + P - 1) / P, E, dropout);
  const int64_t N = train_rows * P + tt->n_uniform, M = tt->ssl ? tt->ssl_batch : 0;
  bytes += 4 * (N > M ? N : M) * d * f + ((int64_t)4 << 20);
  int64_t begin, end;
  scored_items(m, &begin, &end);
  return bytes + (end - begin) * d * f;
}

/* ---- state kept in training checkpoints ----------------------------------------------------- */

static int two_tower_write_state(const sr_model *m, const sr_h5file *f) {
  const two_tower *tt = (const two_tower *)m;
  if (tt->logq != SR_LOGQ_STREAMING) return SR_OK;
  SR_TRY(sr_h5_create_group(f, "/model_state"));
  SR_TRY(sr_h5_write_attr_int64(f, "/model_state", "logq_last_step", tt->freq_last_step));
  SR_TRY(sr_h5_write_array(f, "/model_state/logq_item_last_step", SR_H5_INT64, tt->freq.last_step, m->n_items));
  return sr_h5_write_array(f, "/model_state/logq_item_gap", SR_H5_FLOAT32, tt->freq.gap, m->n_items);
}

static int two_tower_read_state(sr_model *m, const sr_h5file *f) {
  two_tower *tt = (two_tower *)m;
  if (tt->logq != SR_LOGQ_STREAMING) return SR_OK;
  void *last = NULL, *gap = NULL;
  int rc = sr_h5_read_attr_int64(f, "/model_state", "logq_last_step", &tt->freq_last_step);
  if (rc == SR_OK) rc = sr_h5_read_array(f, "/model_state/logq_item_last_step", SR_H5_INT64, m->n_items, &last, NULL);
  if (rc == SR_OK) rc = sr_h5_read_array(f, "/model_state/logq_item_gap", SR_H5_FLOAT32, m->n_items, &gap, NULL);
  if (rc == SR_OK) {
    memcpy(tt->freq.last_step, last, (size_t)m->n_items * sizeof(int64_t));
    memcpy(tt->freq.gap, gap, (size_t)m->n_items * sizeof(float));
  }
  free(last);
  free(gap);
  return rc;
}

/* ---- lifetime --------------------------------------------------------------------------------- */

static void tower_free(tower *t) {
  for (int f = 0; f < t->n_features; f++) {
    sr_csr_free(&t->feature[f].values);
    sr_sparse_grad_free(&t->feature[f].grad);
    free(t->feature[f].bounds);
  }
}

static void two_tower_destroy(sr_model *m) {
  two_tower *tt = (two_tower *)m;
  tower_free(&tt->query);
  tower_free(&tt->item);
  tower_pass *passes[] = {&tt->qpass, &tt->ipass, &tt->view1, &tt->view2, &tt->upass};
  for (size_t i = 0; i < sizeof passes / sizeof passes[0]; i++) pass_free(passes[i]);
  sr_freq_free(&tt->freq);
  void *bufs[] = {tt->item_counts,     tt->static_log_p, tt->mi,
                  tt->item_embeddings, tt->candidates,   tt->dcandidates,
                  tt->log_p,           tt->dq,           tt->dx,
                  tt->gathered,        tt->dgathered,    tt->ids,
                  tt->positions,       tt->global_ids,   tt->global_positions,
                  tt->ssl_ids,         tt->ssl_pos,      tt->item_ids,
                  tt->fetch_ids,       tt->fetched,      tt->du,
                  tt->candidate_ids,   tt->uniform_ids,  tt->uniform_pos};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  sr_csr_free(&tt->fetch_bag);
  if (m->items) sr_item_grid_free(&tt->scoring);
  sr_params_free(&m->params);
  free(tt);
}

static const sr_model_ops two_tower_ops = {.name = "twotower",
                                           .samples = SR_SAMPLES_PAIRS,
                                           .forward_backward = two_tower_forward_backward,
                                           .add_param_penalty = two_tower_add_param_penalty,
                                           .reduce_sparse = two_tower_reduce_sparse,
                                           .update_sparse = two_tower_update_sparse,
                                           .begin_eval = two_tower_begin_eval,
                                           .score = two_tower_score,
                                           .write_state = two_tower_write_state,
                                           .read_state = two_tower_read_state,
                                           .activation_bytes = two_tower_activation_bytes,
                                           .destroy = two_tower_destroy};

/* The item tower's features over the corpus, for mutual information (CFM). */
static int item_feature_mi(two_tower *tt) {
  const tower *t = &tt->item;
  sr_csr *columns = sr_calloc((size_t)t->n_features, sizeof *columns);
  int64_t *ids = sr_malloc((size_t)tt->base.n_items * sizeof *ids);
  for (int64_t j = 0; j < tt->base.n_items; j++) ids[j] = j;
  for (int f = 0; f < t->n_features; f++) {
    if (t->feature[f].source == SOURCE_TABLE)
      sr_csr_copy(&t->feature[f].values, &columns[f]);
    else
      bag_of_ids(&columns[f], ids, tt->base.n_items, tt->base.n_items);
  }
  tt->mi = sr_malloc((size_t)(t->n_features * t->n_features) * sizeof(double));
  int rc = sr_feature_mutual_information(tt->mi, columns, t->n_features);
  for (int f = 0; f < t->n_features; f++) sr_csr_free(&columns[f]);
  free(columns);
  free(ids);
  return rc;
}

static void configure(two_tower *tt, const sr_config *cfg) {
  tt->seed = (uint64_t)cfg->run.seed;
  tt->E = cfg->model.feature_dim;
  tt->d = cfg->model.embedding_dim;
  tt->loss_type = cfg->loss.type;
  tt->tau = (float)cfg->loss.temperature;
  tt->ssl_tau = (float)(cfg->ssl.temperature > 0 ? cfg->ssl.temperature : cfg->loss.temperature);
  tt->focal_gamma = (float)cfg->loss.focal_gamma;
  tt->auc_tau = (float)cfg->loss.auc_temperature;
  tt->ms = (sr_ms_params){(float)cfg->loss.ms_alpha, (float)cfg->loss.ms_beta, (float)cfg->loss.ms_lambda,
                          (float)cfg->loss.ms_epsilon};
  tt->logq = cfg->loss.logq;
  /* (s - f log p)/tau with f = tau is s/tau - log p: the correction outside the temperature. */
  tt->logq_factor = cfg->loss.logq_scaled ? 1.0f : (float)cfg->loss.temperature;
  tt->ssl = cfg->ssl.enabled;
  tt->masking = cfg->ssl.masking;
  tt->ssl_weight = cfg->ssl.enabled ? (float)cfg->ssl.weight : 0.0f;
  tt->value_dropout = (float)cfg->ssl.value_dropout;
  tt->ssl_batch = cfg->ssl.batch_size > 0 ? cfg->ssl.batch_size : cfg->train.batch_size;
  tt->embedding_optimizer = cfg->train.embedding_optimizer;
  tt->cross_device = cfg->dist.cross_device_negatives;
  tt->freq_last_step = -1;
  tt->remove_hits = cfg->loss.remove_accidental_hits;
  tt->n_uniform = cfg->loss.uniform_negatives;
  tt->history_dropout = (float)cfg->model.history_dropout;
  tt->tower_dropout = (float)cfg->model.tower_dropout;
  tt->embedding_l2 = (float)cfg->loss.embedding_l2;
  tt->query.name = "query";
  tt->item.name = "item";
}

int sr_two_tower_create(const sr_config *cfg, const sr_dataset *data, const sr_dist *dist, sr_model **out) {
  if (data->n_items < 1) return SR_FAIL(SR_EINVAL, "the dataset has no items");
  two_tower *tt = sr_calloc(1, sizeof *tt);
  tt->base.ops = &two_tower_ops;
  tt->base.n_items = data->n_items;
  configure(tt, cfg);
  int rc = build_query_features(&tt->query, cfg, data);
  if (rc == SR_OK) rc = build_item_features(&tt->item, cfg, data);
  if (rc == SR_OK && tt->ssl && tt->item.n_features < 2)
    rc = SR_FAIL(SR_ECONFIG,
                 "ssl.enabled: feature masking needs at least 2 item features (model.item_features has "
                 "%d); add item features or set ssl.enabled: false",
                 tt->item.n_features);
  if (rc == SR_OK && tt->remove_hits && tt->loss_type != SR_LOSS_SOFTMAX && tt->loss_type != SR_LOSS_FOCAL)
    rc = SR_FAIL(SR_ECONFIG, "loss.remove_accidental_hits: applies to the softmax and focal losses only, not %s",
                 tt->loss_type == SR_LOSS_MULTISIM ? "multisim" : "auc");
  if (rc == SR_OK && tt->ssl && tt->masking == SR_MASK_CFM) rc = item_feature_mi(tt);
  for (int f = 0; f < tt->item.n_features; f++)
    tt->base.ranks_unseen_items |= strcmp(tt->item.feature[f].name, "item_id") != 0;
  if (rc != SR_OK) {
    two_tower_destroy(&tt->base);
    return rc;
  }
  sr_params *ps = &tt->base.params;
  sr_params_init(ps);
  register_mlp(&tt->query, ps, cfg, tt->E, tt->d);
  register_mlp(&tt->item, ps, cfg, tt->E, tt->d);
  register_defaults(&tt->query, ps, tt->E);
  register_defaults(&tt->item, ps, tt->E);
  const int n_dense = ps->count;
  /* Row sharding needs more than one rank; a single process holds every row. */
  if (cfg->model.table_sharding == SR_TABLES_ROW && dist && dist->size > 1) {
    tt->dist = dist;
    if (sr_item_grid_init_scoring(&tt->scoring, dist, data->n_items) != SR_OK) {
      two_tower_destroy(&tt->base);
      return sr_error_code();
    }
    tt->base.items = &tt->scoring;
  }
  register_tables(&tt->query, ps, tt->E, tt->dist);
  register_tables(&tt->item, ps, tt->E, tt->dist);
  sr_params_finalize_sparse_tail(ps, n_dense);
  init_tower(&tt->query, ps, tt->seed, tt->E);
  init_tower(&tt->item, ps, tt->seed, tt->E);
  /* Prior gap: the expected steps between sightings under uniform sampling. */
  sr_freq_init(&tt->freq, data->n_items, (float)cfg->loss.logq_alpha,
               (float)data->n_items / (float)cfg->train.batch_size);
  if (tt->logq == SR_LOGQ_STATIC) {
    tt->item_counts = sr_malloc((size_t)data->n_items * sizeof *tt->item_counts);
    sr_item_counts(tt->item_counts, &data->train); /* this shard's; summed over ranks at the first step */
  }
  *out = &tt->base;
  return SR_OK;
}

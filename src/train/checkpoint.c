/* checkpoint.c — model and training checkpoints in HDF5 (checkpoint.h, docs/checkpoint.md). */
#include "shardrec/checkpoint.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/h5io.h"
#include "shardrec/mem.h"
#include "shardrec/watchdog.h"

/* Elements of a sharded tensor sent to the writing rank per message: bounds
 * that rank's extra memory to one 64 MiB buffer whatever the model size. */
static int64_t block_elems = (int64_t)16 << 20;

void sr_checkpoint_set_block_elems(int64_t n) {
  SR_ASSERT(n >= 1);
  block_elems = n;
}

/* A checkpoint write over the model's ranks (m->dist; NULL: one process).
 * Rank 0 builds the file; every other rank sends its slices of the sharded
 * tensors (the lowest rank holding each distinct slice sends it). After a
 * failure rank 0 skips further file work but still takes every message, so
 * no rank waits forever; all ranks learn the outcome at the end. */
typedef struct {
  const sr_dist *dist;
  int root;     /* this rank writes the file */
  sr_h5file f;  /* root: the file being built */
  int rc;       /* the first failure on this rank */
  float *block; /* root: receive buffer for one block */
  size_t block_cap;
} writer;

static int writing(const writer *w) { return w->root && w->rc == SR_OK; }
static void note(writer *w, int rc) {
  if (w->rc == SR_OK) w->rc = rc;
}

/* Rank s sends its slice if no lower rank holds one starting at the same
 * place (replicas send nothing). */
static int sends_slice(const int64_t *slices, int s) {
  for (int t = 0; t < s; t++)
    if (slices[2 * t] == slices[2 * s]) return 0;
  return 1;
}

/* The distinct slices (begin, extent) of all ranks must tile [0, full). */
static void check_tiling(const int64_t *slices, int P, int64_t full) {
  int64_t covered = 0;
  for (int pass = 0; pass < P; pass++) /* the slice starting at `covered`, P times at most */
    for (int s = 0; s < P; s++)
      if (sends_slice(slices, s) && slices[2 * s] == covered) covered += slices[2 * s + 1];
  SR_ASSERT(covered == full);
}

/* The sharded tensor p (this rank's slice in `local`) as one whole dataset
 * `obj`: each sending rank's slice goes over in blocks of rows (first
 * dimension of the slice), written at their place in the whole tensor. */
static void write_sharded(writer *w, const char *obj, const sr_param *p, const float *local) {
  const int P = w->dist ? w->dist->size : 1, rank = w->dist ? w->dist->rank : 0, dim = p->shard.dim;
  int64_t mine[2] = {p->shard.begin, p->shape[dim]}, *slices = sr_malloc((size_t)P * 2 * sizeof *slices);
  if (P > 1)
    note(w, sr_dist_allgather_i64(w->dist, mine, 2, slices));
  else
    memcpy(slices, mine, sizeof mine);
  check_tiling(slices, P, p->shard.full);
  int64_t whole[SR_PARAM_MAX_DIM];
  sr_param_full_shape(p, whole);
  if (writing(w)) note(w, sr_h5_create_tensor(&w->f, obj, p->ndim, whole));
  for (int s = 0; s < P; s++) {
    if (!sends_slice(slices, s) || (rank != 0 && rank != s)) continue;
    int64_t count[SR_PARAM_MAX_DIM], offset[SR_PARAM_MAX_DIM] = {0}, row = 1;
    for (int d = 0; d < p->ndim; d++) count[d] = d == dim ? slices[2 * s + 1] : p->shape[d];
    for (int d = 1; d < p->ndim; d++) row *= count[d];
    offset[dim] = slices[2 * s];
    const int64_t rows = count[0], rows_per_block = row < block_elems ? block_elems / row : 1;
    for (int64_t r0 = 0; r0 < rows; r0 += rows_per_block, sr_watchdog_beat()) {
      const int64_t n_rows = rows - r0 < rows_per_block ? rows - r0 : rows_per_block, n = n_rows * row;
      const float *block = local + r0 * row;
      if (s != 0 && rank == s) { /* a sender */
        note(w, sr_dist_send_f32(w->dist, 0, block, n));
        continue;
      }
      if (s != 0) { /* rank 0 receives */
        sr_grow(&w->block, &w->block_cap, (size_t)n);
        note(w, sr_dist_recv_f32(w->dist, s, w->block, n));
        block = w->block;
      }
      int64_t at[SR_PARAM_MAX_DIM], extent[SR_PARAM_MAX_DIM];
      for (int d = 0; d < p->ndim; d++) at[d] = offset[d], extent[d] = count[d];
      at[0] += r0;
      extent[0] = n_rows;
      if (writing(w)) note(w, sr_h5_write_tensor_block(&w->f, obj, block, p->ndim, at, extent));
    }
  }
  free(slices);
}

/* One tensor per parameter under `group`, taken from an arena laid out like
 * the registry (values, Adam moments or a snapshot). */
static void write_arena(writer *w, const sr_params *ps, const char *group, const float *arena) {
  if (writing(w)) note(w, sr_h5_create_group(&w->f, group));
  for (int i = 0; i < ps->count; i++) {
    const sr_param *p = &ps->items[i];
    char obj[SR_PARAM_NAME_MAX + 64];
    snprintf(obj, sizeof obj, "%s/%s", group, p->name);
    if (p->shard.dim >= 0)
      write_sharded(w, obj, p, arena + p->offset);
    else if (writing(w))
      note(w, sr_h5_write_tensor(&w->f, obj, arena + p->offset, p->ndim, p->shape));
    sr_watchdog_beat(); /* progress within a long write */
  }
}

/* Each tensor, or this rank's slice of a sharded one. */
static int read_arena(sr_h5file *f, sr_params *ps, const char *group, float *arena) {
  for (int i = 0; i < ps->count; i++) {
    const sr_param *p = &ps->items[i];
    char obj[SR_PARAM_NAME_MAX + 64];
    snprintf(obj, sizeof obj, "%s/%s", group, p->name);
    if (p->shard.dim < 0) {
      SR_TRY(sr_h5_read_tensor(f, obj, arena + p->offset, p->ndim, p->shape));
      continue;
    }
    int64_t whole[SR_PARAM_MAX_DIM], offset[SR_PARAM_MAX_DIM] = {0};
    sr_param_full_shape(p, whole);
    offset[p->shard.dim] = p->shard.begin;
    SR_TRY(sr_h5_read_tensor_block(f, obj, arena + p->offset, p->ndim, whole, offset, p->shape));
  }
  return SR_OK;
}

/* read_arena, then every value must be finite (and >= 0 for Adam's second
 * moment): a damaged or crafted file stops here, naming the tensor, instead
 * of surfacing steps later as a divergence blamed on the learning rate. */
static int read_valid_arena(sr_h5file *f, sr_params *ps, const char *group, float *arena, int nonnegative) {
  SR_TRY(read_arena(f, ps, group, arena));
  for (int i = 0; i < ps->count; i++) {
    const sr_param *p = &ps->items[i];
    for (int64_t j = 0; j < p->numel; j++) {
      const float x = arena[p->offset + j];
      if (!isfinite(x) || (nonnegative && x < 0.0f))
        return SR_FAIL(SR_EFORMAT, "%s: %s/%s: element %lld is %g, expected a finite%s value", f->path, group,
                       p->name, (long long)j, (double)x, nonnegative ? ", non-negative" : "");
    }
  }
  return SR_OK;
}

/* The root attributes: what the model is and how to rebuild it. */
static int write_header(sr_h5file *f, const sr_model *m, const sr_config *cfg) {
  char *yaml = sr_config_to_yaml(cfg);
  int rc = sr_h5_write_attr_string(f, "/", "config_yaml", yaml);
  free(yaml);
  SR_TRY(rc);
  SR_TRY(sr_h5_write_attr_int64(f, "/", "shardrec_checkpoint_version", SR_CHECKPOINT_SCHEMA_VERSION));
  SR_TRY(sr_h5_write_attr_string(f, "/", "created_by", "shardrec " SHARDREC_VERSION));
  SR_TRY(sr_h5_write_attr_string(f, "/", "model", m->ops->name));
  return sr_h5_write_attr_int64(f, "/", "n_items", m->n_items);
}

static void write_model(writer *w, const sr_model *m, const sr_config *cfg) {
  if (writing(w)) note(w, write_header(&w->f, m, cfg));
  write_arena(w, &m->params, "/params", m->params.values);
}

/* Where the run stands (rank 0's file only: the state is the same everywhere). */
static int write_state(sr_h5file *f, const sr_model *m, const sr_optim *o, const sr_train_state *s) {
  SR_TRY(sr_h5_write_attr_int64(f, "/optimizer", "step", o->step));
  SR_TRY(sr_h5_create_group(f, "/train_state"));
  const char *g = "/train_state";
  SR_TRY(sr_h5_write_attr_int64(f, g, "epoch", s->epoch));
  SR_TRY(sr_h5_write_attr_int64(f, g, "position", s->position));
  SR_TRY(sr_h5_write_attr_int64(f, g, "samples_seen", s->samples_seen));
  SR_TRY(sr_h5_write_attr_double(f, g, "train_seconds", s->train_seconds));
  SR_TRY(sr_h5_write_attr_int64(f, g, "best_epoch", s->best_epoch));
  SR_TRY(sr_h5_write_attr_double(f, g, "best_value", s->best_value));
  SR_TRY(sr_h5_write_attr_int64(f, g, "evals_without_improvement", s->evals_without_improvement));
  SR_TRY(sr_h5_write_attr_string(f, g, "history", s->history ? s->history : ""));
  SR_TRY(sr_h5_write_attr_int64(f, g, "best_step", s->best_step));
  SR_TRY(sr_h5_write_attr_int64(f, g, "metrics_offset", s->metrics_offset));
  SR_TRY(sr_h5_write_attr_string(f, g, "epoch_sums", s->epoch_sums));
  SR_TRY(sr_h5_write_attr_string(f, g, "run_id", s->run_id));
  char hash[24];
  snprintf(hash, sizeof hash, "%016llx", (unsigned long long)s->data_hash);
  SR_TRY(sr_h5_write_attr_string(f, g, "data_hash", hash));
  return m->ops->write_state ? m->ops->write_state(m, f) : SR_OK;
}

static void write_training(writer *w, const sr_model *m, const sr_config *cfg, const sr_optim *o,
                           const sr_train_state *s) {
  write_model(w, m, cfg);
  write_arena(w, &m->params, "/optimizer/adam_m", m->params.adam_m);
  write_arena(w, &m->params, "/optimizer/adam_v", m->params.adam_v);
  if (writing(w)) note(w, write_state(&w->f, m, o, s));
  if (s->best_epoch > 0) write_arena(w, &m->params, "/train_state/best_params", s->best_values);
}

/* Builds the file (rank 0) into a temporary committed only on success; the
 * outcome is agreed over the ranks. */
static int write_file(const char *path, const sr_model *m, const sr_config *cfg, const sr_optim *o,
                      const sr_train_state *s) {
  writer w = {.dist = m->dist, .root = !m->dist || m->dist->rank == 0};
  /* config_schema.c lists checkpoint.compression in sr_h5_codec's order. */
  const sr_h5_compression compression = sr_h5_compression_of((sr_h5_codec)cfg->checkpoint.compression);
  if (w.root) note(&w, sr_h5_create(&w.f, path, compression));
  if (o)
    write_training(&w, m, cfg, o, s);
  else
    write_model(&w, m, cfg);
  free(w.block);
  if (w.root && w.f.id >= 0) {
    if (w.rc == SR_OK)
      note(&w, sr_h5_commit(&w.f));
    else
      sr_h5_close(&w.f); /* discards the file built in memory: nothing reached the disk */
  }
  return m->dist ? sr_dist_agree(m->dist, w.rc) : w.rc;
}

int sr_checkpoint_write(const char *path, const sr_model *m, const sr_config *cfg) {
  return write_file(path, m, cfg, NULL, NULL);
}

int sr_checkpoint_write_training(const char *path, const sr_model *m, const sr_config *cfg, const sr_optim *o,
                                 const sr_train_state *state) {
  return write_file(path, m, cfg, o, state);
}

static int check_header(sr_h5file *f, int64_t *n_items) {
  int64_t version = 0;
  SR_TRY(sr_h5_read_attr_int64(f, "/", "shardrec_checkpoint_version", &version));
  if (version != SR_CHECKPOINT_SCHEMA_VERSION)
    return SR_FAIL(SR_EFORMAT, "%s: checkpoint schema version %lld, this shardrec reads version %d", f->path,
                   (long long)version, SR_CHECKPOINT_SCHEMA_VERSION);
  return sr_h5_read_attr_int64(f, "/", "n_items", n_items);
}

/* The model the stored config describes, over `data` or, without it, over
 * the stored item count (autoencoders) or the features of the dataset the
 * config names (feature-based models). */
static int create_stored_model(sr_h5file *f, const sr_config *cfg, int64_t n_items, const sr_dataset *data,
                               sr_model **model) {
  sr_dataset own;
  sr_dataset_init(&own);
  own.n_items = n_items;
  if (!data && cfg->model.type == SR_MODEL_TWOTOWER && sr_dataset_read_features(cfg->data.path, &own) != SR_OK) {
    sr_error_prefix("%s: the model needs the item and user features of its dataset", f->path);
    return SR_EFORMAT;
  }
  const sr_dataset *over = data ? data : &own;
  int rc = over->n_items == n_items
               ? sr_model_create(cfg, over, model)
               : SR_FAIL(SR_EFORMAT, "%s: checkpoint of a model over %lld items, the dataset has %lld", f->path,
                         (long long)n_items, (long long)over->n_items);
  sr_dataset_free(&own);
  return rc;
}

/* The header (checked) and the stored config. */
static int read_config(sr_h5file *f, sr_config *cfg, int64_t *n_items) {
  SR_TRY(check_header(f, n_items));
  char *yaml;
  int rc = sr_h5_read_attr_string_alloc(f, "/", "config_yaml", &yaml);
  if (rc == SR_OK) {
    sr_config_defaults(cfg);
    rc = sr_config_load_string(cfg, yaml, "config stored in the checkpoint");
    if (rc == SR_ECONFIG) sr_error_prefix("%s", f->path);
  }
  free(yaml);
  return rc;
}

static int read_model(sr_h5file *f, const sr_dataset *data, sr_config *cfg, sr_model **model) {
  int64_t n_items = 0;
  SR_TRY(read_config(f, cfg, &n_items));
  SR_TRY(create_stored_model(f, cfg, n_items, data, model));
  int rc = read_valid_arena(f, &(*model)->params, "/params", (*model)->params.values, 0);
  if (rc != SR_OK) {
    sr_model_destroy(*model);
    *model = NULL;
  }
  return rc;
}

/* Parameters (and optimizer state when o != NULL) into an existing model. */
static int read_into(sr_h5file *f, sr_model *m, sr_optim *o) {
  int64_t n_items = 0;
  SR_TRY(check_header(f, &n_items));
  if (n_items != m->n_items)
    return SR_FAIL(SR_EFORMAT, "%s: checkpoint of a model over %lld items, this run has %lld", f->path,
                   (long long)n_items, (long long)m->n_items);
  SR_TRY(read_valid_arena(f, &m->params, "/params", m->params.values, 0));
  if (!o) return SR_OK;
  if (!sr_h5_exists(f, "/optimizer"))
    return SR_FAIL(SR_EFORMAT, "%s: has no optimizer state (a model-only checkpoint)", f->path);
  SR_TRY(read_valid_arena(f, &m->params, "/optimizer/adam_m", m->params.adam_m, 0));
  SR_TRY(read_valid_arena(f, &m->params, "/optimizer/adam_v", m->params.adam_v, 1));
  SR_TRY(sr_h5_read_attr_int64(f, "/optimizer", "step", &o->step));
  if (o->step < 0) return SR_FAIL(SR_EFORMAT, "%s: /optimizer step is %lld", f->path, (long long)o->step);
  return SR_OK;
}

/* A cursor that indexes the epoch's order (position >= 0) in an epoch >= 1,
 * and counters that can be; the history is text. */
static int check_state(const sr_h5file *f, const sr_train_state *s) {
  const char *bad = s->epoch < 1 || s->epoch > INT32_MAX            ? "epoch"
                    : s->position < 0                               ? "position"
                    : s->samples_seen < 0                           ? "samples_seen"
                    : !(s->train_seconds >= 0)                      ? "train_seconds"
                    : s->best_epoch < 0 || s->best_epoch > s->epoch ? "best_epoch"
                    : s->best_step < -1                             ? "best_step"
                    : s->metrics_offset < -1                        ? "metrics_offset"
                    : s->evals_without_improvement < 0              ? "evals_without_improvement"
                                                                    : NULL;
  if (bad)
    return SR_FAIL(SR_EFORMAT,
                   "%s: /train_state is damaged: %s out of range (epoch %lld, position %lld, samples_seen %lld, "
                   "train_seconds %g, best_epoch %lld)",
                   f->path, bad, (long long)s->epoch, (long long)s->position, (long long)s->samples_seen,
                   s->train_seconds, (long long)s->best_epoch);
  return SR_OK;
}

/* What metrics.jsonl needs to continue (attributes that older checkpoints lack). */
static int read_run_record_state(sr_h5file *f, sr_train_state *s) {
  const char *g = "/train_state";
  s->best_step = s->metrics_offset = -1;
  s->epoch_sums[0] = '\0';
  if (sr_h5_attr_exists(f, g, "best_step")) SR_TRY(sr_h5_read_attr_int64(f, g, "best_step", &s->best_step));
  if (sr_h5_attr_exists(f, g, "metrics_offset"))
    SR_TRY(sr_h5_read_attr_int64(f, g, "metrics_offset", &s->metrics_offset));
  if (sr_h5_attr_exists(f, g, "epoch_sums"))
    SR_TRY(sr_h5_read_attr_string(f, g, "epoch_sums", s->epoch_sums, sizeof s->epoch_sums));
  return SR_OK;
}

/* The run id (up to SR_RUN_ID_SIZE - 1 characters) and the data hash (16 hex
 * digits); checkpoints written before they existed have neither. */
static int read_identity(sr_h5file *f, sr_train_state *s) {
  const char *g = "/train_state";
  s->run_id[0] = '\0';
  s->data_hash = 0;
  if (sr_h5_attr_exists(f, g, "run_id")) SR_TRY(sr_h5_read_attr_string(f, g, "run_id", s->run_id, sizeof s->run_id));
  if (!sr_h5_attr_exists(f, g, "data_hash")) return SR_OK;
  char hash[24], *end;
  SR_TRY(sr_h5_read_attr_string(f, g, "data_hash", hash, sizeof hash));
  s->data_hash = strtoull(hash, &end, 16);
  if (strlen(hash) != 16 || *end != '\0')
    return SR_FAIL(SR_EFORMAT, "%s: /train_state data_hash '%s' is not 16 hexadecimal digits", f->path, hash);
  return SR_OK;
}

static int read_state(sr_h5file *f, sr_model *m, sr_train_state *s) {
  const char *g = "/train_state";
  if (!sr_h5_exists(f, g)) return SR_FAIL(SR_EFORMAT, "%s: not a training checkpoint (no /train_state)", f->path);
  SR_TRY(sr_h5_read_attr_int64(f, g, "epoch", &s->epoch));
  SR_TRY(sr_h5_read_attr_int64(f, g, "position", &s->position));
  SR_TRY(sr_h5_read_attr_int64(f, g, "samples_seen", &s->samples_seen));
  SR_TRY(sr_h5_read_attr_double(f, g, "train_seconds", &s->train_seconds));
  SR_TRY(sr_h5_read_attr_int64(f, g, "best_epoch", &s->best_epoch));
  SR_TRY(sr_h5_read_attr_double(f, g, "best_value", &s->best_value));
  /* Absent from checkpoints written before early stopping existed. */
  s->evals_without_improvement = 0;
  if (sr_h5_attr_exists(f, g, "evals_without_improvement"))
    SR_TRY(sr_h5_read_attr_int64(f, g, "evals_without_improvement", &s->evals_without_improvement));
  SR_TRY(sr_h5_read_attr_string_alloc(f, g, "history", &s->history));
  SR_TRY(read_identity(f, s));
  SR_TRY(read_run_record_state(f, s));
  SR_TRY(check_state(f, s));
  if (s->best_epoch > 0) SR_TRY(read_valid_arena(f, &m->params, "/train_state/best_params", s->best_values, 0));
  return SR_OK;
}

/* Opens path, runs `read`, closes. */
static int with_file(const char *path, int (*read)(sr_h5file *f, void *ctx), void *ctx) {
  sr_h5file f;
  SR_TRY(sr_h5_open(&f, path));
  int rc = read(&f, ctx);
  sr_h5_close(&f);
  return rc;
}

typedef struct {
  const sr_dataset *data;
  sr_config *cfg;
  sr_model **model_out;
  sr_model *m;
  sr_optim *o;
  sr_train_state *s;
} read_args;

static int do_read_model(sr_h5file *f, void *ctx) {
  read_args *a = ctx;
  return read_model(f, a->data, a->cfg, a->model_out);
}

static int do_read_config(sr_h5file *f, void *ctx) {
  read_args *a = ctx;
  int64_t n_items;
  return read_config(f, a->cfg, &n_items);
}

static int do_read_params(sr_h5file *f, void *ctx) {
  read_args *a = ctx;
  return read_into(f, a->m, a->o);
}

static int do_read_training(sr_h5file *f, void *ctx) {
  read_args *a = ctx;
  SR_TRY(read_into(f, a->m, a->o));
  SR_TRY(read_state(f, a->m, a->s));
  return a->m->ops->read_state ? a->m->ops->read_state(a->m, f) : SR_OK;
}

int sr_checkpoint_read(const char *path, const sr_dataset *data, sr_config *cfg, sr_model **model) {
  *model = NULL;
  read_args a = {.data = data, .cfg = cfg, .model_out = model};
  return with_file(path, do_read_model, &a);
}

static int read_tensors(sr_h5file *f, sr_params *ps) {
  int64_t n_items;
  SR_TRY(check_header(f, &n_items));
  char **names;
  int n;
  SR_TRY(sr_h5_list_group(f, "/params", &names, &n));
  int rc = SR_OK;
  for (int i = 0; i < n && rc == SR_OK; i++) {
    char obj[SR_PARAM_NAME_MAX + 16];
    int ndim;
    int64_t shape[SR_PARAM_MAX_DIM];
    snprintf(obj, sizeof obj, "/params/%s", names[i]);
    rc = sr_h5_shape(f, obj, &ndim, shape, SR_PARAM_MAX_DIM);
    for (int d = 0; rc == SR_OK && d < ndim; d++)
      if (shape[d] < 1) ndim = 0; /* an empty tensor is no parameter */
    if (rc == SR_OK && (ndim < 1 || strlen(names[i]) >= SR_PARAM_NAME_MAX))
      rc = SR_FAIL(SR_EFORMAT, "%s: %s: not a parameter tensor", f->path, obj);
    if (rc == SR_OK) sr_params_add(ps, names[i], SR_PARAM_WEIGHT, ndim, shape); /* the kind is not stored */
  }
  sr_h5_free_names(names, n);
  SR_TRY(rc);
  sr_params_finalize(ps);
  return read_arena(f, ps, "/params", ps->values);
}

static int do_read_tensors(sr_h5file *f, void *ctx) { return read_tensors(f, ctx); }

int sr_checkpoint_read_tensors(const char *path, sr_params *ps) {
  sr_params_init(ps);
  int rc = with_file(path, do_read_tensors, ps);
  if (rc != SR_OK) sr_params_free(ps);
  return rc;
}

static int do_read_run_id(sr_h5file *f, void *ctx) {
  sr_train_state *s = ctx;
  if (!sr_h5_exists(f, "/train_state")) return SR_FAIL(SR_EFORMAT, "%s: not a training checkpoint", f->path);
  return read_identity(f, s);
}

int sr_checkpoint_read_run_id(const char *path, char *run_id, size_t size) {
  sr_train_state s;
  SR_TRY(with_file(path, do_read_run_id, &s));
  snprintf(run_id, size, "%s", s.run_id);
  return SR_OK;
}

int sr_checkpoint_read_config(const char *path, sr_config *cfg) {
  read_args a = {.cfg = cfg};
  return with_file(path, do_read_config, &a);
}

int sr_checkpoint_read_params(const char *path, sr_model *m, sr_optim *o) {
  read_args a = {.m = m, .o = o};
  return with_file(path, do_read_params, &a);
}

int sr_checkpoint_read_training(const char *path, sr_model *m, sr_optim *o, sr_train_state *state) {
  state->history = NULL;
  read_args a = {.m = m, .o = o, .s = state};
  int rc = with_file(path, do_read_training, &a);
  if (rc != SR_OK) {
    free(state->history);
    state->history = NULL;
  }
  return rc;
}

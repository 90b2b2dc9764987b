/* train.c — the training loop (train.h). */
#include "shardrec/train.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shardrec/checkpoint_dir.h"
#include "shardrec/device.h"
#include "shardrec/ease.h"
#include "shardrec/error.h"
#include "shardrec/evaluate.h"
#include "shardrec/exchange.h"
#include "shardrec/fsutil.h"
#include "shardrec/grad_reduce.h"
#include "shardrec/hash.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"
#include "shardrec/memory_plan.h"
#include "shardrec/nn.h"
#include "shardrec/optim.h"
#include "shardrec/rng.h"
#include "shardrec/run_info.h"
#include "shardrec/run_log.h"
#include "shardrec/schedule.h"
#include "shardrec/watchdog.h"

/* Running sums of a span of steps: a progress window or an epoch. */
typedef struct {
  int64_t steps;
  double train_seconds;
  double loss, terms[SR_MAX_LOSS_TERMS];
} step_sums;

typedef struct {
  const sr_config *cfg;
  const sr_dist *dist;
  /* The ranks that hold the same parameter slices and different data: the
   * world, or with item parallelism one rank per group (item_parallel.h). */
  const sr_dist *replicas;
  const sr_dataset *data;
  sr_model *model;
  sr_optim optim;
  sr_grad_reducer reducer;
  sr_device_trainer *device; /* run.device: cuda (device.h); NULL on the CPU */
  /* This rank's samples of the current global batch: the local training row
   * of each, its user, target item (pair samples), global id and position. */
  int64_t *local_rows, *local_users, *local_ids, *local_positions;
  int32_t *local_targets;
  int64_t n_samples;                    /* training samples over all ranks: users, or (user, item) pairs */
  int64_t pair_begin;                   /* pair samples: global id of this shard's first pair */
  sr_run_log log;                       /* metrics.jsonl (rank 0 of a run with a directory; else closed) */
  step_sums window;                     /* steps since the last progress record */
  step_sums epoch_sums;                 /* this epoch's steps, resumed runs included (kept in checkpoints) */
  char resumed_from[SR_PATH_MAX + 200]; /* the checkpoint resumed ("": a fresh start) */
  char ckpt_dir[SR_PATH_MAX + 160];     /* "" when checkpoints are off */
  int64_t steps_per_epoch, total_steps;
  int64_t planned_steps; /* train.epochs x steps_per_epoch: the learning-rate schedule's length (schedule.h) */
  double grad_norm;      /* global gradient norm of the last step (train.clip_grad_norm > 0) */
  double last_progress, last_bar;
  int progress_bar;                /* stderr is a terminal: a one-line progress bar instead of progress lines */
  sr_train_state state;            /* cursor, counters, best snapshot, history, run id: what checkpoints keep */
  uint64_t data_hash;              /* of this run's training data (hash_data) */
  char new_run_id[SR_RUN_ID_SIZE]; /* the id a fresh start takes */
  size_t history_cap;
  int time_up;               /* some rank's training clock passed train.time_limit_s */
  int stop_signal;           /* some rank received SIGTERM, SIGINT or SIGUSR1 (the lowest such signal number) */
  uint8_t *item_slice;       /* eval.slices: each item's popularity slice (n_items), NULL without slices */
  double last_checkpoint_at; /* sr_now() when the run started or last wrote a checkpoint */
  int checkpoint_due;        /* some rank's clock passed checkpoint.every_s since then (agreed) */
} trainer;

/* The signal that asked this process to stop training (0: none). Set by the
 * handler, read at step boundaries, where the ranks agree to stop. */
static volatile sig_atomic_t stop_requested;

static void request_stop(int sig) { stop_requested = sig; }

/* SIGTERM (scancel, preemption), SIGINT (Ctrl-C) and SIGUSR1 (sbatch
 * --signal) finish the step in progress, write a checkpoint and end the run;
 * a second one has its default effect (SA_RESETHAND). */
static const int stop_signals[3] = {SIGTERM, SIGINT, SIGUSR1};

static void catch_stop_signals(struct sigaction old[3]) {
  stop_requested = 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = request_stop;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 3; i++) sigaction(stop_signals[i], &sa, &old[i]);
}

static void restore_signals(const struct sigaction old[3]) {
  for (int i = 0; i < 3; i++) sigaction(stop_signals[i], &old[i], NULL);
}

static void optim_from_config(const sr_config *cfg, sr_optim *o) {
  sr_optim_init(o, (sr_optim_kind)cfg->train.optimizer);
  o->lr = (float)cfg->train.lr;
  o->beta1 = (float)cfg->train.beta1;
  o->beta2 = (float)cfg->train.beta2;
  o->eps = (float)cfg->train.eps;
  o->weight_decay = (float)cfg->train.weight_decay;
}

static void format_duration(double s, char *buf, size_t n) {
  if (s < 0 || !isfinite(s)) s = 0;
  long t = (long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else
    snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

/* Seconds rounded to milliseconds, as records carry them. */
static double ms(double seconds) { return round(seconds * 1000.0) / 1000.0; }

static void sums_add(step_sums *s, const sr_step_stats *st, double seconds) {
  s->steps++;
  s->train_seconds += seconds;
  s->loss += st->loss;
  for (int i = 0; i < st->n_terms; i++) s->terms[i] += st->terms[i];
}

/* The means of the sums' steps: "loss" and one key per loss term. */
static void set_means(json_t *r, const step_sums *s, const sr_step_stats *st) {
  const double n = s->steps > 0 ? (double)s->steps : 1.0;
  json_object_set_new(r, "loss", json_real(s->loss / n));
  for (int i = 0; i < st->n_terms; i++) json_object_set_new(r, st->term_names[i], json_real(s->terms[i] / n));
}

/* A float as the shortest decimal that reads back as it ("0.001", not 0.001000000047). */
static double shortest(float x) {
  char text[32];
  for (int digits = 1;; digits++) {
    snprintf(text, sizeof text, "%.*g", digits, (double)x);
    if (digits >= 9 || strtof(text, NULL) == x) return strtod(text, NULL);
  }
}

/* The fields every record starts with (docs/metrics.md): what it is, when
 * (UTC), where training stood (epoch, optimizer step), the learning rate and
 * the training time so far. */
static json_t *new_record(const trainer *t, const char *type, int64_t epoch, int64_t step) {
  char now[SR_TIMESTAMP_MAX];
  sr_utc_timestamp(now, sizeof now);
  json_t *r =
      json_pack("{s:s, s:s, s:I, s:I, s:f, s:f}", "type", type, "time", now, "epoch", (json_int_t)epoch, "step",
                (json_int_t)step, "lr", shortest(t->optim.lr), "total_train_s", ms(t->state.train_seconds));
  if (!r) SR_DIE("cannot build a metrics record");
  return r;
}

/* Appends a record (rank 0; the others drop theirs). A failed write is kept
 * by the log and stops training at the next agreement (reduce_stats,
 * save_checkpoint, the end of sr_train). */
static void write_record(trainer *t, json_t *r) {
  if (t->log.fd >= 0)
    (void)sr_run_log_write(&t->log, r);
  else
    json_decref(r);
}

static void set_metrics(json_t *r, const sr_metrics *m) {
  json_object_set_new(r, "users", json_integer(m->n_users));
  for (int i = 0; i < m->n; i++) {
    char name[SR_METRIC_NAME_MAX];
    sr_metric_name(&m->spec[i], name, sizeof name);
    json_object_set_new(r, name, json_real(sr_metrics_mean(m, i)));
  }
  json_t *slices = sr_metrics_slices_json(m);
  if (slices) json_object_set_new(r, "slices", slices);
}

/* The invocation: who ran what, where (one per start or resume). */
static void write_header(trainer *t) {
  json_t *h = new_record(t, "header", t->state.epoch, t->optim.step);
  json_object_set_new(h, "run_id", json_string(t->state.run_id));
  json_object_set_new(h, "command", json_string(sr_run_info_command()));
  json_object_set_new(h, "version", json_string(SHARDREC_VERSION));
  json_object_set_new(h, "git_commit", json_string(sr_run_info_git_commit()));
  json_object_set_new(h, "world_size", json_integer(t->dist->size));
  json_object_set_new(h, "device", json_string(t->device ? "cuda" : "cpu"));
  json_object_set_new(h, "model", json_string(t->model->ops->name));
  json_object_set_new(h, "resumed_from", t->resumed_from[0] ? json_string(t->resumed_from) : json_null());
  write_record(t, h);
}

/* The epoch's running sums as checkpoints keep them (full precision). */
static void save_epoch_sums(trainer *t) {
  const step_sums *s = &t->epoch_sums;
  json_t *terms = json_array();
  for (int i = 0; i < SR_MAX_LOSS_TERMS; i++) json_array_append_new(terms, json_real(s->terms[i]));
  json_t *j = json_pack("{s:I, s:f, s:f, s:o}", "steps", (json_int_t)s->steps, "train_seconds", s->train_seconds,
                        "loss", s->loss, "terms", terms);
  char *text = json_dumps(j, JSON_COMPACT);
  if (!text || strlen(text) >= sizeof t->state.epoch_sums) SR_DIE("epoch sums do not fit the training state");
  memcpy(t->state.epoch_sums, text, strlen(text) + 1);
  free(text);
  json_decref(j);
}

/* The running sums of the epoch a checkpoint stopped in ("": none yet). */
static int restore_epoch_sums(trainer *t) {
  memset(&t->epoch_sums, 0, sizeof t->epoch_sums);
  if (!t->state.epoch_sums[0]) return SR_OK;
  json_error_t err;
  json_t *j = json_loads(t->state.epoch_sums, 0, &err), *terms = NULL;
  json_int_t steps = 0;
  step_sums *s = &t->epoch_sums;
  int bad = json_unpack(j, "{s:I, s:F, s:F, s:o}", "steps", &steps, "train_seconds", &s->train_seconds, "loss",
                        &s->loss, "terms", &terms) != 0 ||
            !json_is_array(terms) || json_array_size(terms) != SR_MAX_LOSS_TERMS || steps < 0;
  for (int i = 0; !bad && i < SR_MAX_LOSS_TERMS; i++) s->terms[i] = json_number_value(json_array_get(terms, i));
  s->steps = steps;
  json_decref(j);
  if (bad)
    return SR_FAIL(SR_EFORMAT, "the resumed checkpoint's /train_state epoch_sums is damaged: %s",
                   t->state.epoch_sums);
  return SR_OK;
}

/* A validation record, also kept in the history that checkpoints carry. */
static void record_validation(trainer *t, int64_t epoch, const sr_metrics *m, int best, double seconds) {
  json_t *r = new_record(t, "valid", epoch, t->optim.step);
  set_metrics(r, m);
  json_object_set_new(r, "best", json_boolean(best));
  json_object_set_new(r, "valid_s", json_real(ms(seconds)));
  char *line = sr_run_log_format(r);
  const size_t len = strlen(line), used = t->state.history ? strlen(t->state.history) : 0;
  sr_grow(&t->state.history, &t->history_cap, used + len + 2);
  memcpy(t->state.history + used, line, len);
  memcpy(t->state.history + used + len, "\n", 2);
  free(line);
  write_record(t, r);
}

/* A test record of the selected model: its epoch and step. */
static void record_test(trainer *t, const char *type, const sr_metrics *m) {
  json_t *r = new_record(t, type, t->state.best_epoch, t->state.best_step);
  set_metrics(r, m);
  json_object_set_new(r, "final_step", json_integer(t->optim.step));
  write_record(t, r);
}

/* Progress of the run so far, for the line, the bar and the record. */
typedef struct {
  double rate; /* samples per second of training time */
  char eta[32];
} progress_figures;

static void progress_figures_of(const trainer *t, progress_figures *p) {
  const sr_train_state *s = &t->state;
  p->rate = s->train_seconds > 0 ? (double)s->samples_seen / s->train_seconds : 0.0;
  double remaining_steps = (double)(t->total_steps - t->optim.step);
  double eta = t->optim.step > 0 ? remaining_steps * s->train_seconds / (double)t->optim.step : 0.0;
  if (t->cfg->train.time_limit_s > 0) {
    double left = t->cfg->train.time_limit_s - s->train_seconds;
    if (left < eta) eta = left;
  }
  format_duration(eta, p->eta, sizeof p->eta);
}

/* On a terminal: one line, redrawn at most 10 times a second. */
static void progress_bar(trainer *t, int64_t epoch, const sr_step_stats *st) {
  double now = sr_now();
  if (now - t->last_bar < 0.1) return;
  t->last_bar = now;
  progress_figures p;
  progress_figures_of(t, &p);
  const int width = 24;
  const double done = t->total_steps > 0 ? (double)t->optim.step / (double)t->total_steps : 0.0;
  char bar[32];
  int filled = (int)(done * width);
  for (int i = 0; i < width; i++) bar[i] = i < filled ? '=' : i == filled ? '>' : ' ';
  bar[width] = '\0';
  sr_log_status("[%s] %3.0f%%  epoch %lld/%d  step %lld/%lld  loss %.4f  %.0f %s/s  eta %s", bar, 100.0 * done,
                (long long)epoch, t->cfg->train.epochs, (long long)t->optim.step, (long long)t->total_steps, st->loss,
                p.rate, sr_sample_unit_name(t->model->ops->samples), p.eta);
}

/* Every run.log_every_s: a progress line (not on a terminal, where the bar
 * shows it) and a record of the window's mean loss since the last one. */
static void progress(trainer *t, int64_t epoch, const sr_step_stats *st) {
  if (t->progress_bar) progress_bar(t, epoch, st);
  double now = sr_now();
  if (now - t->last_progress < t->cfg->run.log_every_s) return;
  t->last_progress = now;
  progress_figures p;
  progress_figures_of(t, &p);
  const step_sums *w = &t->window;
  const double n = w->steps > 0 ? (double)w->steps : 1.0;
  const char *unit = sr_sample_unit_name(t->model->ops->samples);
  if (!t->progress_bar) {
    /* The loss, then its terms (e.g. "neg_ll 231.2  kl 10.5", "main 4.6  ssl 2.1"): means since the last line. */
    char terms[160] = "";
    size_t used = 0;
    for (int i = 0; i < st->n_terms && used < sizeof terms; i++)
      used += (size_t)snprintf(terms + used, sizeof terms - used, "  %s %.4f", st->term_names[i], w->terms[i] / n);
    if (t->cfg->train.clip_grad_norm > 0 && used < sizeof terms)
      snprintf(terms + used, sizeof terms - used, "  grad_norm %.4g", t->grad_norm);
    sr_info("epoch %lld/%d  step %lld  lr %.3g  loss %.4f%s  %.0f %s/s  eta %s", (long long)epoch,
            t->cfg->train.epochs, (long long)t->optim.step, t->optim.lr, w->loss / n, terms, p.rate, unit, p.eta);
  }
  json_t *r = new_record(t, "train", epoch, t->optim.step);
  set_means(r, w, st);
  json_object_set_new(r, "window_steps", json_integer(w->steps));
  json_object_set_new(r, "beta", json_real(st->beta));
  if (t->cfg->train.clip_grad_norm > 0) json_object_set_new(r, "grad_norm", json_real(t->grad_norm));
  char rate_key[32];
  snprintf(rate_key, sizeof rate_key, "%s_per_s", unit);
  json_object_set_new(r, rate_key, json_real(round(p.rate * 10.0) / 10.0));
  write_record(t, r);
  memset(&t->window, 0, sizeof t->window);
}

/* Sums this rank's loss shares into the global-batch values. The same
 * reduction carries "my clock passed train.time_limit_s" and "my clock says
 * a checkpoint is due", so that every rank takes those decisions at the same
 * step. */
static int reduce_stats(trainer *t, sr_step_stats *st) {
  enum { FLAGS = 5 };
  double sums[FLAGS + SR_MAX_LOSS_TERMS] = {0};
  double limit = t->cfg->train.time_limit_s, every_s = t->cfg->checkpoint.every_s;
  const int sig = stop_requested;
  sums[0] = st->loss;
  sums[1] = limit > 0 && t->state.train_seconds >= limit;
  sums[2] = sig != 0;
  sums[3] = t->log.failed; /* rank 0 could not write a record: everyone stops */
  sums[4] = every_s > 0 && sr_now() - t->last_checkpoint_at >= every_s;
  for (int i = 0; i < st->n_terms; i++) sums[FLAGS + i] = st->terms[i];
  SR_TRY(sr_dist_sum_f64(t->dist, sums, FLAGS + SR_MAX_LOSS_TERMS));
  st->loss = sums[0];
  t->time_up = sums[1] > 0;
  if (sums[2] > 0 && !t->stop_signal) t->stop_signal = sig ? sig : SIGTERM; /* a peer's: named as the usual one */
  t->checkpoint_due = sums[4] > 0;
  for (int i = 0; i < st->n_terms; i++) st->terms[i] = sums[FLAGS + i];
  if (sums[3] > 0)
    return t->log.failed ? sr_run_log_status(&t->log) : SR_FAIL(SR_EIO, "rank 0 cannot write metrics.jsonl");
  return SR_OK;
}

/* The local training row holding local pair k: the last row whose first
 * entry is at or before k (rows may be empty). */
static int64_t row_of_pair(const sr_csr *train, int64_t k) {
  int64_t lo = 0, hi = train->n_rows; /* invariant: indptr[lo] <= k < indptr[hi] */
  while (hi - lo > 1) {
    int64_t mid = lo + (hi - lo) / 2;
    if (train->indptr[mid] <= k)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

/* Picks this rank's samples out of the global batch order[0..n) (global
 * sample ids: training rows, or pairs numbered in the global CSR's entry
 * order); returns how many. */
static int64_t select_local_samples(trainer *t, const int64_t *order, int64_t n) {
  const sr_dataset *d = t->data;
  const int pairs = t->model->ops->samples == SR_SAMPLES_PAIRS;
  int64_t n_local = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t local = order[i] - (pairs ? t->pair_begin : d->train_row_begin);
    if (local < 0 || local >= (pairs ? d->train.nnz : d->train.n_rows)) continue;
    int64_t row = pairs ? row_of_pair(&d->train, local) : local;
    t->local_rows[n_local] = row;
    t->local_users[n_local] = d->train_user_ids[row];
    if (pairs) t->local_targets[n_local] = d->train.indices[local];
    t->local_positions[n_local] = i;
    t->local_ids[n_local++] = order[i];
  }
  return n_local;
}

/* Gradient clipping by global norm (train.clip_grad_norm), as
 * torch.nn.utils.clip_grad_norm_ computes it in one process: the L2 norm of
 * the summed gradient of every parameter, each element counted once
 * whichever rank holds it (grad_reduce.h; owned_sparse_sq: the sparse
 * tail's share, model.h). Over the limit, the dense gradients are scaled
 * here and the sparse tail's by *sparse_scale when it is updated. */
static int clip_gradients(trainer *t, double owned_sparse_sq, float *sparse_scale) {
  const sr_item_grid *g = t->model->items;
  /* An item-parallel group holds the parameters it does not split K times: its shard 0 counts them. */
  const int count_replicated = !(g && g->rows_shared) || g->shard == 0;
  double sq = owned_sparse_sq + sr_grad_reducer_owned_sq_norm(&t->reducer, count_replicated);
  SR_TRY(sr_dist_sum_f64(t->dist, &sq, 1));
  t->grad_norm = sqrt(sq);
  const double coef = t->cfg->train.clip_grad_norm / (t->grad_norm + 1e-6);
  if (!(coef < 1.0)) return SR_OK; /* within the limit, or a non-finite norm, which the update reports */
  sr_grad_reducer_scale(&t->reducer, (float)coef);
  *sparse_scale = (float)coef;
  return SR_OK;
}

/* Tests only: SHARDREC_TEST_HOLD_AT_STEP=S stops every rank (with
 * SHARDREC_TEST_HOLD_RANK=R, rank R alone) before step S + 1 until a stop
 * signal arrives, as a rank stuck in I/O would: the stall and preemption
 * tests then act at a known point, whatever the machine's speed. */
static void hold_if_asked(const trainer *t) {
  const char *step = getenv("SHARDREC_TEST_HOLD_AT_STEP"), *rank = getenv("SHARDREC_TEST_HOLD_RANK");
  if (!step || atoll(step) != t->optim.step || (rank && atoi(rank) != t->dist->rank)) return;
  fprintf(stderr, "test hook: rank %d holding after %lld steps until a stop signal\n", t->dist->rank,
          (long long)t->optim.step);
  fflush(stderr);
  while (!stop_requested) nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
}

/* One optimizer update on the global batch whose samples (global ids) are
 * order[0..n). This rank computes the samples it holds; the summed
 * gradients are those of the whole batch. */
static int train_step(trainer *t, const int64_t *order, int64_t n, sr_step_stats *st) {
  sr_watchdog_mark(t->optim.step, SR_PHASE_COMPUTE);
  hold_if_asked(t);
  int64_t n_local = select_local_samples(t, order, n);
  sr_csr rows;
  sr_csr_gather_rows(&t->data->train, t->local_rows, n_local, &rows);
  sr_batch batch = {.rows = &rows,
                    .targets = t->model->ops->samples == SR_SAMPLES_PAIRS ? t->local_targets : NULL,
                    .user_ids = t->local_users,
                    .sample_ids = t->local_ids,
                    .positions = t->local_positions,
                    .global_batch = n,
                    .step = (uint64_t)t->optim.step,
                    .dist = t->dist,
                    .grad_ready = t->device ? sr_device_trainer_ready_cb : sr_grad_reducer_ready_cb,
                    .grad_ready_ctx = t->device ? (void *)t->device : (void *)&t->reducer};
  sr_params *ps = &t->model->params; /* gradients are zero: the optimizer consumed the last ones */
  if (t->device)
    sr_device_trainer_begin(t->device);
  else
    sr_grad_reducer_begin(&t->reducer);
  int rc = t->model->ops->forward_backward(t->model, &batch, st);
  sr_csr_free(&rows);
  SR_TRY(rc);
  sr_watchdog_mark(t->optim.step, SR_PHASE_REDUCE);
  SR_TRY(t->device ? sr_device_trainer_reduce(t->device) : sr_grad_reducer_finish(&t->reducer));
  SR_TRY(reduce_stats(t, st));
  /* Identical on every rank from here on: the decision to stop is collective. */
  st->loss += t->model->ops->add_param_penalty(t->model);
  if (!isfinite(st->loss))
    return SR_FAIL(SR_ENUMERIC, "non-finite loss at step %lld (%g); lower train.lr or check the input data",
                   (long long)t->optim.step, st->loss);
  double owned_sparse_sq = 0.0;
  if (t->model->ops->reduce_sparse) SR_TRY(t->model->ops->reduce_sparse(t->model, t->dist, &owned_sparse_sq));
  float sparse_scale = 1.0f;
  if (t->cfg->train.clip_grad_norm > 0) SR_TRY(clip_gradients(t, owned_sparse_sq, &sparse_scale));
  t->optim.lr = (float)sr_lr_at(t->cfg, t->optim.step, t->planned_steps);
  /* Each rank updates the slices it owns (all of them unless the optimizer is
   * sharded, grad_reduce.h); sharded slices are then all-gathered. */
  sr_watchdog_mark(t->optim.step, SR_PHASE_UPDATE);
  int64_t bad = 0;
  if (t->device) {
    SR_TRY(sr_device_trainer_update(t->device, &t->optim, &bad));
  } else {
    bad = sr_optim_step_ranges(&t->optim, ps, t->reducer.owned, t->reducer.n_buckets);
    /* Replicas count the same values; ranks of other slices must stop too. */
    if (t->reducer.shard_optimizer || t->replicas != t->dist) SR_TRY(sr_dist_sum_i64(t->dist, &bad, 1));
    if (t->reducer.shard_optimizer) SR_TRY(sr_grad_reducer_gather_values(&t->reducer));
  }
  /* Embedding tables: their touched rows, updated identically on every rank
   * that holds them (so `bad` stays the same everywhere). */
  if (t->model->ops->update_sparse)
    SR_TRY(t->model->ops->update_sparse(t->model, t->dist, &t->optim, sparse_scale, &bad));
  if (bad > 0)
    return SR_FAIL(SR_ENUMERIC,
                   "%lld non-finite gradient values at step %lld; lower train.lr or check the input data",
                   (long long)bad, (long long)t->optim.step - 1);
  return SR_OK;
}

/* Metrics of the model on a (sharded) split: each rank scores its rows, the
 * sums and counts are added over ranks. */
static int evaluate_split(trainer *t, const sr_eval_split *split, sr_metrics *m) {
  sr_watchdog_mark(t->optim.step, SR_PHASE_VALIDATE);
  sr_metrics_reset(m);
  sr_evaluate_rows(t->model, split, 0, split->n_users, t->cfg->train.eval_batch_size, m);
  return sr_metrics_reduce(t->dist, m);
}

/* Validates; keeps a snapshot of the parameters when the selection metric
 * improves. *improved tells whether it did. Counts, for early stopping, the
 * validations in a row that do not beat the best by more than
 * train.min_delta. */
static int validate(trainer *t, int64_t epoch, sr_metrics *m, int select_index, int *improved) {
  const double start = sr_now();
  sr_train_state *s = &t->state;
  if (t->data->valid.n_users_total == 0) { /* a fixed number of epochs: the last one is the model */
    *improved = 1;
    s->best_epoch = epoch;
    s->best_step = t->optim.step;
    if (t->device) SR_TRY(sr_device_trainer_download(t->device, 0));
    memcpy(s->best_values, t->model->params.values, (size_t)t->model->params.total * sizeof(float));
    return SR_OK;
  }
  SR_TRY(evaluate_split(t, &t->data->valid, m));
  double value = sr_metrics_mean(m, select_index);
  *improved = s->best_epoch == 0 || value > s->best_value;
  if (s->best_epoch == 0 || value > s->best_value + t->cfg->train.min_delta)
    s->evals_without_improvement = 0;
  else
    s->evals_without_improvement++;
  char line[512];
  sr_metrics_format(m, line, sizeof line);
  sr_info("epoch %lld  valid %s%s", (long long)epoch, line, *improved ? "  (best)" : "");
  sr_metrics_log_slices(NULL, "        valid", m);
  record_validation(t, epoch, m, *improved, sr_now() - start);
  if (!*improved) return SR_OK;
  s->best_value = value;
  s->best_epoch = epoch;
  s->best_step = t->optim.step;
  if (t->device) SR_TRY(sr_device_trainer_download(t->device, 0));
  memcpy(s->best_values, t->model->params.values, (size_t)t->model->params.total * sizeof(float));
  return SR_OK;
}

/* Rank 0 writes a training checkpoint (the others send their slices of sharded tensors) for the cursor (epoch,
 * position) and updates the directory's pointers; every rank learns whether it worked. */
static int save_checkpoint(trainer *t, int64_t epoch, int64_t position, int is_best) {
  if (!t->ckpt_dir[0]) return SR_OK;
  sr_watchdog_mark(t->optim.step, SR_PHASE_CHECKPOINT);
  if (t->device) SR_TRY(sr_device_trainer_download(t->device, 1)); /* host arenas, as the CPU has them */
  SR_TRY(sr_grad_reducer_gather_optimizer_state(&t->reducer));     /* collective */
  t->state.epoch = epoch;
  t->state.position = position;
  t->state.metrics_offset = t->log.size; /* rank 0's is the one written */
  if (position == 0)
    t->state.epoch_sums[0] = '\0'; /* a new epoch starts */
  else
    save_epoch_sums(t);
  char path[SR_PATH_MAX + 200];
  sr_ckptdir_path(t->ckpt_dir, t->optim.step, path, sizeof path);
  SR_TRY(sr_checkpoint_write_training(path, t->model, t->cfg, &t->optim, &t->state)); /* collective */
  int rc = SR_OK;
  if (t->dist->rank == 0) {
    rc = sr_ckptdir_commit(t->ckpt_dir, path, is_best, t->cfg->checkpoint.keep_last, t->state.run_id);
    if (rc == SR_OK) sr_debug("checkpoint %s", path);
    if (rc == SR_OK) rc = sr_run_log_status(&t->log);
  }
  t->last_checkpoint_at = sr_now();
  t->checkpoint_due = 0;
  return sr_dist_agree(t->dist, rc);
}

/* The most-popular-items baseline on the test split, for comparison. The
 * ranks of a group hold the same rows: counts and metrics are summed over
 * the replicas. */
static int test_popularity(trainer *t, sr_train_result *res) {
  float *popularity = sr_malloc((size_t)t->data->n_items * sizeof(float));
  int rc = sr_global_popularity(t->replicas, &t->data->train, popularity);
  sr_metrics_reset(&res->test_popularity);
  if (rc == SR_OK)
    sr_evaluate_popularity(popularity, t->data->n_items, &t->data->test, t->cfg->train.eval_batch_size,
                           &res->test_popularity);
  free(popularity);
  SR_TRY(rc);
  return sr_metrics_reduce(t->replicas, &res->test_popularity);
}

/* eval.slices (popularity, the only slicing): every item's slice by its
 * training interactions over the replicas, set in the result's metrics
 * before they are copied for validation and test. */
static int init_slices(trainer *t, sr_train_result *res) {
  t->item_slice = sr_malloc((size_t)t->data->n_items);
  SR_TRY(sr_popularity_slice_map(t->replicas, &t->data->train, t->cfg->eval.popularity_shares, t->item_slice));
  sr_metrics_set_slices(&res->best_valid, t->item_slice, t->data->n_items);
  res->test = res->test_popularity = res->best_valid;
  return SR_OK;
}

/* Early stopping (train.patience): the validations without improvement
 * reached the patience (also when a resumed checkpoint says so). */
static int patience_exhausted(const trainer *t) {
  return t->cfg->train.patience > 0 && t->state.evals_without_improvement >= t->cfg->train.patience;
}

static void write_stop_record(trainer *t, int64_t epoch, const char *reason) {
  json_t *r = new_record(t, "stop", epoch, t->optim.step);
  json_object_set_new(r, "reason", json_string(reason));
  write_record(t, r);
}

/* Why training ended, printed and recorded in metrics.jsonl:
 * {"type":"stop","epoch":E,"step":S,"reason":R} with R one of epochs,
 * max_steps, time_limit, signal, early_stopping (and fitted for a
 * closed-form model). */
static void record_stop(trainer *t, int64_t epoch, sr_train_result *res) {
  const sr_config *cfg = t->cfg;
  char detail[256] = "";
  if (t->stop_signal) {
    res->stop_reason = "signal";
    snprintf(detail, sizeof detail, "signal %d (%s)", t->stop_signal, strsignal(t->stop_signal));
  } else if (patience_exhausted(t)) {
    res->stop_reason = "early_stopping";
    snprintf(detail, sizeof detail,
             "%s did not improve by more than %g in %lld validations (train.patience %d); best %.6f at epoch %lld",
             cfg->train.select_metric, cfg->train.min_delta, (long long)t->state.evals_without_improvement,
             cfg->train.patience, t->state.best_value, (long long)t->state.best_epoch);
  } else if (t->time_up) {
    res->stop_reason = "time_limit";
    snprintf(detail, sizeof detail, "train.time_limit_s %g reached", cfg->train.time_limit_s);
  } else if (cfg->train.max_steps > 0 && t->optim.step >= cfg->train.max_steps) {
    res->stop_reason = "max_steps";
    snprintf(detail, sizeof detail, "train.max_steps %lld reached", (long long)cfg->train.max_steps);
  } else {
    res->stop_reason = "epochs";
    snprintf(detail, sizeof detail, "train.epochs %d completed", cfg->train.epochs);
  }
  sr_info("training stopped at epoch %lld, step %lld: %s", (long long)epoch, (long long)t->optim.step, detail);
  write_stop_record(t, epoch, res->stop_reason);
}

/* Epochs from the cursor in t->state (1, 0 for a fresh run) to the end. */
static int run_epochs(trainer *t, sr_train_result *res) {
  const sr_config *cfg = t->cfg;
  const int64_t n_train = t->n_samples, B = cfg->train.batch_size;
  const int64_t every_steps = cfg->checkpoint.every_steps;
  /* The cursor to start from; t->state's copy moves on with every checkpoint. */
  const int64_t start_epoch = t->state.epoch, start_position = t->state.position;
  int select_index = sr_metrics_find(&res->best_valid, cfg->train.select_metric);
  int64_t *order = sr_malloc((size_t)n_train * sizeof *order);
  sr_metrics valid = res->best_valid;
  sr_step_stats st = {0};
  /* A resumed run that had stopped early stays stopped. */
  int rc = SR_OK, stop = patience_exhausted(t);
  int64_t epoch = start_epoch;
  for (; epoch <= cfg->train.epochs && !stop; epoch++) {
    sr_rng shuffle;
    sr_rng_init(&shuffle, (uint64_t)cfg->run.seed, SR_RNG_SHUFFLE, (uint64_t)epoch, 0);
    sr_rng_permutation(&shuffle, order, n_train);
    int64_t b = epoch == start_epoch ? start_position : 0;
    if (epoch != start_epoch) memset(&t->epoch_sums, 0, sizeof t->epoch_sums);
    for (; b < n_train && !stop;) {
      int64_t n = b + B < n_train ? B : n_train - b;
      double t0 = sr_now(), cpu0 = sr_cpu_seconds();
      rc = train_step(t, order + b, n, &st);
      if (rc) {
        sr_error_prefix("epoch %lld", (long long)epoch);
        goto done;
      }
      b += n;
      const double seconds = sr_now() - t0;
      t->state.train_seconds += seconds;
      res->train_cpu_seconds += sr_cpu_seconds() - cpu0;
      t->state.samples_seen += n;
      sums_add(&t->window, &st, seconds);
      sums_add(&t->epoch_sums, &st, seconds);
      progress(t, epoch, &st);
      stop = (cfg->train.max_steps > 0 && t->optim.step >= cfg->train.max_steps) || t->time_up || t->stop_signal;
      if (((every_steps > 0 && t->optim.step % every_steps == 0) || t->checkpoint_due) && !stop && b < n_train &&
          (rc = save_checkpoint(t, epoch, b, 0)))
        goto done;
    }
    res->epochs_completed = (int)epoch;
    const step_sums *e = &t->epoch_sums;
    sr_log_status_clear();
    sr_info("epoch %lld  %lld steps (to step %lld) in %.3fs  mean loss %.4f%s", (long long)epoch, (long long)e->steps,
            (long long)t->optim.step, e->train_seconds, e->steps ? e->loss / (double)e->steps : 0.0,
            t->stop_signal ? "  (stopping: signal)"
            : stop         ? "  (stopping: step or time limit reached)"
                           : "");
    /* Resumed at this epoch's end (a signal stopped it there): its record was written. */
    if (!(epoch == start_epoch && start_position >= n_train)) {
      json_t *r = new_record(t, "epoch", epoch, t->optim.step);
      json_object_set_new(r, "steps", json_integer(e->steps));
      set_means(r, e, &st);
      json_object_set_new(r, "train_s", json_real(ms(e->train_seconds)));
      write_record(t, r);
    }
    int last = stop || epoch == cfg->train.epochs, improved = 0;
    /* Stopped by a signal, time is short (Slurm kills after KillWait):
     * the checkpoint only; a resumed run validates at this epoch's end. */
    if ((epoch % cfg->train.eval_every == 0 || last) && !t->stop_signal) {
      rc = validate(t, epoch, &valid, select_index, &improved);
      if (rc) goto done;
      if (patience_exhausted(t)) stop = last = 1;
    }
    /* The cursor saved is where training continues: this epoch's next row
     * after a stop, else the start of the next epoch. */
    int due = (cfg->checkpoint.every_epochs > 0 && epoch % cfg->checkpoint.every_epochs == 0) || t->checkpoint_due;
    /* After a signal at an epoch's end the cursor stays in that epoch (at its
     * end), so that the resumed run still validates it. */
    if ((due || last) && (rc = b < n_train || t->stop_signal ? save_checkpoint(t, epoch, b, improved)
                                                             : save_checkpoint(t, epoch + 1, 0, improved)))
      goto done;
    /* A better model than the checkpoint `best` names, and no checkpoint of it. */
    if (improved && !(due || last) && t->ckpt_dir[0] &&
        (rc = sr_dist_agree(t->dist, t->dist->rank == 0 ? sr_ckptdir_forget_best(t->ckpt_dir) : SR_OK)))
      goto done;
  }
  if (rc == SR_OK) record_stop(t, epoch - 1, res);
  if (rc == SR_OK && t->stop_signal)
    rc = SR_FAIL(SR_ESTOPPED, "stopped on signal %d (%s) at step %lld%s; continue with --resume auto", t->stop_signal,
                 strsignal(t->stop_signal), (long long)t->optim.step,
                 t->ckpt_dir[0] ? " after writing a checkpoint" : " (checkpoints are off: nothing was saved)");
done:
  res->last_loss = st.loss;
  free(order);
  return rc;
}

/* How many samples the global order ranges over, and (pair samples) where
 * this shard's pairs start in it: shards are consecutive rows in rank order. */
static int count_samples(trainer *t) {
  if (t->model->ops->samples == SR_SAMPLES_USERS) {
    t->n_samples = t->data->train_rows_total;
    return SR_OK;
  }
  sr_exchange_layout l;
  SR_TRY(sr_exchange_layout_init(&l, t->dist, t->data->train.nnz));
  t->n_samples = l.total;
  t->pair_begin = l.offset[t->dist->rank];
  sr_exchange_layout_free(&l);
  return SR_OK;
}

/* The content hash of the training data over all shards (dataset.h): each
 * data part is held by exactly one rank of t->replicas. */
static int hash_data(trainer *t, uint64_t *hash) {
  const uint64_t rows = sr_dataset_rows_hash(t->data);
  int64_t halves[2] = {(int64_t)(rows & 0xffffffffu), (int64_t)(rows >> 32)}; /* sums that cannot overflow */
  SR_TRY(sr_dist_sum_i64(t->replicas, halves, 2));
  const uint64_t parts[2] = {(uint64_t)halves[0] + ((uint64_t)halves[1] << 32), sr_dataset_shared_hash(t->data)};
  *hash = sr_hash64(parts, sizeof parts, SR_HASH64_INIT);
  return SR_OK;
}

/* A new run id, 128 random bits in hex, drawn by rank 0 and given to every
 * rank (a sum to which the others add zeros). */
static int draw_run_id(const sr_dist *dist, char id[SR_RUN_ID_SIZE]) {
  int64_t bits[2] = {0, 0};
  if (dist->rank == 0 && getentropy(bits, sizeof bits) != 0) { /* no entropy source: time and pid */
    const double now = sr_now();
    bits[0] = (int64_t)sr_hash64(&now, sizeof now, SR_HASH64_INIT);
    bits[1] = (int64_t)getpid();
  }
  SR_TRY(sr_dist_sum_i64(dist, bits, 2));
  snprintf(id, SR_RUN_ID_SIZE, "%016llx%016llx", (unsigned long long)bits[0], (unsigned long long)bits[1]);
  return SR_OK;
}

/* A resumed checkpoint must come from this run: the seed, the data (its
 * content hash; data.path for checkpoints without one) and the model it was
 * trained with are this config's, unless the user says otherwise
 * (checkpoint.allow_changes). Schedules, limits and parallelism may change. */
static int check_same_run(const trainer *t, const char *checkpoint) {
  const sr_config *cfg = t->cfg;
  sr_config stored;
  SR_TRY(sr_checkpoint_read_config(checkpoint, &stored));
  stored.model.table_sharding = cfg->model.table_sharding; /* how tables are placed, not what they are */
  const int hashed = t->state.data_hash != 0;
  static const char *const identity[] = {"run.seed", "model.", "data.path"};
  char keys[SR_PATH_MAX + 1024];
  int n = sr_config_diff(cfg, &stored, identity, hashed ? 2 : 3, keys, sizeof keys);
  if (hashed && t->state.data_hash != t->data_hash) {
    const size_t used = strlen(keys);
    n += snprintf(keys + used, sizeof keys - used,
                  "%sthe data (data.path %s: content hash %016llx, the checkpoint's %016llx)", n ? ", " : "",
                  cfg->data.path, (unsigned long long)t->data_hash, (unsigned long long)t->state.data_hash) > 0;
  }
  if (n == 0) return SR_OK;
  if (cfg->checkpoint.allow_changes) {
    sr_warn("resuming %s although %s differ (checkpoint.allow_changes)", checkpoint, keys);
    return SR_OK;
  }
  return SR_FAIL(SR_ECONFIG,
                 "%s was trained with other values of %s than this config: it is another run's checkpoint (start "
                 "this one with another run.name, or set checkpoint.allow_changes: true to continue it anyway)",
                 checkpoint, keys);
}

/* Where the run starts: a resumed checkpoint (checkpoint.resume; with
 * "auto", a fresh start where none was written yet), the parameters of
 * train.init_from, or the seeded initialisation. */
static int prepare_start(trainer *t) {
  const sr_config *cfg = t->cfg;
  t->state.epoch = 1;
  t->state.best_step = -1;
  t->state.metrics_offset = -1;
  if (cfg->checkpoint.resume[0]) {
    char *chosen = t->resumed_from;
    SR_TRY(sr_ckptdir_resume(t->ckpt_dir, cfg->checkpoint.resume, t->model, &t->optim, &t->state, chosen,
                             sizeof t->resumed_from));
    if (chosen[0]) {
      t->history_cap = t->state.history ? strlen(t->state.history) + 1 : 0;
      SR_TRY(check_same_run(t, chosen));
      SR_TRY(restore_epoch_sums(t));
      sr_info("resuming run %s from %s: epoch %lld, sample %lld, step %lld",
              t->state.run_id[0] ? t->state.run_id : "(no id)", chosen, (long long)t->state.epoch,
              (long long)t->state.position, (long long)t->optim.step);
      if (!t->state.run_id[0]) memcpy(t->state.run_id, t->new_run_id, sizeof t->new_run_id); /* an older file */
      t->state.data_hash = t->data_hash;
      return SR_OK;
    }
    sr_info("--resume auto: no checkpoint in %s yet, starting the run", t->ckpt_dir);
  }
  memcpy(t->state.run_id, t->new_run_id, sizeof t->new_run_id);
  t->state.data_hash = t->data_hash;
  sr_info("run %s", t->state.run_id);
  if (cfg->train.init_from[0]) {
    SR_TRY(sr_checkpoint_read_params(cfg->train.init_from, t->model, cfg->train.init_optimizer ? &t->optim : NULL));
    sr_info("initialised from %s%s", cfg->train.init_from,
            cfg->train.init_optimizer ? " (with optimizer state)" : "");
  }
  return SR_OK;
}

/* The model on the device run.device resolves to, the rank bound to its GPU;
 * *on_device tells which. Every rank must resolve alike. */
static int create_model(trainer *t, int *on_device) {
  SR_TRY(sr_device_resolve(t->cfg->run.device, on_device));
  int64_t ranks_on_device = *on_device;
  SR_TRY(sr_dist_sum_i64(t->dist, &ranks_on_device, 1));
  if (ranks_on_device != 0 && ranks_on_device != t->dist->size)
    return SR_FAIL(SR_EINVAL, "run.device: auto found a usable GPU on %lld of %d ranks; set run.device explicitly",
                   (long long)ranks_on_device, t->dist->size);
  if (!*on_device) return sr_model_create_on(t->cfg, t->data, t->dist, &t->model);
  if (t->cfg->train.clip_grad_norm > 0)
    return SR_FAIL(SR_ECONFIG,
                   "train.clip_grad_norm is not available with run.device: cuda (docs/config.md): train on "
                   "the CPU (run.device: cpu) or set it to 0");
  SR_TRY(sr_device_bind(t->dist));
  return sr_device_model_create(t->cfg, t->data, t->dist, &t->model);
}

/* Replicated parameters start identical: initialisation is keyed by (seed,
 * parameter), not by rank, and every rank loads the same checkpoint;
 * verified (sharded ones differ by construction). */
static int check_replicas(const sr_dist *dist, const sr_params *ps) {
  if (sr_params_sharded(ps) == 0)
    return sr_dist_check_identical(dist, ps->values, (size_t)ps->total * sizeof(float), "the initial parameters");
  for (int i = 0; i < ps->count; i++) {
    const sr_param *p = &ps->items[i];
    if (p->shard.dim >= 0) continue;
    char what[SR_PARAM_NAME_MAX + 32];
    snprintf(what, sizeof what, "the initial value of %s", p->name);
    SR_TRY(sr_dist_check_identical(dist, p->value, (size_t)p->numel * sizeof(float), what));
  }
  return SR_OK;
}

/* Prints what each rank holds (and the item grid) and refuses a run that
 * does not fit (memory_plan.h). A rank computes its share of a global batch
 * (one replica's rows) and evaluates batches of its split rows. */
static int check_memory(trainer *t, const sr_memory_budget *budget) {
  const sr_item_grid *g = t->model->items;
  if (g && g->rows_shared)
    sr_info("item parallelism: %d replica(s) x %d item shards; rank 0 holds items [%lld, %lld)", g->n_replicas,
            g->n_shards, (long long)g->item_begin, (long long)g->item_end);
  else if (g)
    sr_info("evaluation splits the items over the %d ranks; rank 0 scores items [%lld, %lld)", g->n_shards,
            (long long)g->item_begin, (long long)g->item_end);
  const int64_t N = t->cfg->train.batch_size, replicas = t->replicas->size;
  const sr_dataset *d = t->data;
  int64_t eval_rows = d->valid.n_users > d->test.n_users ? d->valid.n_users : d->test.n_users;
  if (eval_rows > t->cfg->train.eval_batch_size) eval_rows = t->cfg->train.eval_batch_size;
  sr_memory_use use;
  sr_memory_use_of(t->model, (N + replicas - 1) / replicas, eval_rows, &use);
  return sr_memory_check(t->dist, &use, budget);
}

/* Rank 0 appends to run_dir/metrics.jsonl (no file without a run directory):
 * the records a resumed checkpoint leaves behind marked superseded, then this
 * invocation's header. */
static int open_metrics(trainer *t, const char *run_dir) {
  if (!run_dir || t->dist->rank != 0) return SR_OK;
  char path[SR_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
  if (t->resumed_from[0]) SR_TRY(sr_run_log_supersede(path, t->state.metrics_offset, t->optim.step));
  SR_TRY(sr_run_log_open(&t->log, path));
  write_header(t);
  return sr_run_log_status(&t->log);
}

/* The selected model's validation, test and popularity-baseline metrics;
 * the test ones recorded, and the validation ones too when record_valid
 * (validations of an iterative run were recorded as they ran). */
static int evaluate_selected(trainer *t, sr_train_result *res, int record_valid) {
  SR_TRY(evaluate_split(t, &t->data->valid, &res->best_valid));
  if (record_valid) {
    char line[512];
    sr_metrics_format(&res->best_valid, line, sizeof line);
    sr_info("valid %s", line);
    record_validation(t, res->best_epoch, &res->best_valid, 1, 0.0);
  }
  SR_TRY(evaluate_split(t, &t->data->test, &res->test));
  SR_TRY(test_popularity(t, res));
  record_test(t, "test", &res->test);
  record_test(t, "test_popularity", &res->test_popularity);
  return SR_OK;
}

/* Refuses a closed-form fit that the node cannot hold, before it starts:
 * the model's parameters and what the fit and the evaluation hold besides
 * (memory_plan.h), per rank. */
static int check_fit_memory(trainer *t, const sr_memory_budget *budget) {
  const sr_dataset *d = t->data;
  int64_t eval_rows = d->valid.n_users > d->test.n_users ? d->valid.n_users : d->test.n_users;
  if (eval_rows > t->cfg->train.eval_batch_size) eval_rows = t->cfg->train.eval_batch_size;
  sr_memory_use use;
  sr_memory_use_of(t->model, 0, eval_rows, &use);
  int64_t need[2] = {use.parameters + use.activations, budget->per_rank < 0 ? INT64_MIN : -budget->per_rank};
  SR_TRY(sr_dist_max_i64(t->dist, need, 2));
  const double GiB = 1024.0 * 1024 * 1024;
  sr_info("model %s: %lld x %lld item matrix; the fit needs %.2f GiB per rank", t->model->ops->name,
          (long long)t->model->n_items, (long long)t->model->n_items, (double)need[0] / GiB);
  if (need[1] == INT64_MIN || need[0] <= -need[1]) return SR_OK;
  return SR_FAIL(SR_ENOMEM,
                 "not enough memory: model.type %s over %lld items needs %.2f GiB per rank (the %lld x %lld matrix B "
                 "in float32, %.2f GiB, and the lower half of X^T X + lambda I in float64, %.2f GiB, on every rank) "
                 "but a rank has %.2f GiB (%s: %.2f GiB shared by %d rank(s) of the node). More ranks do not help: "
                 "run fewer ranks per node, on a node with more memory, or import fewer items",
                 t->model->ops->name, (long long)t->model->n_items, (double)need[0] / GiB,
                 (long long)t->model->n_items, (long long)t->model->n_items, (double)use.parameters / GiB,
                 (double)sr_ease_gram_bytes(t->model->n_items) / GiB, (double)-need[1] / GiB, budget->source,
                 (double)budget->node_bytes / GiB, budget->node_ranks);
}

/* Closes metrics.jsonl: every record is written, or the run fails like a
 * failed checkpoint write (the ranks agree). Returns rc or that failure. */
static int close_records(trainer *t, int rc) {
  int log_rc = sr_run_log_close(&t->log);
  if (rc == SR_OK || rc == SR_ESTOPPED) {
    int agreed = sr_dist_agree(t->dist, log_rc);
    if (agreed != SR_OK) rc = agreed;
  }
  return rc;
}

/* The end of every training, closed-form or iterative: frees what the
 * trainer kept and hands the model out on success (else destroys it). */
static int release(trainer *t, int rc, sr_train_result *res, sr_model **model_out) {
  free(t->state.best_values);
  free(t->state.history);
  free(t->item_slice); /* the results keep their slice figures, not the map */
  res->best_valid.item_slice = res->test.item_slice = res->test_popularity.item_slice = NULL;
  if (rc == SR_OK && model_out)
    *model_out = t->model;
  else
    sr_model_destroy(t->model);
  return rc;
}

/* A closed-form model (model.h fit, e.g. EASE): fitted on every rank's
 * training rows at once, then validated and tested like the model an
 * iterative run selects (epoch 1 of 1, no optimizer steps). */
static int fit_closed_form(trainer *t, const sr_memory_budget *budget, const char *run_dir, sr_train_result *res) {
  if (t->cfg->checkpoint.resume[0])
    return SR_FAIL(SR_ECONFIG,
                   "checkpoint.resume: model.type %s is fitted in closed form; there is nothing to resume",
                   t->model->ops->name);
  SR_TRY(check_fit_memory(t, budget));
  SR_TRY(sr_dist_agree(t->dist, open_metrics(t, run_dir)));
  const double t0 = sr_now();
  SR_TRY(t->model->ops->fit(t->model, t->data, t->dist));
  res->train_seconds = sr_now() - t0;
  sr_info("model %s fitted on %lld training users in %.1fs", t->model->ops->name,
          (long long)t->data->train_rows_total, res->train_seconds);
  res->epochs_completed = res->best_epoch = 1;
  t->state.best_epoch = 1;
  res->sample_unit = t->model->ops->samples;
  res->stop_reason = "fitted";
  SR_TRY(evaluate_selected(t, res, 1));
  write_stop_record(t, 1, res->stop_reason);
  return SR_OK;
}

int sr_train(const sr_config *cfg, const sr_dist *dist, const sr_dataset *data, const char *run_dir,
             sr_model **model_out, sr_train_result *res) {
  memset(res, 0, sizeof *res);
  if (data->train_rows_total == 0) return SR_FAIL(SR_EINVAL, "the dataset has no training users");
  if (data->valid.n_users_total == 0)
    sr_info("the dataset has no validation split: training runs train.epochs epochs and keeps the last");
  const char *names[SR_MAX_METRICS];
  for (int i = 0; i < cfg->eval.n_metrics; i++) names[i] = cfg->eval.metrics[i];
  SR_TRY(sr_metrics_init(&res->best_valid, names, cfg->eval.n_metrics));
  res->test = res->test_popularity = res->best_valid;
  if (sr_metrics_find(&res->best_valid, cfg->train.select_metric) < 0)
    return SR_FAIL(SR_ECONFIG, "train.select_metric '%s' is not one of eval.metrics", cfg->train.select_metric);

  trainer t = {.cfg = cfg, .dist = dist, .data = data, .log = {.fd = -1}};
  if (cfg->checkpoint.dir[0])
    snprintf(t.ckpt_dir, sizeof t.ckpt_dir, "%s", cfg->checkpoint.dir);
  else if (run_dir)
    snprintf(t.ckpt_dir, sizeof t.ckpt_dir, "%s/checkpoints", run_dir);
  sr_memory_budget budget;
  SR_TRY(sr_memory_budget_measure(dist, &budget)); /* before the model allocates */
  int on_device = 0;
  SR_TRY(create_model(&t, &on_device));
  t.replicas = t.model->items ? &t.model->items->replicas : dist;
  if (t.model->ops->fit) {
    int rc = cfg->eval.n_slices > 0 ? init_slices(&t, res) : SR_OK;
    if (rc == SR_OK) rc = fit_closed_form(&t, &budget, run_dir, res);
    return release(&t, close_records(&t, rc), res, model_out);
  }
  optim_from_config(cfg, &t.optim);
  /* Zeroed: a checkpoint fills the tensors only, not the padding between them. */
  t.state.best_values = sr_calloc((size_t)t.model->params.total, sizeof(float));
  /* Collective, before prepare_start, which may fail on some ranks only. */
  int rc = hash_data(&t, &t.data_hash);
  if (rc == SR_OK) rc = draw_run_id(dist, t.new_run_id);
  if (rc == SR_OK) rc = sr_dist_agree(dist, prepare_start(&t));
  if (rc == SR_OK && cfg->eval.n_slices > 0) rc = init_slices(&t, res);
  if (rc == SR_OK) rc = check_replicas(dist, &t.model->params);
  if (rc == SR_OK && dist->rank == 0 && t.ckpt_dir[0]) rc = sr_ckptdir_prepare(t.ckpt_dir);
  rc = sr_dist_agree(dist, rc);
  if (rc == SR_OK) rc = count_samples(&t);
  sr_grad_reducer_init(&t.reducer, t.replicas, &t.model->params, (int64_t)(cfg->dist.bucket_mb * 1024 * 1024),
                       cfg->dist.overlap, cfg->dist.shard_optimizer);
  /* The device takes the parameters as prepare_start left them on the host. */
  if (rc == SR_OK && on_device) rc = sr_device_trainer_create(&t.device, cfg, t.replicas, t.model, &t.reducer);
  if (rc == SR_OK && on_device) rc = sr_device_trainer_upload(t.device);
  const size_t B = (size_t)cfg->train.batch_size;
  t.local_rows = sr_malloc(B * sizeof *t.local_rows);
  t.local_users = sr_malloc(B * sizeof *t.local_users);
  t.local_ids = sr_malloc(B * sizeof *t.local_ids);
  t.local_positions = sr_malloc(B * sizeof *t.local_positions);
  t.local_targets = sr_malloc(B * sizeof *t.local_targets);
  t.steps_per_epoch = (t.n_samples + cfg->train.batch_size - 1) / cfg->train.batch_size;
  t.total_steps = t.steps_per_epoch * cfg->train.epochs;
  t.planned_steps = t.total_steps;
  if (cfg->train.max_steps > 0 && cfg->train.max_steps < t.total_steps) t.total_steps = cfg->train.max_steps;
  t.last_progress = t.last_checkpoint_at = sr_now();
  t.progress_bar = sr_log_is_terminal();
  if (rc == SR_OK) rc = open_metrics(&t, run_dir);
  rc = sr_dist_agree(dist, rc);
  if (rc == SR_OK) {
    sr_info("model %s: %lld parameters; %lld training %s, %lld items; %lld steps per epoch on %d rank(s)",
            t.model->ops->name, (long long)t.model->params.total, (long long)t.n_samples,
            sr_sample_unit_name(t.model->ops->samples), (long long)data->n_items, (long long)t.steps_per_epoch,
            dist->size);
    if (t.device) sr_info("training on CUDA, %s collectives", sr_device_trainer_backend(t.device));
    /* Measured in docs/two_tower.md: the cold slice's recall fell to 0. */
    if (cfg->loss.uniform_negatives > 0 && data->n_cold_items > 0)
      sr_warn(
          "loss.uniform_negatives: the uniform draws cover the whole catalogue, its %lld cold-start items "
          "included, which training then only ever sees as negatives: expect them ranked last "
          "(docs/two_tower.md); set loss.uniform_negatives: 0 to recommend them",
          (long long)data->n_cold_items);
    rc = check_memory(&t, &budget);
  }
  struct sigaction old_handlers[3];
  catch_stop_signals(old_handlers);
  /* From here to the end every rank passes the same steps: watched. */
  if (rc == SR_OK) rc = sr_dist_agree(dist, sr_watchdog_start(dist, cfg->dist.stall_timeout_s));
  if (rc == SR_OK) rc = run_epochs(&t, res);
  sr_log_status_clear();
  restore_signals(old_handlers);
  if (rc == SR_OK && t.state.best_epoch == 0) rc = SR_FAIL(SR_EINVAL, "no validation ran (train.epochs reached?)");
  if (rc == SR_OK) {
    /* The selected model: the best validation snapshot, evaluated again here
     * so that a resumed run reports it as well. */
    memcpy(t.model->params.values, t.state.best_values, (size_t)t.model->params.total * sizeof(float));
    if (t.device) rc = sr_device_trainer_upload(t.device);
    res->best_epoch = (int)t.state.best_epoch;
    res->best_step = t.state.best_step;
    res->steps = t.optim.step;
    res->train_seconds = t.state.train_seconds;
    res->sample_unit = t.model->ops->samples;
    res->samples_per_s = t.state.train_seconds > 0 ? (double)t.state.samples_seen / t.state.train_seconds : 0.0;
    res->allreduce_seconds = t.reducer.total_seconds;
    res->allreduce_wait_seconds = t.reducer.wait_seconds;
    res->reduced_elements = t.reducer.reduced_elements;
    res->dense_elements = t.reducer.dense_elements;
    res->grad_norm = t.grad_norm;
    if (rc == SR_OK) rc = evaluate_selected(&t, res, 0);
  }
  rc = close_records(&t, rc);
  sr_watchdog_stop();
  sr_device_trainer_free(t.device);
  sr_grad_reducer_free(&t.reducer);
  free(t.local_rows);
  free(t.local_users);
  free(t.local_ids);
  free(t.local_positions);
  free(t.local_targets);
  return release(&t, rc, res, model_out);
}

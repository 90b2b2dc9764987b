/* train.c — the training loop (train.h). */
#include "shardrec/train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/evaluate.h"
#include "shardrec/grad_reduce.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"
#include "shardrec/nn.h"
#include "shardrec/optim.h"
#include "shardrec/rng.h"

typedef struct {
  const sr_config *cfg;
  const sr_dist *dist;
  const sr_dataset *data;
  sr_model *model;
  sr_optim optim;
  sr_grad_reducer reducer;
  int64_t *local_rows, *local_ids; /* this rank's rows of the current global batch */
  FILE *jsonl;
  int64_t steps_per_epoch, total_steps;
  double start_time, train_seconds, last_progress;
  int64_t users_seen;
  float *best_values; /* parameter snapshot of the best validation epoch */
  double best_value;
  int time_up; /* some rank's training clock passed train.time_limit_s */
} trainer;

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

static void jsonl_metrics(trainer *t, const char *type, int epoch, const sr_metrics *m) {
  if (!t->jsonl) return;
  fprintf(t->jsonl, "{\"type\":\"%s\",\"epoch\":%d,\"step\":%lld,\"users\":%lld", type, epoch,
          (long long)t->optim.step, (long long)m->n_users);
  for (int i = 0; i < m->n; i++) {
    char name[SR_METRIC_NAME_MAX];
    sr_metric_name(&m->spec[i], name, sizeof name);
    fprintf(t->jsonl, ",\"%s\":%.6f", name, sr_metrics_mean(m, i));
  }
  fprintf(t->jsonl, "}\n");
  fflush(t->jsonl);
}

static void progress(trainer *t, int epoch, const sr_step_stats *st) {
  double now = sr_now();
  if (now - t->last_progress < t->cfg->run.log_every_s) return;
  t->last_progress = now;
  double rate = t->train_seconds > 0 ? (double)t->users_seen / t->train_seconds : 0.0;
  double remaining_steps = (double)(t->total_steps - t->optim.step);
  double eta = t->optim.step > 0 ? remaining_steps * t->train_seconds / (double)t->optim.step : 0.0;
  if (t->cfg->train.time_limit_s > 0) {
    double left = t->cfg->train.time_limit_s - t->train_seconds;
    if (left < eta) eta = left;
  }
  char eta_s[32];
  format_duration(eta, eta_s, sizeof eta_s);
  sr_info("epoch %d/%d  step %lld  loss %.4f  beta %.4f  %.0f users/s  eta %s", epoch, t->cfg->train.epochs,
          (long long)t->optim.step, st->loss, st->beta, rate, eta_s);
  if (t->jsonl) {
    fprintf(t->jsonl, "{\"type\":\"train\",\"epoch\":%d,\"step\":%lld,\"loss\":%.6f,\"beta\":%.6f", epoch,
            (long long)t->optim.step, st->loss, st->beta);
    for (int i = 0; i < st->n_terms; i++) fprintf(t->jsonl, ",\"%s\":%.6f", st->term_names[i], st->terms[i]);
    fprintf(t->jsonl, ",\"users_per_s\":%.1f}\n", rate);
    fflush(t->jsonl);
  }
}

/* Sums this rank's loss shares into the global-batch values. The same
 * reduction carries "my clock passed train.time_limit_s", so that every rank
 * takes the decision to stop at the same step. */
static int reduce_stats(trainer *t, sr_step_stats *st) {
  double sums[2 + SR_MAX_LOSS_TERMS] = {0};
  double limit = t->cfg->train.time_limit_s;
  sums[0] = st->loss;
  sums[1] = limit > 0 && t->train_seconds >= limit;
  for (int i = 0; i < st->n_terms; i++) sums[2 + i] = st->terms[i];
  SR_TRY(sr_dist_sum_f64(t->dist, sums, 2 + SR_MAX_LOSS_TERMS));
  st->loss = sums[0];
  t->time_up = sums[1] > 0;
  for (int i = 0; i < st->n_terms; i++) st->terms[i] = sums[2 + i];
  return SR_OK;
}

/* One optimizer update on the global batch whose rows (global training row
 * ids) are order[0..n). This rank computes the rows it holds; the summed
 * gradients are those of the whole batch. */
static int train_step(trainer *t, const int64_t *order, int64_t n, sr_step_stats *st) {
  const sr_dataset *d = t->data;
  int64_t n_local = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t local = order[i] - d->train_row_begin;
    if (local < 0 || local >= d->train.n_rows) continue;
    t->local_rows[n_local] = local;
    t->local_ids[n_local++] = order[i];
  }
  sr_csr rows;
  sr_csr_gather_rows(&d->train, t->local_rows, n_local, &rows);
  sr_batch batch = {&rows, t->local_ids, n, (uint64_t)t->optim.step, sr_grad_reducer_ready_cb, &t->reducer};
  sr_params *ps = &t->model->params; /* gradients are zero: the optimizer consumed the last ones */
  sr_grad_reducer_begin(&t->reducer);
  int rc = t->model->ops->forward_backward(t->model, &batch, st);
  sr_csr_free(&rows);
  SR_TRY(rc);
  SR_TRY(sr_grad_reducer_finish(&t->reducer));
  SR_TRY(reduce_stats(t, st));
  /* Identical on every rank from here on: the decision to stop is collective. */
  st->loss += t->model->ops->add_param_penalty(t->model);
  if (!isfinite(st->loss))
    return SR_FAIL(SR_ENUMERIC, "non-finite loss at step %lld (%g); lower train.lr or check the input data",
                   (long long)t->optim.step, st->loss);
  int64_t bad = sr_optim_step(&t->optim, ps);
  if (bad > 0)
    return SR_FAIL(SR_ENUMERIC,
                   "%lld non-finite gradient values at step %lld; lower train.lr or check the input data",
                   (long long)bad, (long long)t->optim.step - 1);
  return SR_OK;
}

/* Metrics of the model on a (sharded) split: each rank scores its rows, the
 * sums and counts are added over ranks. */
static int evaluate_split(trainer *t, const sr_eval_split *split, sr_metrics *m) {
  sr_metrics_reset(m);
  sr_evaluate_rows(t->model, split, 0, split->n_users, t->cfg->train.eval_batch_size, m);
  return sr_metrics_reduce(t->dist, m);
}

/* Validates; keeps a snapshot of the parameters when the selection metric improves. */
static int validate(trainer *t, int epoch, int select_index, sr_train_result *res) {
  sr_metrics m = res->best_valid;
  SR_TRY(evaluate_split(t, &t->data->valid, &m));
  double value = sr_metrics_mean(&m, select_index);
  int improved = res->best_epoch == 0 || value > t->best_value;
  char line[512];
  sr_metrics_format(&m, line, sizeof line);
  sr_info("epoch %d  valid %s%s", epoch, line, improved ? "  (best)" : "");
  jsonl_metrics(t, "valid", epoch, &m);
  if (!improved) return SR_OK;
  t->best_value = value;
  res->best_epoch = epoch;
  res->best_valid = m;
  memcpy(t->best_values, t->model->params.values, (size_t)t->model->params.total * sizeof(float));
  return SR_OK;
}

/* The most-popular-items baseline on the test split, for comparison. */
static int test_popularity(trainer *t, sr_train_result *res) {
  float *popularity = sr_malloc((size_t)t->data->n_items * sizeof(float));
  int rc = sr_global_popularity(t->dist, &t->data->train, popularity);
  sr_metrics_reset(&res->test_popularity);
  if (rc == SR_OK)
    sr_evaluate_popularity(popularity, t->data->n_items, &t->data->test, t->cfg->train.eval_batch_size,
                           &res->test_popularity);
  free(popularity);
  SR_TRY(rc);
  return sr_metrics_reduce(t->dist, &res->test_popularity);
}

static int run_epochs(trainer *t, sr_train_result *res) {
  const sr_config *cfg = t->cfg;
  const int64_t n_train = t->data->train_rows_total, B = cfg->train.batch_size;
  int select_index = sr_metrics_find(&res->best_valid, cfg->train.select_metric);
  int64_t *order = sr_malloc((size_t)n_train * sizeof *order);
  sr_step_stats st = {0};
  int rc = SR_OK, stop = 0;
  for (int epoch = 1; epoch <= cfg->train.epochs && !stop; epoch++) {
    sr_rng shuffle;
    sr_rng_init(&shuffle, (uint64_t)cfg->run.seed, SR_RNG_SHUFFLE, (uint64_t)epoch, 0);
    sr_rng_permutation(&shuffle, order, n_train);
    double epoch_start = sr_now();
    for (int64_t b = 0; b < n_train && !stop; b += B) {
      int64_t n = b + B < n_train ? B : n_train - b;
      double t0 = sr_now();
      rc = train_step(t, order + b, n, &st);
      if (rc) {
        sr_error_prefix("epoch %d", epoch);
        goto done;
      }
      t->train_seconds += sr_now() - t0;
      t->users_seen += n;
      progress(t, epoch, &st);
      stop = (cfg->train.max_steps > 0 && t->optim.step >= cfg->train.max_steps) || t->time_up;
    }
    res->epochs_completed = epoch;
    sr_info("epoch %d  %lld steps in %.1fs  loss %.4f%s", epoch, (long long)t->optim.step, sr_now() - epoch_start,
            st.loss, stop ? "  (stopping: step or time limit reached)" : "");
    if (epoch % cfg->train.eval_every == 0 || stop || epoch == cfg->train.epochs) {
      rc = validate(t, epoch, select_index, res);
      if (rc) goto done;
    }
  }
done:
  res->last_loss = st.loss;
  free(order);
  return rc;
}

int sr_train(const sr_config *cfg, const sr_dist *dist, const sr_dataset *data, const char *run_dir,
             sr_model **model_out, sr_train_result *res) {
  memset(res, 0, sizeof *res);
  if (data->train_rows_total == 0) return SR_FAIL(SR_EINVAL, "the dataset has no training users");
  if (data->valid.n_users_total == 0) return SR_FAIL(SR_EINVAL, "the dataset has no validation users");
  const char *names[SR_MAX_METRICS];
  for (int i = 0; i < cfg->eval.n_metrics; i++) names[i] = cfg->eval.metrics[i];
  SR_TRY(sr_metrics_init(&res->best_valid, names, cfg->eval.n_metrics));
  res->test = res->test_popularity = res->best_valid;
  if (sr_metrics_find(&res->best_valid, cfg->train.select_metric) < 0)
    return SR_FAIL(SR_ECONFIG, "train.select_metric '%s' is not one of eval.metrics", cfg->train.select_metric);

  trainer t = {.cfg = cfg, .dist = dist, .data = data};
  SR_TRY(sr_model_create(cfg, data->n_items, &t.model));
  /* Replicas start identical because initialisation is keyed by (seed,
   * parameter), not by rank; verified rather than assumed. */
  int rc = sr_dist_check_identical(dist, t.model->params.values, (size_t)t.model->params.total * sizeof(float),
                                   "the initial parameters");
  if (rc) {
    sr_model_destroy(t.model);
    return rc;
  }
  optim_from_config(cfg, &t.optim);
  sr_grad_reducer_init(&t.reducer, dist, &t.model->params, (int64_t)(cfg->dist.bucket_mb * 1024 * 1024),
                       cfg->dist.overlap);
  t.local_rows = sr_malloc((size_t)cfg->train.batch_size * sizeof *t.local_rows);
  t.local_ids = sr_malloc((size_t)cfg->train.batch_size * sizeof *t.local_ids);
  t.steps_per_epoch = (data->train_rows_total + cfg->train.batch_size - 1) / cfg->train.batch_size;
  t.total_steps = t.steps_per_epoch * cfg->train.epochs;
  if (cfg->train.max_steps > 0 && cfg->train.max_steps < t.total_steps) t.total_steps = cfg->train.max_steps;
  t.best_values = sr_malloc((size_t)t.model->params.total * sizeof(float));
  t.last_progress = t.start_time = sr_now();
  if (run_dir && dist->rank == 0) {
    char path[SR_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    t.jsonl = fopen(path, "a");
    if (!t.jsonl) rc = SR_FAIL(SR_EIO, "cannot open %s: %s", path, strerror(errno));
  }
  rc = sr_dist_agree(dist, rc);
  if (rc == SR_OK) {
    sr_info("model %s: %lld parameters; %lld training users, %lld items; %lld steps per epoch on %d rank(s)",
            t.model->ops->name, (long long)t.model->params.total, (long long)data->train_rows_total,
            (long long)data->n_items, (long long)t.steps_per_epoch, dist->size);
    rc = run_epochs(&t, res);
  }
  if (rc == SR_OK) {
    memcpy(t.model->params.values, t.best_values, (size_t)t.model->params.total * sizeof(float));
    res->steps = t.optim.step;
    res->train_seconds = t.train_seconds;
    res->users_per_s = t.train_seconds > 0 ? (double)t.users_seen / t.train_seconds : 0.0;
    res->allreduce_seconds = t.reducer.total_seconds;
    res->allreduce_wait_seconds = t.reducer.wait_seconds;
    rc = evaluate_split(&t, &data->test, &res->test);
    if (rc == SR_OK) rc = test_popularity(&t, res);
    jsonl_metrics(&t, "test", res->best_epoch, &res->test);
    jsonl_metrics(&t, "test_popularity", res->best_epoch, &res->test_popularity);
  }
  if (t.jsonl) fclose(t.jsonl);
  sr_grad_reducer_free(&t.reducer);
  free(t.local_rows);
  free(t.local_ids);
  free(t.best_values);
  if (rc == SR_OK && model_out)
    *model_out = t.model;
  else
    sr_model_destroy(t.model);
  return rc;
}

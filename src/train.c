/* train.c — the training loop (train.h). */
#include "shardrec/train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/evaluate.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"
#include "shardrec/nn.h"
#include "shardrec/optim.h"
#include "shardrec/rng.h"

typedef struct {
  const sr_config *cfg;
  const sr_dataset *data;
  sr_model *model;
  sr_optim optim;
  FILE *jsonl;
  int64_t steps_per_epoch, total_steps;
  double start_time, train_seconds, last_progress;
  int64_t users_seen;
  float *best_values; /* parameter snapshot of the best validation epoch */
  double best_value;
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

/* One optimizer update on the global batch rows order[0..n). */
static int train_step(trainer *t, const int64_t *order, int64_t n, sr_step_stats *st) {
  sr_csr rows;
  sr_csr_gather_rows(&t->data->train, order, n, &rows);
  sr_batch batch = {&rows, order, n, (uint64_t)t->optim.step};
  sr_params *ps = &t->model->params;
  sr_params_zero_grad(ps);
  int rc = t->model->ops->forward_backward(t->model, &batch, st);
  sr_csr_free(&rows);
  SR_TRY(rc);
  st->loss += t->model->ops->add_param_penalty(t->model);
  if (!isfinite(st->loss) || !sr_all_finite(ps->grads, ps->total))
    return SR_FAIL(SR_ENUMERIC,
                   "non-finite %s at step %lld (loss %g); lower train.lr or check the input data",
                   isfinite(st->loss) ? "gradient" : "loss", (long long)t->optim.step, st->loss);
  sr_optim_step(&t->optim, ps);
  return SR_OK;
}

/* Validates; keeps a snapshot of the parameters when the selection metric improves. */
static void validate(trainer *t, int epoch, int select_index, sr_train_result *res) {
  sr_metrics m = res->best_valid;
  sr_metrics_reset(&m);
  const sr_eval_split *valid = &t->data->valid;
  sr_evaluate_rows(t->model, valid, 0, valid->n_users, t->cfg->train.eval_batch_size, &m);
  double value = sr_metrics_mean(&m, select_index);
  int improved = res->best_epoch == 0 || value > t->best_value;
  char line[512];
  sr_metrics_format(&m, line, sizeof line);
  sr_info("epoch %d  valid %s%s", epoch, line, improved ? "  (best)" : "");
  jsonl_metrics(t, "valid", epoch, &m);
  if (!improved) return;
  t->best_value = value;
  res->best_epoch = epoch;
  res->best_valid = m;
  memcpy(t->best_values, t->model->params.values, (size_t)t->model->params.total * sizeof(float));
}

static int run_epochs(trainer *t, sr_train_result *res) {
  const sr_config *cfg = t->cfg;
  const int64_t n_train = t->data->train.n_rows, B = cfg->train.batch_size;
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
      stop = (cfg->train.max_steps > 0 && t->optim.step >= cfg->train.max_steps) ||
             (cfg->train.time_limit_s > 0 && t->train_seconds >= cfg->train.time_limit_s);
    }
    res->epochs_completed = epoch;
    sr_info("epoch %d  %lld steps in %.1fs  loss %.4f%s", epoch, (long long)t->optim.step, sr_now() - epoch_start,
            st.loss, stop ? "  (stopping: step or time limit reached)" : "");
    if (epoch % cfg->train.eval_every == 0 || stop || epoch == cfg->train.epochs)
      validate(t, epoch, select_index, res);
  }
done:
  res->last_loss = st.loss;
  free(order);
  return rc;
}

int sr_train(const sr_config *cfg, const sr_dataset *data, const char *run_dir, sr_model **model_out,
             sr_train_result *res) {
  memset(res, 0, sizeof *res);
  if (data->train.n_rows == 0) return SR_FAIL(SR_EINVAL, "the dataset has no training users");
  if (data->valid.n_users == 0) return SR_FAIL(SR_EINVAL, "the dataset has no validation users");
  const char *names[SR_MAX_METRICS];
  for (int i = 0; i < cfg->eval.n_metrics; i++) names[i] = cfg->eval.metrics[i];
  SR_TRY(sr_metrics_init(&res->best_valid, names, cfg->eval.n_metrics));
  res->test = res->test_popularity = res->best_valid;
  if (sr_metrics_find(&res->best_valid, cfg->train.select_metric) < 0)
    return SR_FAIL(SR_ECONFIG, "train.select_metric '%s' is not one of eval.metrics", cfg->train.select_metric);

  trainer t = {.cfg = cfg, .data = data};
  SR_TRY(sr_model_create(cfg, data->n_items, &t.model));
  optim_from_config(cfg, &t.optim);
  t.steps_per_epoch = (data->train.n_rows + cfg->train.batch_size - 1) / cfg->train.batch_size;
  t.total_steps = t.steps_per_epoch * cfg->train.epochs;
  if (cfg->train.max_steps > 0 && cfg->train.max_steps < t.total_steps) t.total_steps = cfg->train.max_steps;
  t.best_values = sr_malloc((size_t)t.model->params.total * sizeof(float));
  t.last_progress = t.start_time = sr_now();
  if (run_dir) {
    char path[SR_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    t.jsonl = fopen(path, "a");
    if (!t.jsonl) {
      int rc = SR_FAIL(SR_EIO, "cannot open %s: %s", path, strerror(errno));
      sr_model_destroy(t.model);
      free(t.best_values);
      return rc;
    }
  }
  sr_info("model %s: %lld parameters; %lld training users, %lld items; %lld steps per epoch", t.model->ops->name,
          (long long)t.model->params.total, (long long)data->train.n_rows, (long long)data->n_items,
          (long long)t.steps_per_epoch);

  int rc = run_epochs(&t, res);
  if (rc == SR_OK) {
    memcpy(t.model->params.values, t.best_values, (size_t)t.model->params.total * sizeof(float));
    res->steps = t.optim.step;
    res->train_seconds = t.train_seconds;
    res->users_per_s = t.train_seconds > 0 ? (double)t.users_seen / t.train_seconds : 0.0;
    sr_evaluate_rows(t.model, &data->test, 0, data->test.n_users, cfg->train.eval_batch_size, &res->test);
    sr_evaluate_popularity(&data->train, &data->test, cfg->train.eval_batch_size, &res->test_popularity);
    jsonl_metrics(&t, "test", res->best_epoch, &res->test);
    jsonl_metrics(&t, "test_popularity", res->best_epoch, &res->test_popularity);
  }
  if (t.jsonl) fclose(t.jsonl);
  free(t.best_values);
  if (rc == SR_OK && model_out)
    *model_out = t.model;
  else
    sr_model_destroy(t.model);
  return rc;
}

/* merge.c — model soups over parameter registries (merge.h, docs/merging.md). */
#include "shardrec/merge.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/mem.h"

#define DEFAULT_GAMMA 1.0
#define DEFAULT_DENSITY 0.2

static const char *const method_names[] = {"uniform", "greedy", "task-arithmetic", "ties", "delta", "delta-tensor"};
#define N_METHODS ((int)(sizeof method_names / sizeof method_names[0]))

/* ---- options ------------------------------------------------------------------ */

void sr_merge_opts_default(sr_merge_opts *o, sr_merge_method method) {
  memset(o, 0, sizeof *o);
  o->method = method;
  o->gamma = DEFAULT_GAMMA;
  o->density = DEFAULT_DENSITY;
}

int sr_merge_opts_validate(const sr_merge_opts *o) {
  if ((int)o->method < 0 || (int)o->method >= N_METHODS)
    return SR_FAIL(SR_EINVAL, "unknown merge method %d", o->method);
  if (!(o->gamma >= 0.0 && isfinite(o->gamma)))
    return SR_FAIL(SR_EINVAL, "gamma must be a number >= 0, got %g", o->gamma);
  if (!(o->density > 0.0 && o->density <= 1.0))
    return SR_FAIL(SR_EINVAL, "density must be in (0, 1], got %g", o->density);
  if (o->lambda_set && !isfinite(o->lambda)) return SR_FAIL(SR_EINVAL, "lambda must be finite, got %g", o->lambda);
  return SR_OK;
}

double sr_merge_lambda(const sr_merge_opts *o, int k) {
  if (o->lambda_set) return o->lambda;
  return o->method == SR_MERGE_TASK_ARITHMETIC ? 1.0 / k : 1.0;
}

const char *sr_merge_method_name(sr_merge_method m) {
  SR_ASSERT((int)m >= 0 && (int)m < N_METHODS);
  return method_names[m];
}

int sr_merge_method_parse(const char *name, sr_merge_method *out) {
  for (int i = 0; i < N_METHODS; i++)
    if (strcmp(name, method_names[i]) == 0) {
      *out = (sr_merge_method)i;
      return SR_OK;
    }
  return SR_FAIL(SR_EINVAL,
                 "unknown merge method '%s' (expected uniform, greedy, task-arithmetic, ties, delta or delta-tensor)",
                 name);
}

int sr_merge_needs_base(sr_merge_method m) {
  return m == SR_MERGE_TASK_ARITHMETIC || m == SR_MERGE_TIES || m == SR_MERGE_DELTA || m == SR_MERGE_DELTA_TENSOR;
}

/* ---- layout checks ------------------------------------------------------------ */

static const sr_param *param_at(const sr_params *ps, int i) { return i < ps->count ? &ps->items[i] : NULL; }

static int has_tensor(const sr_params *ps, const char *name) {
  return sr_params_find((sr_params *)ps, name) != NULL; /* lookup only */
}

static int same_shape(const sr_param *a, const sr_param *b) {
  if (a->ndim != b->ndim) return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return 0;
  return 1;
}

/* Explains why position i differs: a tensor one side lacks, or another order. */
static int layout_mismatch(const sr_params *a, const sr_params *b, int i, const char *name_a, const char *name_b) {
  const sr_param *pa = param_at(a, i), *pb = param_at(b, i);
  char shape[64];
  if (pa && !has_tensor(b, pa->name)) {
    sr_param_format_shape(pa, shape, sizeof shape);
    return SR_FAIL(SR_EINVAL, "architectures differ: %s has %s (%s), %s has no such tensor", name_a, pa->name, shape,
                   name_b);
  }
  if (pb && !has_tensor(a, pb->name)) {
    sr_param_format_shape(pb, shape, sizeof shape);
    return SR_FAIL(SR_EINVAL, "architectures differ: %s has %s (%s), %s has no such tensor", name_b, pb->name, shape,
                   name_a);
  }
  return SR_FAIL(SR_EINVAL, "architectures differ: tensor %d is %s in %s but %s in %s", i, pa->name, name_a, pb->name,
                 name_b);
}

int sr_merge_compatible(const sr_params *a, const sr_params *b, const char *name_a, const char *name_b) {
  int n = a->count > b->count ? a->count : b->count;
  for (int i = 0; i < n; i++) {
    const sr_param *pa = param_at(a, i), *pb = param_at(b, i);
    if (!pa || !pb || strcmp(pa->name, pb->name) != 0) return layout_mismatch(a, b, i, name_a, name_b);
    if (same_shape(pa, pb)) continue;
    char sa[64], sb[64];
    sr_param_format_shape(pa, sa, sizeof sa);
    sr_param_format_shape(pb, sb, sizeof sb);
    return SR_FAIL(SR_EINVAL, "architectures differ: %s: %s is %s, %s: %s", name_a, pa->name, sa, name_b, sb);
  }
  return SR_OK;
}

/* Fails unless every value of ps is finite; `label` names it. */
static int check_finite(const sr_params *ps, const char *label) {
  for (int t = 0; t < ps->count; t++)
    for (int64_t j = 0; j < ps->items[t].numel; j++)
      if (!isfinite(ps->items[t].value[j]))
        return SR_FAIL(SR_ENUMERIC, "%s: %s has a non-finite value at element %lld", label, ps->items[t].name,
                       (long long)j);
  return SR_OK;
}

/* Every registry has the layout of ingr[0], and holds finite values only (a
 * NaN would poison the TIES ranking and every sum). */
static int check_inputs(const sr_params *base, const sr_params *const *ingr, int k, const sr_params *out) {
  if (k < 1) return SR_FAIL(SR_EINVAL, "nothing to merge: no ingredients");
  char label[32];
  for (int m = 0; m <= k; m++) {
    const sr_params *ps = m < k ? ingr[m] : base;
    if (!ps) continue;
    if (m < k)
      snprintf(label, sizeof label, "ingredient %d", m + 1);
    else
      snprintf(label, sizeof label, "base");
    SR_TRY(sr_merge_compatible(ingr[0], ps, "ingredient 1", label));
    SR_TRY(check_finite(ps, label));
  }
  return sr_merge_compatible(ingr[0], out, "ingredient 1", "output");
}

/* ---- uniform soup --------------------------------------------------------------- */

/* out = mean of ingr[members[0..n)], summed in that order. */
static void soup_of(const sr_params *const *ingr, const int *members, int n, sr_params *out) {
  for (int t = 0; t < out->count; t++) {
    float *dst = out->items[t].value;
    for (int64_t j = 0; j < out->items[t].numel; j++) {
      double sum = 0.0;
      for (int m = 0; m < n; m++) sum += ingr[members[m]]->items[t].value[j];
      dst[j] = (float)(sum / n);
    }
  }
}

/* ---- methods on task vectors -------------------------------------------------- */

/* Merged task-vector entry from delta[0..k) = δ_1i..δ_Ki of parameter i of
 * tensor t. The driver visits parameters in registry order (tensor by tensor,
 * row-major), which TIES' tie-breaking relies on. */
typedef double (*combine_fn)(void *state, const double *delta, int k, int t);

/* out_i = base_i + λ · combine(δ_1i..δ_Ki) for every scalar parameter i. */
static void merge_task_vectors(const sr_params *base, const sr_params *const *ingr, int k, double lambda,
                               combine_fn combine, void *state, sr_params *out) {
  double *delta = sr_malloc((size_t)k * sizeof *delta);
  for (int t = 0; t < out->count; t++) {
    const float *theta0 = base->items[t].value;
    for (int64_t j = 0; j < out->items[t].numel; j++) {
      for (int m = 0; m < k; m++) delta[m] = (double)ingr[m]->items[t].value[j] - theta0[j];
      out->items[t].value[j] = (float)(theta0[j] + lambda * combine(state, delta, k, t));
    }
  }
  free(delta);
}

static double combine_sum(void *state, const double *delta, int k, int t) {
  (void)state, (void)t;
  double sum = 0.0;
  for (int m = 0; m < k; m++) sum += delta[m];
  return sum;
}

/* Weighted sum Σ_m w_m δ_m with w_m = a_m / Σ a; uniform weights when Σ a = 0. */
static double weighted_delta(const double *a, const double *delta, int k) {
  double a_sum = 0.0, weighted = 0.0, plain = 0.0;
  for (int m = 0; m < k; m++) {
    a_sum += a[m];
    weighted += a[m] * delta[m];
    plain += delta[m];
  }
  return a_sum > 0.0 ? weighted / a_sum : plain / k;
}

typedef struct {
  double gamma;
  double *magnitude; /* [k] scratch: |δ_ki|^gamma */
} delta_state;

static double combine_delta(void *state, const double *delta, int k, int t) {
  (void)t;
  delta_state *s = state;
  for (int m = 0; m < k; m++) s->magnitude[m] = pow(fabs(delta[m]), s->gamma);
  return weighted_delta(s->magnitude, delta, k);
}

typedef struct {
  double *magnitude; /* [count * k]: ||δ_m||^gamma of tensor t at [t * k + m] */
} delta_tensor_state;

static double combine_delta_tensor(void *state, const double *delta, int k, int t) {
  const delta_tensor_state *s = state;
  return weighted_delta(s->magnitude + (size_t)t * k, delta, k);
}

/* ||θ_m − θ_0||_2 of every tensor, raised to gamma. */
static double *tensor_magnitudes(const sr_params *base, const sr_params *const *ingr, int k, double gamma) {
  double *mag = sr_malloc((size_t)base->count * k * sizeof *mag);
  for (int t = 0; t < base->count; t++)
    for (int m = 0; m < k; m++) {
      double sq = 0.0;
      for (int64_t j = 0; j < base->items[t].numel; j++) {
        double d = (double)ingr[m]->items[t].value[j] - base->items[t].value[j];
        sq += d * d;
      }
      mag[(size_t)t * k + m] = pow(sqrt(sq), gamma);
    }
  return mag;
}

/* ---- TIES --------------------------------------------------------------------- */

/* Trimming keeps exactly `keep` entries of each δ_m: those with |δ| above the
 * threshold, then the first `ties_left` entries equal to it in registry order. */
typedef struct {
  double *threshold;  /* [k] */
  int64_t *ties_left; /* [k] */
  double *trimmed;    /* [k] scratch */
} ties_state;

static int by_descending_value(const void *pa, const void *pb) {
  double a = *(const double *)pa, b = *(const double *)pb;
  return (a < b) - (a > b);
}

/* Sets the threshold and tie allowance that keep the `keep` largest |δ_m|. */
static void ties_threshold(const sr_params *base, const sr_params *ingr, int64_t n, int64_t keep, double *threshold,
                           int64_t *ties_left) {
  if (keep == 0) {
    *threshold = INFINITY;
    *ties_left = 0;
    return;
  }
  double *mag = sr_malloc((size_t)n * sizeof *mag);
  int64_t i = 0;
  for (int t = 0; t < base->count; t++)
    for (int64_t j = 0; j < base->items[t].numel; j++)
      mag[i++] = fabs((double)ingr->items[t].value[j] - base->items[t].value[j]);
  qsort(mag, (size_t)n, sizeof *mag, by_descending_value);
  *threshold = mag[keep - 1];
  int64_t first_equal = keep - 1;
  while (first_equal > 0 && mag[first_equal - 1] == *threshold) first_equal--;
  *ties_left = keep - first_equal;
  free(mag);
}

static double combine_ties(void *state, const double *delta, int k, int t) {
  (void)t;
  ties_state *s = state;
  double elected = 0.0;
  for (int m = 0; m < k; m++) {
    double a = fabs(delta[m]);
    int kept = a > s->threshold[m] || (a == s->threshold[m] && s->ties_left[m] > 0);
    if (kept && a == s->threshold[m]) s->ties_left[m]--;
    s->trimmed[m] = kept ? delta[m] : 0.0;
    elected += s->trimmed[m];
  }
  double agreeing = 0.0;
  int n_agreeing = 0;
  for (int m = 0; m < k; m++)
    if ((elected > 0.0 && s->trimmed[m] > 0.0) || (elected < 0.0 && s->trimmed[m] < 0.0)) {
      agreeing += s->trimmed[m];
      n_agreeing++;
    }
  return n_agreeing ? agreeing / n_agreeing : 0.0;
}

static void merge_ties(const sr_merge_opts *o, const sr_params *base, const sr_params *const *ingr, int k,
                       sr_params *out) {
  int64_t n = 0;
  for (int t = 0; t < base->count; t++) n += base->items[t].numel;
  int64_t keep = (int64_t)floor(o->density * (double)n + 0.5);
  if (keep > n) keep = n;
  ties_state s = {sr_malloc((size_t)k * sizeof(double)), sr_malloc((size_t)k * sizeof(int64_t)),
                  sr_malloc((size_t)k * sizeof(double))};
  for (int m = 0; m < k; m++) ties_threshold(base, ingr[m], n, keep, &s.threshold[m], &s.ties_left[m]);
  merge_task_vectors(base, ingr, k, sr_merge_lambda(o, k), combine_ties, &s, out);
  free(s.threshold);
  free(s.ties_left);
  free(s.trimmed);
}

/* ---- entry points ------------------------------------------------------------- */

int sr_merge_params(const sr_merge_opts *o, const sr_params *base, const sr_params *const *ingr, int k,
                    sr_params *out) {
  SR_TRY(sr_merge_opts_validate(o));
  if (o->method == SR_MERGE_GREEDY) return SR_FAIL(SR_EINVAL, "greedy soups are built by sr_merge_greedy");
  if (sr_merge_needs_base(o->method) && !base)
    return SR_FAIL(SR_EINVAL, "merge method %s needs a base checkpoint", sr_merge_method_name(o->method));
  if (o->method == SR_MERGE_UNIFORM) base = NULL;
  SR_TRY(check_inputs(base, ingr, k, out));
  double lambda = sr_merge_lambda(o, k);
  switch (o->method) {
    case SR_MERGE_UNIFORM: {
      int *all = sr_malloc((size_t)k * sizeof *all);
      for (int m = 0; m < k; m++) all[m] = m;
      soup_of(ingr, all, k, out);
      free(all);
      break;
    }
    case SR_MERGE_TASK_ARITHMETIC:
      merge_task_vectors(base, ingr, k, lambda, combine_sum, NULL, out);
      break;
    case SR_MERGE_TIES:
      merge_ties(o, base, ingr, k, out);
      break;
    case SR_MERGE_DELTA: {
      delta_state s = {o->gamma, sr_malloc((size_t)k * sizeof(double))};
      merge_task_vectors(base, ingr, k, lambda, combine_delta, &s, out);
      free(s.magnitude);
      break;
    }
    case SR_MERGE_DELTA_TENSOR: {
      delta_tensor_state s = {tensor_magnitudes(base, ingr, k, o->gamma)};
      merge_task_vectors(base, ingr, k, lambda, combine_delta_tensor, &s, out);
      free(s.magnitude);
      break;
    }
    case SR_MERGE_GREEDY:
      break; /* rejected above */
  }
  /* Finite inputs can still overflow (a huge lambda): never write such a model. */
  int rc = check_finite(out, "the merged model");
  if (rc != SR_OK && sr_merge_needs_base(o->method)) sr_error_prefix("--lambda %g is too large", lambda);
  return rc;
}

/* NaN scores rank last. */
static int ranks_before(double a, double b) { return a > b || (!isnan(a) && isnan(b)); }

/* Ingredient indices by descending score; equal scores keep the given order. */
static void visiting_order(const double *scores, int k, int *order) {
  for (int i = 0; i < k; i++) {
    int j = i;
    while (j > 0 && ranks_before(scores[i], scores[order[j - 1]])) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = i;
  }
}

int sr_merge_greedy(const sr_params *const *ingr, const double *scores, int k, sr_merge_score_fn score, void *ctx,
                    sr_params *out, int *kept, double *soup_score) {
  SR_TRY(check_inputs(NULL, ingr, k, out));
  int *order = sr_malloc((size_t)k * sizeof *order), *members = sr_malloc((size_t)k * sizeof *members);
  visiting_order(scores, k, order);
  /* The soup of the best ingredient alone is that ingredient: its score is known. */
  members[0] = order[0];
  int n = 1;
  double best = scores[order[0]];
  soup_of(ingr, members, n, out);
  int out_is_soup = 1;
  for (int i = 1; i < k; i++) {
    members[n] = order[i];
    soup_of(ingr, members, n + 1, out);
    double s = score(ctx, out);
    out_is_soup = s > best; /* strictly better, else the ingredient is left out */
    if (out_is_soup) {
      best = s;
      n++;
    }
  }
  if (!out_is_soup) soup_of(ingr, members, n, out);
  for (int i = 0; i < k; i++) kept[i] = 0;
  for (int m = 0; m < n; m++) kept[members[m]] = 1;
  *soup_score = best;
  free(order);
  free(members);
  return SR_OK;
}

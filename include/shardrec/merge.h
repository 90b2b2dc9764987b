/*
 * merge.h — merging checkpoints into one model ("model soups", methods.md §4;
 * formulas and our choices in docs/merging.md).
 *
 * Pure arithmetic over parameter registries that share one layout: the same
 * tensor names with the same shapes in the same order (sr_merge_compatible).
 * θ_0 is the base (the checkpoint the ingredients started from), θ_1..θ_K the
 * ingredients and δ_k = θ_k − θ_0 their task vectors. Every method sums in a
 * fixed order (ingredients in the order given, in double precision), so a merge
 * is bitwise reproducible.
 */
#ifndef SHARDREC_MERGE_H
#define SHARDREC_MERGE_H

#include "shardrec/params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SR_MERGE_UNIFORM = 0,         /* θ = (1/K) Σ_k θ_k */
  SR_MERGE_GREEDY = 1,          /* uniform soup of a greedily chosen subset (sr_merge_greedy) */
  SR_MERGE_TASK_ARITHMETIC = 2, /* θ = θ_0 + λ Σ_k δ_k */
  SR_MERGE_TIES = 3,            /* trim, elect sign, disjoint mean (TIES-merging) */
  SR_MERGE_DELTA = 4,           /* delta-guided, weights per scalar parameter (our choice) */
  SR_MERGE_DELTA_TENSOR = 5,    /* delta-guided, weights per tensor from ||δ_k||_2 */
} sr_merge_method;

typedef struct {
  sr_merge_method method;
  double lambda;  /* scale of the merged task vector; used only when lambda_set */
  int lambda_set; /* 0: the method's default (task arithmetic 1/K, TIES and delta 1) */
  double gamma;   /* delta-guided: weights ∝ |δ|^gamma, gamma >= 0 (default 1) */
  double density; /* TIES: fraction of each δ_k kept, in (0, 1] (default 0.2) */
} sr_merge_opts;

/* Defaults for `method` (lambda unset, gamma 1, density 0.2). */
void sr_merge_opts_default(sr_merge_opts *o, sr_merge_method method);
/* Checks gamma, density and lambda are in range; SR_EINVAL naming the option. */
int sr_merge_opts_validate(const sr_merge_opts *o);
/* The λ actually used when merging k ingredients. */
double sr_merge_lambda(const sr_merge_opts *o, int k);

/* "uniform", "greedy", "task-arithmetic", "ties", "delta", "delta-tensor". */
const char *sr_merge_method_name(sr_merge_method m);
/* SR_EINVAL listing the valid names when `name` is none of them. */
int sr_merge_method_parse(const char *name, sr_merge_method *out);
/* 1 for the methods built on task vectors δ_k (they need θ_0). */
int sr_merge_needs_base(sr_merge_method m);

/* SR_OK when a and b have the same layout; otherwise SR_EINVAL naming the first
 * tensor that differs and both registries by their labels, e.g.
 * "a.h5: encoder.0.weight is 400 x 32, b.h5: 400 x 16". */
int sr_merge_compatible(const sr_params *a, const sr_params *b, const char *name_a, const char *name_b);

/* Merges the k ingredients into out->values with any method except greedy.
 * base is required by the methods of sr_merge_needs_base (and ignored by
 * uniform); every registry must have the layout of ingr[0]. */
int sr_merge_params(const sr_merge_opts *o, const sr_params *base, const sr_params *const *ingr, int k,
                    sr_params *out);

/* Validation score of a candidate soup; higher is better. */
typedef double (*sr_merge_score_fn)(void *ctx, const sr_params *candidate);

/* Greedy soup (Wortsman et al. 2022): visits the ingredients by descending
 * scores[] (their own validation scores; ties keep the given order), starts
 * from the best one and adds each next ingredient to the uniform soup of those
 * kept so far only if score(soup with it) is STRICTLY higher than the current
 * soup's. Candidates are built in `out`, which finally holds the soup of the
 * kept ingredients; kept[i] is set to 1 for those, else 0; *soup_score
 * receives the final soup's score. */
int sr_merge_greedy(const sr_params *const *ingr, const double *scores, int k, sr_merge_score_fn score, void *ctx,
                    sr_params *out, int *kept, double *soup_score);

#ifdef __cplusplus
}
#endif
#endif

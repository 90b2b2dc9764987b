/*
 * contrastive.h — retrieval losses of the two-tower model (methods.md §2, §3,
 * §5) and the streaming item-frequency estimator for the logQ correction.
 *
 * Every loss scores queries q (Bq, D) against items x (N, D): s_ij = <q_i, x_j>.
 * Pass L2-normalised rows (sr_l2norm_forward, nn.h) so that s_ij is the cosine,
 * and chain the returned gradients through sr_l2norm_backward.
 * Query i's positive is item pos[i] (its index in x); every other item is a
 * negative for it, including another copy of the same item id, unless the
 * softmax losses are given the candidates' ids (accidental-hit removal).
 *
 * Conventions (nn.h): losses are sums over the queries divided by `norm` (the
 * global number of queries) and WRITE their gradients dq (Bq, D) and dx (N, D);
 * either may be NULL when not needed.
 *
 * Cross-device negatives (methods.md §3): each rank passes its own Bq queries
 * and the N items gathered from all ranks, with norm = the global batch. The
 * dx it gets is its queries' share of the gradient of every gathered item;
 * summing dx over ranks (reduce-scatter to the owners) gives exactly the
 * single-process gradient, since the loss is a sum over queries.
 */
#ifndef SHARDREC_CONTRASTIVE_H
#define SHARDREC_CONTRASTIVE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* scores (Bq, N) = q (Bq, D) . x (N, D)^T. */
void sr_scores_forward(float *scores, const float *q, const float *x, int64_t Bq, int64_t N, int64_t D);

/* ---- batch softmax with logQ correction (methods.md §2) ------------------------
 * Logits l_ij = (s_ij - log p_j) / tau: the correction is subtracted before
 * dividing by tau, so s/tau - log p (methods.md's form) is this with log_p
 * scaled by tau (the two-tower model's loss.logq_scaled: false);
 * and loss = -(1/norm) sum_i log softmax_j(l_i.)[pos[i]].
 * log_p (N) is the log sampling probability of each gathered item, or NULL
 * for no correction. */
double sr_batch_softmax_loss(float *dq, float *dx, const float *q, const float *x, const int64_t *pos,
                             const float *log_p, int64_t Bq, int64_t N, int64_t D, float tau, float norm);

/* ---- InfoNCE for the SSL views (L_self, methods.md §2) --------------------------
 * z, z2 (M, D): the two views; z_i's positive is z2_i, the other rows of z2
 * are its negatives: loss = -(1/norm) sum_i log softmax_j(<z_i, z2_j>/tau)[i].
 * It is the batch softmax with pos[i] = i and no correction (gathered views
 * across ranks: call sr_batch_softmax_loss with the global positions). */
double sr_infonce_loss(float *dz, float *dz2, const float *z, const float *z2, int64_t M, int64_t D, float tau,
                       float norm);

/* ---- focal-reweighted batch softmax (methods.md §5) -------------------------------
 * Same logits as sr_batch_softmax_loss. candidate_ids (N) or NULL: with them,
 * accidental hits are removed: for query i every candidate j != pos[i] with
 * candidate_ids[j] == candidate_ids[pos[i]] (another copy of its positive
 * item) is left out of its softmax (as TensorFlow Recommenders' retrieval
 * task does), and gets no gradient from it. Query i's term is weighted by
 * (1 - p_i)^gamma, p_i = softmax(l_i.)[pos[i]]:  loss = (1/norm) sum_i
 * (1 - p_i)^gamma (-log p_i). The gradient includes the weight's own
 * derivative: dl_ij = (P_ij - [j == pos_i]) * ((1-p)^gamma + gamma p (1-p)^(gamma-1) (-log p)).
 * gamma = 0 is the batch softmax. */
double sr_focal_softmax_loss(float *dq, float *dx, const float *q, const float *x, const int64_t *pos,
                             const float *log_p, const int64_t *candidate_ids, int64_t Bq, int64_t N, int64_t D,
                             float tau, float gamma, float norm);

/* ---- Mann-Whitney / AUC loss (methods.md §5) ----------------------------------------
 * Pairs within each query (our choice): loss = (1/norm) sum_i mean_{n != pos_i}
 * -log sigmoid((s_i,pos_i - s_in) / tau). With every query having N - 1
 * negatives this is the mean over all pairs. tau = 1 uses raw cosines. */
double sr_auc_loss(float *dq, float *dx, const float *q, const float *x, const int64_t *pos, int64_t Bq, int64_t N,
                   int64_t D, float tau, float norm);

/* ---- Multi-Similarity loss (Wang et al. 2019, methods.md §5) ---------------------------
 * On the raw scores S (one positive per query):
 *   loss = (1/norm) sum_i [ (1/alpha) log(1 + sum_{k in P_i} e^{-alpha (S_ik - lambda)})
 *                         + (1/beta)  log(1 + sum_{k in N_i} e^{ beta (S_ik - lambda)}) ]
 * over the MINED pairs: a negative k is kept if S_ik > min_pos S_i. - epsilon,
 * the positive if S_i,pos < max_neg S_i. + epsilon. */
typedef struct {
  float alpha, beta, lambda, epsilon;
} sr_ms_params;

/* alpha 2, beta 40, lambda 0.5, epsilon 0.1 (methods.md). */
void sr_ms_params_default(sr_ms_params *p);
/* selected (Bq, N): 1 for the pairs the mining keeps, from scores (Bq, N). */
void sr_ms_mine(uint8_t *selected, const float *scores, const int64_t *pos, int64_t Bq, int64_t N, float epsilon);
/* selected: a mining result (sr_ms_mine) or NULL to mine the current scores.
 * The selection is a non-differentiable choice: the gradient treats it as
 * constant. */
double sr_ms_loss(float *dq, float *dx, const float *q, const float *x, const int64_t *pos, const uint8_t *selected,
                  int64_t Bq, int64_t N, int64_t D, const sr_ms_params *p, float norm);

/* ---- streaming item frequency (Yi et al., RecSys 2019) -----------------------------------
 * Per item j: last_step[j] = A[j], the step it was last seen, and gap[j] =
 * B[j], an EMA of the steps between sightings; p_j = 1 / B[j] estimates the
 * probability that j appears in a batch. A sighting of j at step t does
 *     B[j] <- (1 - alpha) B[j] + alpha (t - A[j]);  A[j] <- t.
 * Initialisation (our choice): a never-seen item has B = initial_gap (a prior,
 * e.g. n_items / global batch, the gap under uniform sampling), and its first
 * sighting only records A = t (no gap to measure yet). Items are indexed
 * directly (the corpus size is known), not hashed as in the paper.
 * Feed it the gathered GLOBAL batch ids in global order: ids are processed
 * one by one, so an id repeated within a batch updates with gap 0 and the
 * state is the same on every rank whatever the split. */
typedef struct {
  int64_t n_items;
  float alpha, initial_gap;
  int64_t *last_step; /* (n_items), -1 = never seen */
  float *gap;         /* (n_items) */
} sr_freq_estimator;

void sr_freq_init(sr_freq_estimator *fe, int64_t n_items, float alpha, float initial_gap);
void sr_freq_free(sr_freq_estimator *fe);
/* Records the sightings ids[0..n) at step t (t increasing across calls). */
void sr_freq_update(sr_freq_estimator *fe, const int64_t *ids, int64_t n, int64_t step);
/* log_p[k] = -log B[ids[k]] (the log_p argument of the batch softmax). */
void sr_freq_log_prob(float *log_p, const sr_freq_estimator *fe, const int64_t *ids, int64_t n);

#ifdef __cplusplus
}
#endif
#endif

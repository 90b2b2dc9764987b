/*
 * recommend.h — top-K recommendations of a trained model for chosen users,
 * their known items excluded (`shardrec recommend`).
 *
 * A user's row is everything the dataset knows about them: the model reads it
 * as the user's history and it is excluded from the ranking. For the test or
 * validation split the row is the split's fold-in row (what evaluation feeds
 * the model, so held-out items can appear, as hits do in `shardrec eval`);
 * for all users it is the union of the user's training row and the fold-in
 * and held-out rows of the evaluation splits they are in (each user once).
 */
#ifndef SHARDREC_RECOMMEND_H
#define SHARDREC_RECOMMEND_H

#include <stdint.h>

#include "shardrec/csr.h"
#include "shardrec/dataset.h"
#include "shardrec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  SR_RECOMMEND_ALL = 0,   /* every user of the dataset once, with all their items */
  SR_RECOMMEND_TRAIN = 1, /* training rows */
  SR_RECOMMEND_VALID = 2, /* validation fold-in rows */
  SR_RECOMMEND_TEST = 3   /* test fold-in rows */
} sr_recommend_users;
/* "all", "train", "valid", "test", NULL (indexed by sr_recommend_users). */
extern const char *const sr_recommend_users_names[];

/* The users of `which` in a whole dataset (sr_dataset_read): *user_ids
 * (malloc'd, original numbering; ascending for ALL, split order otherwise)
 * and their rows (n_users x n_items). */
void sr_recommend_select(const sr_dataset *d, sr_recommend_users which, sr_csr *rows, int64_t **user_ids);

/* Top k (<= n_items) items of rows[0..R) of the model, the row's own items
 * excluded, `batch` rows scored at a time: items (R, k) best first (ties to
 * the lower item), scores (R, k) the model's scores. A row with fewer than k
 * other items ends with item -1 and score -inf. The model must hold every
 * item (no item parallelism). */
void sr_recommend(sr_model *m, const sr_csr *rows, const int64_t *user_ids, int k, int64_t batch, int32_t *items,
                  float *scores);

#ifdef __cplusplus
}
#endif
#endif

/* model.c — model construction by configured type (model.h). */
#include "shardrec/model.h"

#include "shardrec/ease.h"
#include "shardrec/error.h"
#include "shardrec/two_tower.h"
#include "shardrec/vae.h"

static int create(const sr_config *cfg, const sr_dataset *data, const sr_dist *dist, sr_model **out) {
  switch ((sr_model_type)cfg->model.type) {
    case SR_MODEL_MULTVAE:
    case SR_MODEL_MULTDAE:
      return sr_vae_create(cfg, data->n_items, dist, out);
    case SR_MODEL_TWOTOWER:
      return sr_two_tower_create(cfg, data, dist, out);
    case SR_MODEL_EASE:
      return sr_ease_create(cfg, data->n_items, out);
  }
  return SR_FAIL(SR_EINVAL, "model.type: unknown model type %d", cfg->model.type);
}

int sr_model_create_on(const sr_config *cfg, const sr_dataset *data, const sr_dist *dist, sr_model **out) {
  SR_TRY(create(cfg, data, dist, out));
  (*out)->dist = dist;
  return SR_OK;
}

int sr_model_create(const sr_config *cfg, const sr_dataset *data, sr_model **out) {
  return sr_model_create_on(cfg, data, NULL, out);
}

const char *sr_sample_unit_name(sr_sample_unit unit) { return unit == SR_SAMPLES_PAIRS ? "pairs" : "users"; }

void sr_model_destroy(sr_model *m) {
  if (m) m->ops->destroy(m);
}

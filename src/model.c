/* model.c — model construction by configured type (model.h). */
#include "shardrec/model.h"

#include "shardrec/error.h"
#include "shardrec/vae.h"

int sr_model_create(const sr_config *cfg, int64_t n_items, sr_model **out) {
  switch ((sr_model_type)cfg->model.type) {
    case SR_MODEL_MULTVAE:
    case SR_MODEL_MULTDAE:
      return sr_vae_create(cfg, n_items, out);
  }
  return SR_FAIL(SR_EINVAL, "model.type: unknown model type %d", cfg->model.type);
}

void sr_model_destroy(sr_model *m) {
  if (m) m->ops->destroy(m);
}

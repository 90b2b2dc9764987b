/* checkpoint.c — model checkpoints in HDF5 (checkpoint.h, docs/checkpoint.md). */
#include "shardrec/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardrec/error.h"
#include "shardrec/h5io.h"
#include "shardrec/mem.h"

#define CHECKPOINT_ZSTD_LEVEL 3
#define CONFIG_YAML_MAX (256 * 1024)

static int write_contents(sr_h5file *f, const sr_model *m, const sr_config *cfg) {
  char *yaml = sr_config_to_yaml(cfg);
  int rc = sr_h5_write_attr_string(f, "/", "config_yaml", yaml);
  free(yaml);
  SR_TRY(rc);
  SR_TRY(sr_h5_write_attr_int64(f, "/", "shardrec_checkpoint_version", SR_CHECKPOINT_SCHEMA_VERSION));
  SR_TRY(sr_h5_write_attr_string(f, "/", "created_by", "shardrec " SHARDREC_VERSION));
  SR_TRY(sr_h5_write_attr_string(f, "/", "model", m->ops->name));
  SR_TRY(sr_h5_write_attr_int64(f, "/", "n_items", m->n_items));
  SR_TRY(sr_h5_create_group(f, "/params"));
  for (int i = 0; i < m->params.count; i++) {
    const sr_param *p = &m->params.items[i];
    char obj[SR_PARAM_NAME_MAX + 16];
    snprintf(obj, sizeof obj, "/params/%s", p->name);
    SR_TRY(sr_h5_write_tensor(f, obj, p->value, p->ndim, p->shape, CHECKPOINT_ZSTD_LEVEL));
  }
  return SR_OK;
}

int sr_checkpoint_write(const char *path, const sr_model *m, const sr_config *cfg) {
  sr_h5file f;
  SR_TRY(sr_h5_create(&f, path));
  int rc = write_contents(&f, m, cfg);
  if (rc == SR_OK) return sr_h5_commit(&f);
  sr_h5_close(&f); /* removes the temporary file */
  return rc;
}

static int read_contents(sr_h5file *f, sr_config *cfg, sr_model **model) {
  int64_t version = 0, n_items = 0;
  SR_TRY(sr_h5_read_attr_int64(f, "/", "shardrec_checkpoint_version", &version));
  if (version != SR_CHECKPOINT_SCHEMA_VERSION)
    return SR_FAIL(SR_EFORMAT, "%s: checkpoint schema version %lld, this shardrec reads version %d", f->path,
                   (long long)version, SR_CHECKPOINT_SCHEMA_VERSION);
  SR_TRY(sr_h5_read_attr_int64(f, "/", "n_items", &n_items));
  char *yaml = sr_malloc(CONFIG_YAML_MAX);
  int rc = sr_h5_read_attr_string(f, "/", "config_yaml", yaml, CONFIG_YAML_MAX);
  if (rc == SR_OK) {
    sr_config_defaults(cfg);
    rc = sr_config_load_string(cfg, yaml, "config stored in the checkpoint");
  }
  free(yaml);
  if (rc == SR_ECONFIG) sr_error_prefix("%s", f->path);
  SR_TRY(rc);
  SR_TRY(sr_model_create(cfg, n_items, model));
  sr_params *ps = &(*model)->params;
  for (int i = 0; i < ps->count && rc == SR_OK; i++) {
    sr_param *p = &ps->items[i];
    char obj[SR_PARAM_NAME_MAX + 16];
    snprintf(obj, sizeof obj, "/params/%s", p->name);
    rc = sr_h5_read_tensor(f, obj, p->value, p->ndim, p->shape);
  }
  if (rc != SR_OK) {
    sr_model_destroy(*model);
    *model = NULL;
  }
  return rc;
}

int sr_checkpoint_read(const char *path, sr_config *cfg, sr_model **model) {
  sr_h5file f;
  *model = NULL;
  SR_TRY(sr_h5_open(&f, path));
  int rc = read_contents(&f, cfg, model);
  sr_h5_close(&f);
  return rc;
}

/* model_data.c — a checkpoint's model over its dataset, for export and recommend (commands.h). */
#include <string.h>

#include "commands.h"
#include "shardrec/checkpoint.h"
#include "shardrec/error.h"

int sr_cli_load_model_data(const char *checkpoint, const char *data_path, int wanted_type, const char *command,
                           sr_cli_model_data *in) {
  memset(in, 0, sizeof *in);
  sr_dataset_init(&in->data);
  sr_config_defaults(&in->cfg);
  SR_TRY(sr_checkpoint_read_config(checkpoint, &in->cfg));
  if (wanted_type >= 0 && (int)in->cfg.model.type != wanted_type)
    return SR_FAIL(SR_EINVAL, "%s: %s needs a %s checkpoint (this one is %s)", checkpoint, command,
                   wanted_type == SR_MODEL_TWOTOWER ? "two-tower" : sr_model_type_names[wanted_type],
                   sr_model_type_names[in->cfg.model.type]);
  in->data_path = data_path ? data_path : in->cfg.data.path;
  SR_TRY(sr_dataset_read(in->data_path, &in->data));
  SR_TRY(sr_raw_ids_read_dataset(in->data_path, &in->data, &in->user_raw, &in->item_raw));
  return sr_checkpoint_read(checkpoint, &in->data, &in->cfg, &in->model);
}

void sr_cli_model_data_free(sr_cli_model_data *in) {
  sr_model_destroy(in->model);
  sr_dataset_free(&in->data);
  sr_raw_ids_free(&in->user_raw);
  sr_raw_ids_free(&in->item_raw);
}

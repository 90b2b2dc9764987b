/*
 * checkpoint.h — model checkpoints in HDF5 (format in docs/checkpoint.md).
 *
 * A checkpoint holds every registered parameter under /params/<name> (float32,
 * zstd + Fletcher32), the resolved YAML config it was trained with (so the
 * model can be rebuilt without the original file), the number of items and a
 * schema version. Files are written atomically (temp, fsync, rename).
 */
#ifndef SHARDREC_CHECKPOINT_H
#define SHARDREC_CHECKPOINT_H

#include "shardrec/config.h"
#include "shardrec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SR_CHECKPOINT_SCHEMA_VERSION 1

int sr_checkpoint_write(const char *path, const sr_model *m, const sr_config *cfg);
/* Rebuilds the model from the stored config and loads its parameters. Every
 * tensor must be present with the registered shape (errors name the tensor).
 * cfg receives the stored config. */
int sr_checkpoint_read(const char *path, sr_config *cfg, sr_model **model);

#ifdef __cplusplus
}
#endif
#endif

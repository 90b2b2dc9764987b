/*
 * checkpoint_dir.h — a run's checkpoint directory: file naming, the `latest`
 * and `best` pointers, retention, and finding the checkpoint to resume from.
 *
 *   <dir>/ckpt-<step, 10 digits>.h5   training checkpoints (checkpoint.h)
 *   <dir>/latest                     name of the newest one (one line)
 *   <dir>/best                       name of the one written at the best validation
 *
 * Pointers are replaced atomically (temp + rename), after the checkpoint they
 * name is durable, so a crash at any moment leaves `latest` naming a complete
 * file. Retention keeps the newest keep_last checkpoints of the run plus
 * `latest` and `best`, and never touches another run's files.
 */
#ifndef SHARDREC_CHECKPOINT_DIR_H
#define SHARDREC_CHECKPOINT_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "shardrec/checkpoint.h"

#ifdef __cplusplus
extern "C" {
#endif

/* "<dir>/ckpt-0000001234.h5" for optimizer step 1234. */
void sr_ckptdir_path(const char *dir, int64_t step, char *buf, size_t bufsize);
/* After `path` (in dir) was written by the run `run_id`: points `latest` (and
 * `best` when is_best) at it, then deletes that run's checkpoints beyond its
 * newest keep_last (path included). Never deleted: the files `latest` and
 * `best` name, and any file that does not record run_id as its run (another
 * run's, an older shardrec's). */
int sr_ckptdir_commit(const char *dir, const char *path, int is_best, int keep_last, const char *run_id);
/* Removes the `best` pointer: the validation improved at a moment no
 * checkpoint was written, so the file it named is no longer the best
 * (checkpoint.every_s; model.h5 holds the selected model either way). */
int sr_ckptdir_forget_best(const char *dir);
/* Before training, by the rank that writes checkpoints: creates dir, fails
 * at once if no file can be created in it (rather than at the first
 * checkpoint, maybe an epoch later), and removes the temporaries
 * ("<name>.tmp.<pid>", fsutil.h) that a process killed while writing left:
 * those whose process no longer runs on this node (a live writer's stay). */
int sr_ckptdir_prepare(const char *dir);
/* Whether dir holds checkpoints of a run (a `latest` pointer or a ckpt-*.h5). */
int sr_ckptdir_has_checkpoints(const char *dir);
/* Deletes every checkpoint and pointer of dir (starting a run over). */
int sr_ckptdir_clear(const char *dir);
/* Resumes from `which`: a checkpoint path, or "auto" = the newest valid one in
 * dir (the `latest` pointer first, then every ckpt-*.h5 newest first; a file
 * that fails to load is skipped with a warning naming it and why). Loads into
 * m, o, state (as sr_checkpoint_read_training); `chosen` gets the path used.
 * "auto" where nothing was written yet (no pointer, no checkpoint) loads
 * nothing and sets chosen to "": the run starts fresh, so that one command
 * line serves a job's first start and every restart. */
int sr_ckptdir_resume(const char *dir, const char *which, sr_model *m, sr_optim *o, sr_train_state *state,
                      char *chosen, size_t chosen_size);

#ifdef __cplusplus
}
#endif
#endif

/* no_cuda.c — device.h in a build without CUDA (cmake/cuda.cmake): there is
 * never a device, and asking for one says how to get one. */
#include <stdio.h>

#include "shardrec/device.h"
#include "shardrec/error.h"

#define NOT_BUILT "this shardrec was built without CUDA (rebuild with -DSHARDREC_CUDA=ON, docs/gpu.md)"

int sr_device_available(char *why, size_t why_size) {
  if (why) snprintf(why, why_size, "%s", NOT_BUILT);
  return 0;
}

int sr_device_resolve(int requested, int *use_cuda) {
  *use_cuda = 0;
  if (requested != SR_DEVICE_CUDA) return SR_OK;
  return SR_FAIL(SR_EINVAL, "run.device: cuda, but %s; train on the CPU with run.device: cpu (or auto)", NOT_BUILT);
}

int sr_device_bind(const sr_dist *dist) { return SR_FAIL(SR_EINVAL, "rank %d: %s", dist->rank, NOT_BUILT); }

int sr_device_model_create(const sr_config *cfg, const sr_dataset *data, const sr_dist *dist, sr_model **out) {
  (void)cfg, (void)data, (void)dist, (void)out;
  return SR_FAIL(SR_EINVAL, "%s", NOT_BUILT);
}

int sr_device_trainer_create(sr_device_trainer **out, const sr_config *cfg, const sr_dist *dist, sr_model *m,
                             sr_grad_reducer *reducer) {
  (void)out, (void)cfg, (void)dist, (void)m, (void)reducer;
  return SR_FAIL(SR_EINVAL, "%s", NOT_BUILT);
}

/* No device trainer can exist here (its create fails), so reaching any of
 * these is a programming error. */
#define NO_TRAINER() SR_DIE("device trainer used in a build without CUDA")
void sr_device_trainer_free(sr_device_trainer *t) {
  if (t) NO_TRAINER();
}
const char *sr_device_trainer_backend(const sr_device_trainer *t) { (void)t, NO_TRAINER(); }
void sr_device_trainer_begin(sr_device_trainer *t) { (void)t, NO_TRAINER(); }
void sr_device_trainer_ready_cb(void *t, int index) { (void)t, (void)index, NO_TRAINER(); }
int sr_device_trainer_reduce(sr_device_trainer *t) { (void)t, NO_TRAINER(); }
int sr_device_trainer_update(sr_device_trainer *t, sr_optim *o, int64_t *n_bad) {
  (void)t, (void)o, (void)n_bad, NO_TRAINER();
}
int sr_device_trainer_download(sr_device_trainer *t, int with_optimizer_state) {
  (void)t, (void)with_optimizer_state, NO_TRAINER();
}
int sr_device_trainer_upload(sr_device_trainer *t) { (void)t, NO_TRAINER(); }

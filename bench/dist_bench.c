/* dist_bench.c — shared parts of the data-parallel training benchmarks (dist_bench.h). */
#include "dist_bench.h"

#include <stdio.h>
#include <stdlib.h>

#include "shardrec/blas.h"
#include "shardrec/csr.h"
#include "shardrec/log.h"
#include "shardrec/shard.h"

void dist_bench_start(int *argc, char ***argv, sr_dist *dist) {
  sr_blas_configure_process(*argv);
  if (sr_dist_init(argc, argv, dist)) {
    sr_log_current_error();
    exit(1);
  }
  sr_blas_set_threads(1);
  sr_log_set_level(SR_LOG_WARN);
}

void dist_bench_data(const sr_synth_opts *so, const sr_dist *dist, sr_dataset *all, sr_dataset *shard) {
  sr_csr full;
  sr_feature *features = NULL;
  int n_features = 0;
  sr_split_opts sp;
  sr_split_opts_default(&sp);
  sp.n_heldout_users = 100;
  if (sr_synth_generate(so, &full, &features, &n_features) ||
      sr_split_strong(&full, features, n_features, &sp, all, NULL)) {
    sr_log_current_error();
    sr_dist_abort(dist, 1);
  }
  sr_csr_free(&full);
  for (int f = 0; f < n_features; f++) sr_csr_free(&features[f].values); /* the split copied them */
  free(features);
  sr_dataset_shard(all, dist->rank, dist->size, shard);
}

void dist_bench_print_rate(const sr_dist *dist, int64_t n_items, int global_batch, const sr_train_result *res) {
  if (dist->rank != 0) return;
  printf(
      "ranks %d, items %lld, global batch %d, %lld steps: %.0f %s/s (%.1f ms/step; CPU time of rank 0 %.1f "
      "ms/step)\n",
      dist->size, (long long)n_items, global_batch, (long long)res->steps, res->samples_per_s,
      sr_sample_unit_name(res->sample_unit), 1e3 * res->train_seconds / (double)res->steps,
      1e3 * res->train_cpu_seconds / (double)res->steps);
}

int dist_bench_size_option(int opt, const char *arg, sr_synth_opts *so, int *batch, int *steps) {
  switch (opt) {
    case 'u':
      so->n_users = atoll(arg);
      return 1;
    case 'i':
      so->n_items = atoll(arg);
      return 1;
    case 'b':
      *batch = atoi(arg);
      return 1;
    case 's':
      *steps = atoi(arg);
      return 1;
  }
  return 0;
}

sr_config dist_bench_config(int batch, int steps) {
  sr_config cfg;
  sr_config_defaults(&cfg);
  snprintf(cfg.data.path, sizeof cfg.data.path, "synthetic");
  cfg.train.batch_size = batch;
  cfg.train.max_steps = steps;
  cfg.train.epochs = 1000;
  return cfg;
}

uint64_t dist_bench_param_digest(const sr_params *ps) {
  const unsigned char *bytes = (const unsigned char *)ps->values;
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < (size_t)ps->total * sizeof(float); i++) h = (h ^ bytes[i]) * 1099511628211ull;
  return h;
}

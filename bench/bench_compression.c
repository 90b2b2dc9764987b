/*
 * bench_compression.c — file size and write/read time of each --compression
 * (zstd, gzip, none; h5io.h) on the three kinds of file shardrec writes:
 *
 *   bench_compression [--users U] [--items I] [--mean-items M] [--dir D]
 *
 *   1. a dataset: a synthetic interaction log of U users x I items, M items per
 *      user on average (defaults: ML-20M's 136 677 x 20 108, ~73), split as
 *      `data synth` splits it, written (sr_dataset_write) and read back
 *      (sr_dataset_read, which also validates);
 *   2. a model: the paper's [I -> 600 -> 200 -> 600 -> I] Mult-VAE at its
 *      initialisation (Xavier-uniform floats: as incompressible as trained
 *      weights), written as model.h5 (sr_checkpoint_write) and read back;
 *   3. an export: L2-normalised embeddings of every item and user (d = 64,
 *      Gaussian directions) with their int64 ids, the layout of `shardrec
 *      export`, written and read back with h5io.
 * Times are wall seconds of one run each (the page cache holds the files).
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shardrec/checkpoint.h"
#include "shardrec/dataset.h"
#include "shardrec/error.h"
#include "shardrec/h5io.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"
#include "shardrec/model.h"
#include "shardrec/rng.h"
#include "shardrec/synth.h"

#define EXPORT_DIM 64

static double file_mb(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (double)st.st_size / 1e6 : -1.0;
}

static void check(int rc) {
  if (rc != SR_OK) SR_DIE("%s", sr_error_message());
}

static void report(const char *what, sr_h5_compression c, const char *path, double write_s, double read_s) {
  char name[32];
  sr_h5_compression_format(c, name, sizeof name);
  printf("%-8s %-8s %9.1f MB  write %6.2f s  read %6.2f s\n", what, name, file_mb(path), write_s, read_s);
  fflush(stdout);
}

static void bench_dataset(const sr_dataset *d, sr_h5_compression c, const char *path) {
  double t0 = sr_now();
  check(sr_dataset_write(path, d, c));
  double t1 = sr_now();
  sr_dataset back;
  check(sr_dataset_read(path, &back));
  report("dataset", c, path, t1 - t0, sr_now() - t1);
  sr_dataset_free(&back);
}

static void bench_model(const sr_dataset *d, sr_h5_compression c, const char *path) {
  sr_config cfg;
  sr_config_defaults(&cfg); /* multvae, hidden [600], latent 200 */
  cfg.checkpoint.compression = (int)c.codec;
  sr_model *m;
  check(sr_model_create(&cfg, d, &m));
  double t0 = sr_now();
  check(sr_checkpoint_write(path, m, &cfg));
  double t1 = sr_now();
  sr_model *back;
  check(sr_checkpoint_read(path, d, &cfg, &back));
  report("model", c, path, t1 - t0, sr_now() - t1);
  sr_model_destroy(back);
  sr_model_destroy(m);
}

/* (n, EXPORT_DIM) unit rows of Gaussian draws. */
static float *unit_rows(int64_t n, uint64_t seed) {
  float *e = sr_malloc((size_t)(n * EXPORT_DIM) * sizeof(float));
  sr_rng rng;
  sr_rng_init(&rng, seed, SR_RNG_INIT, 0, 0);
  for (int64_t r = 0; r < n; r++) {
    double ss = 0;
    for (int j = 0; j < EXPORT_DIM; j++) {
      e[r * EXPORT_DIM + j] = sr_rng_normal(&rng);
      ss += (double)e[r * EXPORT_DIM + j] * e[r * EXPORT_DIM + j];
    }
    for (int j = 0; j < EXPORT_DIM; j++) e[r * EXPORT_DIM + j] /= (float)sqrt(ss);
  }
  return e;
}

static void bench_export(int64_t n_items, int64_t n_users, sr_h5_compression c, const char *path) {
  float *items = unit_rows(n_items, 1), *users = unit_rows(n_users, 2);
  int64_t *ids = sr_malloc((size_t)(n_users > n_items ? n_users : n_items) * sizeof *ids);
  for (int64_t i = 0; i < (n_users > n_items ? n_users : n_items); i++) ids[i] = i;
  const int64_t item_shape[2] = {n_items, EXPORT_DIM}, user_shape[2] = {n_users, EXPORT_DIM};
  double t0 = sr_now();
  sr_h5file f;
  check(sr_h5_create(&f, path, c));
  check(sr_h5_write_tensor(&f, "/items/embeddings", items, 2, item_shape));
  check(sr_h5_write_array(&f, "/items/ids", SR_H5_INT64, ids, n_items));
  check(sr_h5_write_tensor(&f, "/users/embeddings", users, 2, user_shape));
  check(sr_h5_write_array(&f, "/users/ids", SR_H5_INT64, ids, n_users));
  check(sr_h5_commit(&f));
  double t1 = sr_now();
  check(sr_h5_open(&f, path));
  check(sr_h5_read_tensor(&f, "/items/embeddings", items, 2, item_shape));
  check(sr_h5_read_tensor(&f, "/users/embeddings", users, 2, user_shape));
  sr_h5_close(&f);
  report("export", c, path, t1 - t0, sr_now() - t1);
  free(items);
  free(users);
  free(ids);
}

int main(int argc, char **argv) {
  static const struct option options[] = {{"users", required_argument, NULL, 'u'},
                                          {"items", required_argument, NULL, 'i'},
                                          {"mean-items", required_argument, NULL, 'm'},
                                          {"dir", required_argument, NULL, 'd'},
                                          {NULL, 0, NULL, 0}};
  sr_synth_opts so;
  sr_synth_opts_default(&so);
  so.n_users = 136677;
  so.n_items = 20108;
  so.mean_items_per_user = 73;
  const char *dir = ".";
  int opt;
  while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
    if (opt == 'u') so.n_users = atoll(optarg);
    if (opt == 'i') so.n_items = atoll(optarg);
    if (opt == 'm') so.mean_items_per_user = atof(optarg);
    if (opt == 'd') dir = optarg;
    if (opt == '?') return 2;
  }
  sr_csr full;
  sr_feature *features;
  int n_features;
  check(sr_synth_generate(&so, &full, &features, &n_features));
  sr_split_opts split;
  sr_split_opts_default(&split);
  split.n_heldout_users = so.n_users / 10;
  sr_dataset d;
  sr_dataset_init(&d);
  check(sr_split_strong(&full, features, n_features, &split, &d, NULL));
  sr_csr_free(&full);
  printf("dataset: %lld users, %lld items, %lld training interactions\n", (long long)d.n_users, (long long)d.n_items,
         (long long)d.train.nnz);
  const sr_h5_codec codecs[] = {SR_H5_ZSTD, SR_H5_GZIP, SR_H5_UNCOMPRESSED};
  char path[4096];
  for (int k = 0; k < 3; k++) {
    const sr_h5_compression c = sr_h5_compression_of(codecs[k]);
    snprintf(path, sizeof path, "%s/bench-dataset-%s.h5", dir, sr_h5_codec_names[c.codec]);
    bench_dataset(&d, c, path);
    snprintf(path, sizeof path, "%s/bench-model-%s.h5", dir, sr_h5_codec_names[c.codec]);
    bench_model(&d, c, path);
    snprintf(path, sizeof path, "%s/bench-export-%s.h5", dir, sr_h5_codec_names[c.codec]);
    bench_export(d.n_items, d.n_users, c, path);
  }
  for (int i = 0; i < n_features; i++) sr_csr_free(&features[i].values);
  free(features);
  sr_dataset_free(&d);
  return 0;
}

/*
 * bench_vae.c — Mult-VAE training throughput against the machine's sgemm peak.
 *
 *   bench_vae [--items I] [--batch B] [--clicks C] [--steps S] [--threads T]
 *
 * Measures, in one process and with the same BLAS threads:
 *   1. the sgemm peak: the best of several (B x 600) . (600 x I) products, the
 *      decoder's output layer, which dominates the model's FLOPs;
 *   2. full training steps (forward, backward, Adam) of the paper's
 *      [I -> 600 -> 200 -> 600 -> I] Mult-VAE on random sparse batches with C
 *      clicks per user (ML-20M averages ~73).
 * Prints users/s, achieved GFLOP/s (dense-layer FLOPs / step time) and that as a
 * fraction of the measured peak. Defaults match ML-20M (I = 20108, B = 500).
 */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "shardrec/blas.h"
#include "shardrec/config.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"
#include "shardrec/model.h"
#include "shardrec/optim.h"
#include "shardrec/rng.h"

static double sgemm_peak_gflops(int64_t B, int64_t K, int64_t N, int reps) {
  float *a = sr_aligned_calloc((size_t)(B * K) * sizeof(float));
  float *b = sr_aligned_calloc((size_t)(K * N) * sizeof(float));
  float *c = sr_aligned_calloc((size_t)(B * N) * sizeof(float));
  for (int64_t i = 0; i < B * K; i++) a[i] = (float)(i % 7) * 0.1f;
  for (int64_t i = 0; i < K * N; i++) b[i] = (float)(i % 5) * 0.1f;
  double best = 0;
  for (int r = 0; r < reps; r++) {
    double t0 = sr_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)N, (int)K, 1.0f, a, (int)K, b, (int)N, 0.0f,
                c, (int)N);
    double gflops = 2.0 * (double)B * (double)K * (double)N / (sr_now() - t0) / 1e9;
    if (gflops > best) best = gflops;
  }
  free(a), free(b), free(c);
  return best;
}

/* B random users with about `clicks` distinct items each (rows sorted). */
static void random_batch(sr_csr *x, int64_t B, int64_t n_items, int clicks, uint64_t step) {
  sr_csr_alloc(x, B, n_items, B * clicks, 0);
  int64_t pos = 0;
  for (int64_t u = 0; u < B; u++) {
    sr_rng r;
    sr_rng_init(&r, 1, SR_RNG_SYNTH, step, (uint64_t)u);
    /* a stride walk gives `clicks` distinct items without rejection */
    int64_t start = (int64_t)sr_rng_below(&r, (uint64_t)n_items), stride = n_items / clicks;
    for (int k = 0; k < clicks; k++) x->indices[pos + k] = (int32_t)((start + k * stride) % n_items);
    pos += clicks;
    x->indptr[u + 1] = pos;
  }
  sr_csr_sort_rows(x);
}

/* Dense-layer FLOPs of one training step: forward 2*B*in*out per layer, backward
 * the same for dW and again for din (all but the sparse first layer, whose
 * sparse products are counted as 2*nnz*out each way). */
static double step_flops(int64_t B, int64_t n_items, int64_t nnz) {
  const int64_t layers[4][2] = {{n_items, 600}, {600, 400}, {200, 600}, {600, n_items}};
  double f = 4.0 * (double)nnz * 600.0;
  for (int l = 1; l < 4; l++) f += 6.0 * (double)B * (double)layers[l][0] * (double)layers[l][1];
  return f;
}

int main(int argc, char **argv) {
  sr_blas_configure_process(argv);
  int64_t items = 20108, batch = 500;
  int clicks = 73, steps = 8, threads = (int)sysconf(_SC_NPROCESSORS_ONLN), opt;
  static const struct option longopts[] = {
      {"items", required_argument, NULL, 'i'},   {"batch", required_argument, NULL, 'b'},
      {"clicks", required_argument, NULL, 'c'},  {"steps", required_argument, NULL, 's'},
      {"threads", required_argument, NULL, 't'}, {NULL, 0, NULL, 0}};
  while ((opt = getopt_long(argc, argv, "i:b:c:s:t:", longopts, NULL)) != -1) {
    switch (opt) {
      case 'i':
        items = atoll(optarg);
        break;
      case 'b':
        batch = atoll(optarg);
        break;
      case 'c':
        clicks = atoi(optarg);
        break;
      case 's':
        steps = atoi(optarg);
        break;
      case 't':
        threads = atoi(optarg);
        break;
      default:
        fprintf(stderr, "usage: bench_vae [--items I] [--batch B] [--clicks C] [--steps S] [--threads T]\n");
        return 2;
    }
  }
  sr_blas_set_threads(threads);
  printf("OpenBLAS core %s, %d thread(s); items %lld, batch %lld, %d clicks/user\n", sr_blas_core_name(),
         sr_blas_get_threads(), (long long)items, (long long)batch, clicks);
  double peak = sgemm_peak_gflops(batch, 600, items, 5);
  printf("sgemm peak (%lldx600 . 600x%lld): %.1f GFLOP/s\n", (long long)batch, (long long)items, peak);

  sr_config cfg;
  sr_config_defaults(&cfg);
  cfg.train.batch_size = (int)batch;
  sr_model *m = NULL;
  sr_dataset corpus;
  sr_dataset_init(&corpus);
  corpus.n_items = items;
  if (sr_model_create(&cfg, &corpus, &m)) return 1;
  sr_optim o;
  sr_optim_init(&o, SR_OPTIM_ADAM);
  int64_t *ids = sr_malloc((size_t)batch * sizeof *ids);
  double total = 0, flops = 0;
  for (int s = 0; s <= steps; s++) { /* step 0 warms up (allocations, page faults) */
    sr_csr x;
    random_batch(&x, batch, items, clicks, (uint64_t)s);
    for (int64_t u = 0; u < batch; u++) ids[u] = s * batch + u;
    sr_batch b = {.rows = &x, .sample_ids = ids, .global_batch = batch, .step = (uint64_t)s};
    sr_step_stats st;
    double t0 = sr_now();
    m->ops->forward_backward(m, &b, &st);
    sr_optim_step(&o, &m->params);
    double dt = sr_now() - t0;
    if (s > 0) total += dt, flops += step_flops(batch, items, x.nnz);
    sr_csr_free(&x);
  }
  double achieved = flops / total / 1e9;
  printf("Mult-VAE training: %.1f ms/step, %.0f users/s, %.1f GFLOP/s = %.0f%% of sgemm peak\n", 1e3 * total / steps,
         (double)batch * steps / total, achieved, 100.0 * achieved / peak);
  free(ids);
  sr_model_destroy(m);
  return 0;
}

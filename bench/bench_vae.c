/*
 * bench_vae.c — Mult-VAE training throughput against the machine's sgemm peak.
 *
 *   bench_vae [--items I] [--batch B] [--clicks C] [--steps S] [--threads T]
 *             [--users U] [--device cpu|cuda] [--checkpoint PATH]
 *             [--simd baseline|avx2|avx512]
 *
 * Measures, in one process and with the same BLAS threads (or on one GPU):
 *   1. the sgemm peak: the best of several (B x 600) . (600 x I) products, the
 *      decoder's output layer, which dominates the model's FLOPs (OpenBLAS, or
 *      cuBLAS in fp32 with --device cuda);
 *   2. full training steps (forward, backward, Adam; on the GPU the trainer's
 *      device path: sr_device_trainer) of the paper's
 *      [I -> 600 -> 200 -> 600 -> I] Mult-VAE on random sparse batches with C
 *      clicks per user (ML-20M averages ~73).
 * Prints users/s, seconds per epoch of U users, achieved GFLOP/s (dense-layer
 * FLOPs / step time) and that as a fraction of the measured peak; the step's
 * CPU time (all threads, getrusage) against the core's FMA limit; a digest of
 * the trained parameters (equal digests: bit-identical training) and the
 * share of Adam. --simd runs the dispatched kernels (nn.h) at that vector
 * width instead of the CPU's widest, to measure what it gives. With
 * --checkpoint PATH it then writes a training checkpoint there and prints its
 * cost (CPU, wall, peak memory). Defaults match ML-20M (U = 116 677 training
 * users, I = 20108, B = 500).
 */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef SHARDREC_HAVE_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>
#endif

#include "dist_bench.h"
#include "shardrec/blas.h"
#include "shardrec/checkpoint.h"
#include "shardrec/config.h"
#include "shardrec/device.h"
#include "shardrec/error.h"
#include "shardrec/grad_reduce.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"
#include "shardrec/model.h"
#include "shardrec/nn.h"
#include "shardrec/optim.h"
#include "shardrec/rng.h"

/* FP32 FMA limit of one core of this machine's CPU (toolchain-notes.md:
 * 2 x 512-bit FMA per cycle at ~2.7 GHz); other CPUs have other limits. */
#define FMA_GFLOPS_PER_CORE 172.0

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

#ifdef SHARDREC_HAVE_CUDA
/* The same product with cuBLAS in fp32 (no TF32): the GPU's reference rate.
 * Exits on a CUDA failure (a benchmark has nothing to recover). */
static double cublas_sgemm_peak_gflops(int64_t B, int64_t K, int64_t N, int reps) {
  float *a, *b, *c;
  cublasHandle_t h;
  cudaEvent_t start, stop;
  if (cudaMalloc((void **)&a, (size_t)(B * K) * sizeof(float)) ||
      cudaMalloc((void **)&b, (size_t)(K * N) * sizeof(float)) ||
      cudaMalloc((void **)&c, (size_t)(B * N) * sizeof(float)) || cublasCreate(&h) || cudaEventCreate(&start) ||
      cudaEventCreate(&stop))
    SR_DIE("cannot set up the cuBLAS reference");
  cudaMemset(a, 0, (size_t)(B * K) * sizeof(float));
  cudaMemset(b, 0, (size_t)(K * N) * sizeof(float));
  const float one = 1.0f, zero = 0.0f;
  double best = 0;
  for (int r = 0; r < reps; r++) { /* row-major (B, N) = (B, K) . (K, N) as column-major N x B */
    cudaEventRecord(start, 0);
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)N, (int)B, (int)K, &one, b, (int)N, a, (int)K, &zero, c, (int)N);
    cudaEventRecord(stop, 0);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    const double gflops = 2.0 * (double)B * (double)K * (double)N / (ms * 1e-3) / 1e9;
    if (r > 0 && gflops > best) best = gflops; /* the first call loads the kernels */
  }
  cublasDestroy(h);
  cudaFree(a), cudaFree(b), cudaFree(c);
  cudaEventDestroy(start), cudaEventDestroy(stop);
  return best;
}
#endif

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

/* Peak resident memory of this process so far, MiB. */
static double peak_rss_mib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_maxrss / 1024.0;
}

/* --checkpoint PATH: a training checkpoint of the trained model (with a best
 * snapshot, as the trainer writes), its CPU and wall time and how far it
 * raised the peak memory above that of training. */
static int write_checkpoint(const char *path, const sr_model *m, const sr_config *cfg, const sr_optim *o) {
  sr_train_state state = {.epoch = 1, .best_epoch = 1};
  state.best_values = sr_malloc((size_t)m->params.total * sizeof(float));
  memcpy(state.best_values, m->params.values, (size_t)m->params.total * sizeof(float));
  const double rss0 = peak_rss_mib(), t0 = sr_now(), cpu0 = sr_cpu_seconds();
  const int rc = sr_checkpoint_write_training(path, m, cfg, o, &state);
  const double wall = sr_now() - t0, cpu = sr_cpu_seconds() - cpu0;
  free(state.best_values);
  if (rc) {
    fprintf(stderr, "bench_vae: %s\n", sr_error_message());
    return rc;
  }
  struct stat st;
  const double mib = stat(path, &st) == 0 ? (double)st.st_size / (1024.0 * 1024.0) : 0.0;
  printf("checkpoint %s: %.0f MiB, %.2f s CPU (wall %.2f s), peak RSS %.0f -> %.0f MiB\n", path, mib, cpu, wall, rss0,
         peak_rss_mib());
  return 0;
}

int main(int argc, char **argv) {
  sr_blas_configure_process(argv);
  int64_t items = 20108, batch = 500, users = 116677;
  int clicks = 73, steps = 8, threads = (int)sysconf(_SC_NPROCESSORS_ONLN), opt, cuda = 0;
  const char *checkpoint = NULL;
  static const struct option longopts[] = {
      {"items", required_argument, NULL, 'i'},   {"batch", required_argument, NULL, 'b'},
      {"clicks", required_argument, NULL, 'c'},  {"steps", required_argument, NULL, 's'},
      {"threads", required_argument, NULL, 't'}, {"users", required_argument, NULL, 'u'},
      {"device", required_argument, NULL, 'd'},  {"checkpoint", required_argument, NULL, 'k'},
      {"simd", required_argument, NULL, 'v'},    {NULL, 0, NULL, 0}};
  while ((opt = getopt_long(argc, argv, "i:b:c:s:t:u:d:k:v:", longopts, NULL)) != -1) {
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
      case 'u':
        users = atoll(optarg);
        break;
      case 'k':
        checkpoint = optarg;
        break;
      case 'v': {
        const char *levels[SR_SIMD_COUNT] = {"baseline", "avx2", "avx512"};
        int level = 0;
        while (level < SR_SIMD_COUNT && strcmp(optarg, levels[level]) != 0) level++;
        if (level < SR_SIMD_COUNT && sr_simd_select((sr_simd_level)level) == 0) break;
        fprintf(stderr, "bench_vae: --simd %s: unknown, or this CPU lacks it\n", optarg);
        return 2;
      }
      case 'd':
        cuda = strcmp(optarg, "cuda") == 0;
        if (cuda || strcmp(optarg, "cpu") == 0) break;
        /* fall through */
      default:
        fprintf(stderr,
                "usage: bench_vae [--items I] [--batch B] [--clicks C] [--steps S] [--threads T] [--users U] "
                "[--device cpu|cuda] [--checkpoint PATH] [--simd baseline|avx2|avx512]\n");
        return 2;
    }
  }
  sr_blas_set_threads(threads);
  sr_config cfg;
  sr_config_defaults(&cfg);
  cfg.train.batch_size = (int)batch;
  cfg.train.eval_batch_size = (int)batch;
  sr_dist self;
  sr_dist_self(&self);
  double peak = 0;
  if (cuda) {
    if (sr_device_resolve(SR_DEVICE_CUDA, &cuda) || sr_device_bind(&self)) {
      fprintf(stderr, "bench_vae: %s\n", sr_error_message());
      return 1;
    }
#ifdef SHARDREC_HAVE_CUDA
    peak = cublas_sgemm_peak_gflops(batch, 600, items, 6);
#endif
    printf("CUDA; items %lld, batch %lld, %d clicks/user\n", (long long)items, (long long)batch, clicks);
    printf("cuBLAS sgemm peak, fp32 (%lldx600 . 600x%lld): %.1f GFLOP/s\n", (long long)batch, (long long)items, peak);
  } else {
    printf("OpenBLAS core %s, %d thread(s); items %lld, batch %lld, %d clicks/user\n", sr_blas_core_name(),
           sr_blas_get_threads(), (long long)items, (long long)batch, clicks);
    peak = sgemm_peak_gflops(batch, 600, items, 5);
    printf("sgemm peak (%lldx600 . 600x%lld): %.1f GFLOP/s\n", (long long)batch, (long long)items, peak);
  }

  sr_model *m = NULL;
  sr_dataset corpus;
  sr_dataset_init(&corpus);
  corpus.n_items = items;
  if (cuda ? sr_device_model_create(&cfg, &corpus, NULL, &m) : sr_model_create(&cfg, &corpus, &m)) {
    fprintf(stderr, "bench_vae: %s\n", sr_error_message());
    return 1;
  }
  sr_optim o;
  sr_optim_init(&o, SR_OPTIM_ADAM);
  /* On the GPU, the trainer's device side does Adam (one rank: no collective). */
  sr_grad_reducer reducer;
  sr_grad_reducer_init(&reducer, &self, &m->params, 25 << 20, 0, 0);
  sr_device_trainer *dev = NULL;
  if (cuda && sr_device_trainer_create(&dev, &cfg, &self, m, &reducer)) {
    fprintf(stderr, "bench_vae: %s\n", sr_error_message());
    return 1;
  }
  int64_t *ids = sr_malloc((size_t)batch * sizeof *ids);
  double total = 0, cpu = 0, flops = 0, adam = 0;
  for (int s = 0; s <= steps; s++) { /* step 0 warms up (allocations, page faults) */
    sr_csr x;
    random_batch(&x, batch, items, clicks, (uint64_t)s);
    for (int64_t u = 0; u < batch; u++) ids[u] = s * batch + u;
    sr_batch b = {.rows = &x, .sample_ids = ids, .global_batch = batch, .step = (uint64_t)s};
    sr_step_stats st;
    double t0 = sr_now(), cpu0 = sr_cpu_seconds();
    int64_t bad = 0;
    if (dev) sr_device_trainer_begin(dev);
    m->ops->forward_backward(m, &b, &st); /* synchronises on the GPU (the loss comes back) */
    if (dev) {
      sr_device_trainer_reduce(dev);
      sr_device_trainer_update(dev, &o, &bad); /* synchronises */
    } else {
      const double t_adam = sr_now();
      sr_optim_step(&o, &m->params);
      if (s > 0) adam += sr_now() - t_adam;
    }
    double dt = sr_now() - t0, dcpu = sr_cpu_seconds() - cpu0;
    if (s > 0) total += dt, cpu += dcpu, flops += step_flops(batch, items, x.nnz);
    sr_csr_free(&x);
  }
  double achieved = flops / total / 1e9;
  printf(
      "Mult-VAE training: %.1f ms/step, %.0f users/s, %.1f s/epoch of %lld users, %.1f GFLOP/s = %.0f%% of sgemm "
      "peak\n",
      1e3 * total / steps, (double)batch * steps / total, (double)((users + batch - 1) / batch) * total / steps,
      (long long)users, achieved, 100.0 * achieved / peak);
  /* CPU time counts every thread and excludes other processes' slices: the
   * steady figure on a shared machine. FMA limit: 2 FLOP x 16 lanes x 2 FMA
   * units per cycle of an AVX-512 core (FMA_GFLOPS_PER_CORE at ~2.7 GHz). */
  const double cpu_gflops = flops / cpu / 1e9;
  printf(
      "CPU time: %.1f ms/step (wall %.1f ms/step), %.1f GFLOP/s per CPU-second = %.0f%% of the %.0f GFLOP/s FMA "
      "limit\n",
      1e3 * cpu / steps, 1e3 * total / steps, cpu_gflops, 100.0 * cpu_gflops / FMA_GFLOPS_PER_CORE,
      FMA_GFLOPS_PER_CORE);
  if (!cuda) {
    printf("of which Adam: %.1f ms/step (wall)\n", 1e3 * adam / steps);
    printf("parameter digest %016llx\n", (unsigned long long)dist_bench_param_digest(&m->params));
  }
  if (checkpoint && !cuda && write_checkpoint(checkpoint, m, &cfg, &o)) return 1;
  free(ids);
  sr_device_trainer_free(dev);
  sr_grad_reducer_free(&reducer);
  sr_model_destroy(m);
  return 0;
}

/*
 * bench_dist.c — data-parallel Mult-VAE training throughput and gradient
 * all-reduce cost. Run it with 1 and with N ranks and compare users/s:
 *
 *   mpirun -np 1 build/bench/bench_dist [--users U] [--items I] [--batch B] [--steps S] [--overlap]
 *                                        [--shard-optimizer] [--all-rows]
 *   mpirun -np 2 build/bench/bench_dist ...
 *
 * Trains through the real trainer (sr_train) on a synthetic dataset, one BLAS
 * thread per rank. With N > 1 ranks it then measures what gradient reduction
 * costs a step: each rank trains again on the same shard *alone* (a
 * single-process context: the same rows per step, no communication), and the
 * difference in step time is compared with a bare MPI_Allreduce of the same
 * bytes in the same run (goal: within 5 %). --all-rows exchanges the first
 * layer's whole gradient instead of the rows the batches touched
 * (dist.exchange_touched_rows: false).
 */
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "dist_bench.h"
#include "shardrec/config.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"
#include "shardrec/model.h"

static double bare_allreduce_seconds(const sr_dist *d, int64_t n, int reps) {
  float *buf = sr_aligned_calloc((size_t)n * sizeof(float));
  MPI_Barrier(d->comm);
  double t0 = sr_now();
  for (int r = 0; r < reps; r++) MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, d->comm);
  double t = (sr_now() - t0) / reps;
  free(buf);
  return t;
}

int main(int argc, char **argv) {
  sr_dist dist;
  dist_bench_start(&argc, &argv, &dist);
  sr_synth_opts so;
  sr_synth_opts_default(&so);
  so.n_users = 12000;
  so.n_items = 20108;
  so.mean_items_per_user = 73; /* ML-20M's average */
  so.with_item_features = 0;
  int batch = 500, steps = 12, overlap = 0, shard_optimizer = 0, all_rows = 0, opt;
  static const struct option longopts[] = {DIST_BENCH_SIZE_OPTIONS,
                                           {"overlap", no_argument, NULL, 'o'},
                                           {"shard-optimizer", no_argument, NULL, 'z'},
                                           {"all-rows", no_argument, NULL, 'a'},
                                           {NULL, 0, NULL, 0}};
  while ((opt = getopt_long(argc, argv, DIST_BENCH_SIZE_LETTERS "oza", longopts, NULL)) != -1) {
    if (dist_bench_size_option(opt, optarg, &so, &batch, &steps)) continue;
    if (opt == 'o') {
      overlap = 1;
    } else if (opt == 'z') {
      shard_optimizer = 1;
    } else if (opt == 'a') {
      all_rows = 1;
    } else {
      fprintf(stderr,
              "usage: bench_dist [--users U] [--items I] [--batch B] [--steps S] [--overlap] [--shard-optimizer] "
              "[--all-rows]\n");
      return 2;
    }
  }
  sr_dataset all, shard;
  dist_bench_data(&so, &dist, &all, &shard);

  sr_config cfg = dist_bench_config(batch, steps);
  cfg.dist.overlap = overlap;
  cfg.dist.shard_optimizer = shard_optimizer;
  cfg.dist.exchange_touched_rows = !all_rows;
  sr_train_result res, alone;
  if (sr_train(&cfg, &dist, &shard, NULL, NULL, &res)) sr_dist_abort(&dist, 1);
  sr_dist self;
  sr_dist_self(&self);
  if (dist.size > 1) {
    MPI_Barrier(dist.comm);
    if (sr_train(&cfg, &self, &shard, NULL, NULL, &alone)) sr_dist_abort(&dist, 1);
  }
  /* The same all-reduce the trainer performs, as one bare call, same run. */
  sr_model *probe = NULL;
  if (sr_model_create(&cfg, &all, &probe)) sr_dist_abort(&dist, 1);
  int64_t n_grads = probe->params.total;
  sr_model_destroy(probe);
  double bare = dist.size > 1 ? bare_allreduce_seconds(&dist, n_grads, 5) : 0.0;
  if (dist.rank == 0) {
    printf("%s: ", dist.size == 1    ? "one rank, no communication"
                   : shard_optimizer ? "sharded optimizer (reduce-scatter, Adam on 1/P, all-gather)"
                   : overlap         ? "all-reduce overlapped with backward"
                                     : "all-reduce after backward");
    dist_bench_print_rate(&dist, all.n_items, batch, &res);
    if (dist.size > 1) {
      double step = res.train_seconds / (double)res.steps, step_alone = alone.train_seconds / (double)alone.steps;
      double cost = step - step_alone, waited = res.allreduce_wait_seconds / (double)res.steps;
      printf("same shard without communication: %.1f ms/step\n", 1e3 * step_alone);
      printf("step time added by distribution: %.1f ms/step; in communication after backward: %.1f ms/step\n",
             1e3 * cost, 1e3 * waited);
      printf(
          "gradient communication (%.1f MB) vs a bare MPI_Allreduce of the same bytes (%.1f ms): "
          "overhead %+.1f%%\n",
          (double)n_grads * 4 / 1e6, 1e3 * bare, 100.0 * (waited / bare - 1.0));
      printf("gradient elements reduced: %.1f%% of the whole buckets' (%.1f MB per step)\n",
             100.0 * (double)res.reduced_elements / (double)res.dense_elements,
             (double)res.reduced_elements * 4 / 1e6 / (double)res.steps);
    }
  }
  sr_dataset_free(&shard);
  sr_dataset_free(&all);
  sr_dist_finalize();
  return 0;
}

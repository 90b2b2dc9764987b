/*
 * bench_item_parallel.c — item-parallel Mult-VAE (dist.item_parallel):
 * memory per rank, step time and the communication share of a step, against
 * the number of ranks and K (docs/scaling.md):
 *
 *   mpirun -np P build/bench/bench_item_parallel [--users U] [--items I] [--batch B] [--steps S]
 *                                                [--item-parallel K] [--hidden H]
 *
 * Trains through the real trainer (sr_train, which prints the memory plan
 * and refuses a run that does not fit) on a synthetic dataset, one BLAS
 * thread per rank, then prints per rank (worst rank): the peak resident
 * memory, the step time, and the time in gradient reduction (over the
 * replicas) and in the item groups' collectives (activation sums, softmax
 * statistics; the latter also counts the final evaluations of 100
 * validation and 100 test users, a few milliseconds).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "dist_bench.h"
#include "shardrec/error.h"
#include "shardrec/item_parallel.h"
#include "shardrec/log.h"
#include "shardrec/model.h"
#include "shardrec/shard.h"

int main(int argc, char **argv) {
  sr_dist dist;
  dist_bench_start(&argc, &argv, &dist);
  sr_log_set_level(SR_LOG_INFO); /* the trainer's memory plan */
  sr_synth_opts so;
  sr_synth_opts_default(&so);
  so.n_users = 10000;
  so.n_items = 100000;
  so.mean_items_per_user = 50;
  so.popularity_skew = 0; /* flat: nearly every item is seen in training, so the catalogue is --items */
  so.with_item_features = 0;
  int batch = 500, steps = 6, item_parallel = 1, hidden = 600, opt;
  static const struct option longopts[] = {DIST_BENCH_SIZE_OPTIONS,
                                           {"item-parallel", required_argument, NULL, 'k'},
                                           {"hidden", required_argument, NULL, 'H'},
                                           {NULL, 0, NULL, 0}};
  while ((opt = getopt_long(argc, argv, DIST_BENCH_SIZE_LETTERS "k:H:", longopts, NULL)) != -1) {
    if (dist_bench_size_option(opt, optarg, &so, &batch, &steps)) continue;
    if (opt == 'k') {
      item_parallel = atoi(optarg);
    } else if (opt == 'H') {
      hidden = atoi(optarg);
    } else {
      fprintf(stderr,
              "usage: bench_item_parallel [--users U] [--items I] [--batch B] [--steps S] [--item-parallel K] "
              "[--hidden H]\n");
      return 2;
    }
  }
  sr_config cfg = dist_bench_config(batch, steps);
  cfg.dist.item_parallel = item_parallel;
  cfg.model.hidden[0] = hidden;
  int part, parts;
  if (sr_item_grid_data_part(&dist, item_parallel, &part, &parts)) {
    sr_log_current_error();
    sr_dist_abort(&dist, 2);
  }
  /* The ranks of a group read the same part: this replica's. */
  sr_dataset all, shard;
  dist_bench_data(&so, &dist, &all, &shard);
  sr_dataset_free(&shard);
  sr_dataset_shard(&all, part, parts, &shard);
  sr_dataset_free(&all);

  sr_train_result res;
  sr_model *m = NULL;
  if (sr_train(&cfg, &dist, &shard, NULL, &m, &res)) {
    sr_log_current_error();
    sr_dist_finalize();
    return 1;
  }
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  /* Worst rank: peak RSS (KiB), gradient and group communication (us). */
  int64_t worst[3] = {usage.ru_maxrss, (int64_t)(1e6 * res.allreduce_seconds),
                      (int64_t)(1e6 * (m->items ? m->items->comm_seconds : 0.0))};
  if (sr_dist_max_i64(&dist, worst, 3)) sr_dist_abort(&dist, 1);
  if (dist.rank == 0) {
    const double step = res.train_seconds / (double)res.steps, grads = 1e-6 * worst[1] / (double)res.steps,
                 group = 1e-6 * worst[2] / (double)res.steps;
    printf("ranks %d = %d replica(s) x %d item shard(s), items %lld, hidden %d, global batch %d, %lld steps\n",
           dist.size, parts, dist.size / parts, (long long)shard.n_items, hidden, batch, (long long)res.steps);
    printf("step %.0f ms; communication %.0f ms/step (%.0f%%): gradient reduction %.0f ms, item groups %.0f ms\n",
           1e3 * step, 1e3 * (grads + group), 100.0 * (grads + group) / step, 1e3 * grads, 1e3 * group);
    printf("peak resident memory per rank (worst): %.2f GiB\n", (double)worst[0] / (1024.0 * 1024.0));
  }
  sr_model_destroy(m);
  sr_dataset_free(&shard);
  sr_dist_finalize();
  return 0;
}

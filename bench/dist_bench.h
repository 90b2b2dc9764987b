/*
 * dist_bench.h — what the data-parallel training benchmarks (bench_dist,
 * bench_two_tower) share: start-up, the synthetic dataset every rank builds
 * alike, and the throughput line, so runs with 1 and N ranks compare the same
 * way; and the parameter digest (bench_vae too).
 */
#ifndef SHARDREC_BENCH_DIST_BENCH_H
#define SHARDREC_BENCH_DIST_BENCH_H

#include <getopt.h>
#include <stdint.h>

#include "shardrec/config.h"
#include "shardrec/dataset.h"
#include "shardrec/dist.h"
#include "shardrec/synth.h"
#include "shardrec/train.h"

/* First thing in main(): OpenBLAS kernel selection (may re-execute the
 * program), MPI, one BLAS thread per rank (ranks must not oversubscribe
 * cores, and a 1-rank baseline must use what each of N ranks uses), warnings
 * only. Exits on failure. */
void dist_bench_start(int *argc, char ***argv, sr_dist *dist);
/* *all: the synthetic dataset of `so` (seeded: identical on every rank),
 * split for strong generalisation with only 100 validation and 100 test users
 * so that evaluation stays out of the measurement; *shard: this rank's part,
 * as sr_dataset_read_shard would read it. Ends the job on failure. */
void dist_bench_data(const sr_synth_opts *so, const sr_dist *dist, sr_dataset *all, sr_dataset *shard);
/* The size options every benchmark takes: --users, --items (into so),
 * --batch (the global batch) and --steps; getopt letters u, i, b, s. */
#define DIST_BENCH_SIZE_OPTIONS                                                     \
  {"users", required_argument, NULL, 'u'}, {"items", required_argument, NULL, 'i'}, \
      {"batch", required_argument, NULL, 'b'}, {                                    \
    "steps", required_argument, NULL, 's'                                           \
  }
#define DIST_BENCH_SIZE_LETTERS "u:i:b:s:"
/* Applies option `opt` (with its argument) if it is one of the size options:
 * returns 1, else 0. */
int dist_bench_size_option(int opt, const char *arg, sr_synth_opts *so, int *batch, int *steps);
/* Defaults, plus: a global batch of `batch`, `steps` optimizer steps (the
 * epoch count never stops the run first). */
sr_config dist_bench_config(int batch, int steps);
/* Rank 0 prints "ranks P, items I, global batch N, S steps: X <unit>/s (Y ms/step; CPU time of rank 0 Z ms/step)". */
void dist_bench_print_rate(const sr_dist *dist, int64_t n_items, int global_batch, const sr_train_result *res);

/* FNV-1a over the bytes of every parameter value: equal digests of two
 * builds' runs mean bit-identical training (a speed change must not alter
 * the results). */
uint64_t dist_bench_param_digest(const sr_params *ps);

#endif

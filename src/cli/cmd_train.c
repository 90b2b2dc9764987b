/* cmd_train.c — `shardrec train CONFIG [--set key=value]...`, on 1 or N ranks. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "shardrec/blas.h"
#include "shardrec/checkpoint.h"
#include "shardrec/config.h"
#include "shardrec/dataset.h"
#include "shardrec/dist.h"
#include "shardrec/error.h"
#include "shardrec/fsutil.h"
#include "shardrec/item_parallel.h"
#include "shardrec/log.h"
#include "shardrec/train.h"

static void train_usage(FILE *out) {
  fprintf(out,
          "usage: shardrec train CONFIG.yaml [--set section.key=value]... [--run-dir DIR] [--resume auto|CKPT]\n"
          "       mpirun -np N shardrec train CONFIG.yaml ...   (data-parallel on N ranks)\n"
          "\n"
          "Trains the model described by CONFIG (see docs/config.md). The run directory\n"
          "(default run.out_dir/run.name) receives config.yaml (the resolved config),\n"
          "metrics.jsonl, model.h5 (the best-validation model) and checkpoints/ (training\n"
          "checkpoints: see checkpoint.* in docs/config.md). --resume auto continues from the\n"
          "newest valid checkpoint of the run (same as --set checkpoint.resume=auto).\n");
}

int sr_cli_load_config(const char *path, char **overrides, int n_overrides, sr_config *cfg) {
  sr_config_defaults(cfg);
  SR_TRY(sr_config_load_file(cfg, path));
  for (int i = 0; i < n_overrides; i++) SR_TRY(sr_config_set(cfg, overrides[i]));
  SR_TRY(sr_config_validate(cfg));
  sr_log_set_level((sr_log_level)cfg->run.log_level);
  sr_log_set_all_ranks(cfg->run.log_all_ranks);
  return SR_OK;
}

/* BLAS threads per rank: the config's, else SLURM_CPUS_PER_TASK under Slurm,
 * else 1 per rank when distributed (ranks must not oversubscribe cores), else
 * every core for a single process. */
static int blas_threads(const sr_config *cfg, const sr_dist *dist) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1) cores = 1;
  if (cfg->run.threads > cores) { /* more threads than CPUs only slows down (and OpenBLAS has a limit) */
    sr_warn("run.threads: %d is more than the %ld CPUs here; using %ld", cfg->run.threads, cores, cores);
    return (int)cores;
  }
  if (cfg->run.threads > 0) return cfg->run.threads;
  const char *slurm = getenv("SLURM_CPUS_PER_TASK");
  if (slurm && atoi(slurm) > 0) return atoi(slurm);
  if (dist && dist->size > 1) return 1;
  return (int)cores;
}

void sr_cli_set_blas_threads(const sr_config *cfg, const sr_dist *dist) {
  sr_blas_set_threads(blas_threads(cfg, dist));
}

static void print_result(const sr_train_result *res, const char *model_path) {
  char test[512], pop[512], valid[512];
  sr_metrics_format(&res->best_valid, valid, sizeof valid);
  sr_metrics_format(&res->test, test, sizeof test);
  sr_metrics_format(&res->test_popularity, pop, sizeof pop);
  sr_info("selected epoch %d  valid %s", res->best_epoch, valid);
  sr_info("test %s  (%lld users)", test, (long long)res->test.n_users);
  sr_info("test popularity baseline %s", pop);
  sr_info("trained %lld steps in %.1fs (%.0f %s/s); model saved to %s", (long long)res->steps, res->train_seconds,
          res->samples_per_s, sr_sample_unit_name(res->sample_unit), model_path);
}

/* Writes the run directory and its config.yaml (rank 0). */
static int prepare_run_dir(const sr_config *cfg, const char *run_dir) {
  char path[SR_PATH_MAX + 200];
  snprintf(path, sizeof path, "%s/config.yaml", run_dir);
  char *yaml = sr_config_to_yaml(cfg);
  int rc = sr_mkdir_p(run_dir);
  if (rc == SR_OK) rc = sr_write_file_atomic(path, yaml, strlen(yaml));
  if (rc == SR_OK && sr_log_get_level() <= SR_LOG_INFO) fprintf(stderr, "%s", yaml);
  free(yaml);
  return rc;
}

/* After sr_dist_agree failed: the ranks that failed say why. */
static int agreed_failure(int local_rc) {
  if (local_rc) sr_log_current_error();
  return SR_CLI_AGREED_FAILURE;
}

static int train_main(const sr_dist *dist, const char *config_path, char **overrides, int n_overrides,
                      const char *run_dir_arg) {
  sr_config cfg;
  /* Every rank reads the same config: errors are identical, rank 0 reports. */
  if (sr_cli_load_config(config_path, overrides, n_overrides, &cfg)) {
    if (dist->rank == 0) sr_log_current_error();
    return SR_CLI_AGREED_FAILURE;
  }
  char run_dir[SR_PATH_MAX + 160], path[SR_PATH_MAX + 200];
  if (run_dir_arg)
    snprintf(run_dir, sizeof run_dir, "%s", run_dir_arg);
  else
    snprintf(run_dir, sizeof run_dir, "%s/%s", cfg.run.out_dir, cfg.run.name);
  int rc = dist->rank == 0 ? prepare_run_dir(&cfg, run_dir) : SR_OK;
  if (sr_dist_agree(dist, rc)) return agreed_failure(rc);

  sr_cli_set_blas_threads(&cfg, dist);
  sr_info("run directory %s; %d rank(s); BLAS core %s, %d thread(s) per rank", run_dir, dist->size,
          sr_blas_core_name(), sr_blas_get_threads());
  sr_dataset data;
  sr_dataset_init(&data);
  /* The ranks of an item-parallel group share their rows (item_parallel.h). */
  int part, parts;
  rc = sr_item_grid_data_part(dist, cfg.dist.item_parallel, &part, &parts);
  if (rc == SR_OK) rc = sr_dataset_read_shard(cfg.data.path, part, parts, &data);
  if (sr_dist_agree(dist, rc)) {
    sr_dataset_free(&data);
    return agreed_failure(rc);
  }
  sr_model *model = NULL;
  sr_train_result res;
  rc = sr_train(&cfg, dist, &data, run_dir, &model, &res);
  if (rc == SR_OK) {
    snprintf(path, sizeof path, "%s/model.h5", run_dir);
    rc = sr_checkpoint_write(path, model, &cfg); /* collective: rank 0 writes */
    if (rc == SR_OK && dist->rank == 0) print_result(&res, path);
  }
  sr_model_destroy(model);
  sr_dataset_free(&data);
  return rc ? sr_cmd_report_error() : 0;
}

int sr_cmd_train(int argc, char **argv) {
  static const struct option longopts[] = {{"set", required_argument, NULL, 's'},
                                           {"run-dir", required_argument, NULL, 'r'},
                                           {"resume", required_argument, NULL, 'R'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  char **overrides = calloc((size_t)argc + 1, sizeof *overrides);
  char resume[SR_PATH_MAX + 32];
  int n_overrides = 0, opt;
  const char *run_dir_arg = NULL;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "s:r:h", longopts, NULL)) != -1) {
    if (opt == 's') {
      overrides[n_overrides++] = optarg;
    } else if (opt == 'r') {
      run_dir_arg = optarg;
    } else if (opt == 'R') {
      snprintf(resume, sizeof resume, "checkpoint.resume=%s", optarg);
      overrides[n_overrides++] = resume;
    } else {
      free(overrides);
      train_usage(opt == 'h' ? stdout : stderr);
      return opt == 'h' ? 0 : 2;
    }
  }
  if (optind != argc - 1) {
    free(overrides);
    train_usage(stderr);
    return 2;
  }
  sr_dist dist;
  int status;
  if (sr_dist_init(NULL, NULL, &dist))
    status = sr_cmd_report_error();
  else
    status = train_main(&dist, argv[optind], overrides, n_overrides, run_dir_arg);
  free(overrides);
  return sr_cli_finish(&dist, status);
}

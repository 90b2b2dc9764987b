/* cmd_train.c — `shardrec train CONFIG [--set key=value]...`, on 1 or N ranks. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "commands.h"
#include "shardrec/blas.h"
#include "shardrec/checkpoint.h"
#include "shardrec/checkpoint_dir.h"
#include "shardrec/config.h"
#include "shardrec/dataset.h"
#include "shardrec/dist.h"
#include "shardrec/error.h"
#include "shardrec/evaluate.h"
#include "shardrec/fsutil.h"
#include "shardrec/item_parallel.h"
#include "shardrec/log.h"
#include "shardrec/train.h"

static void train_usage(FILE *out) {
  fprintf(out,
          "usage: shardrec train CONFIG.yaml [--set section.key=value]... [--run-dir DIR] [--resume auto|CKPT]\n"
          "                      [--overwrite]\n"
          "       mpirun -np N shardrec train CONFIG.yaml ...   (data-parallel on N ranks)\n"
          "\n"
          "Trains the model described by CONFIG (see docs/config.md). The run directory\n"
          "(default run.out_dir/run.name) receives config.yaml (the resolved config),\n"
          "metrics.jsonl, model.h5 (the best-validation model) and checkpoints/ (training\n"
          "checkpoints: see checkpoint.* in docs/config.md). --resume auto continues from the\n"
          "newest valid checkpoint of the run (same as --set checkpoint.resume=auto). A run\n"
          "directory holds one run: a fresh run where another left checkpoints, metrics or a\n"
          "model is refused; --overwrite deletes them and starts over. Two trainings never\n"
          "share a run directory (it is locked while training).\n");
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

/* The results, on stdout (progress went to stderr): `> result.txt` keeps them. */
static void print_result(const sr_train_result *res, const char *model_path) {
  char test[512], pop[512], valid[512];
  sr_metrics_format(&res->best_valid, valid, sizeof valid);
  sr_metrics_format(&res->test, test, sizeof test);
  sr_metrics_format(&res->test_popularity, pop, sizeof pop);
  if (res->best_valid.n_users > 0)
    printf("selected epoch %d (step %lld)  valid %s\n", res->best_epoch, (long long)res->best_step, valid);
  else
    printf("kept the last epoch, %d (step %lld; the dataset has no validation split)\n", res->best_epoch,
           (long long)res->best_step);
  printf("test %s  (%lld users)\n", test, (long long)res->test.n_users);
  sr_metrics_log_slices(stdout, "test", &res->test);
  printf("test popularity baseline %s\n", pop);
  sr_metrics_log_slices(stdout, "test popularity baseline", &res->test_popularity);
  if (strcmp(res->stop_reason, "fitted") == 0) /* a closed-form model (EASE) takes no steps */
    printf("fitted in %.1fs; model saved to %s\n", res->train_seconds, model_path);
  else
    printf("trained %lld steps in %.1fs (%.0f %s/s); model saved to %s\n", (long long)res->steps, res->train_seconds,
           res->samples_per_s, sr_sample_unit_name(res->sample_unit), model_path);
  fflush(stdout);
}

/* Takes the run directory's lock (rank 0; released when the process ends):
 * two trainings never write one directory. The file holds the owner's pid. */
static int lock_run_dir(const char *run_dir) {
  char path[SR_PATH_MAX + 200];
  snprintf(path, sizeof path, "%s/.lock", run_dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return SR_FAIL(SR_EIO, "cannot open %s: %s", path, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char owner[32] = "";
    ssize_t n = read(fd, owner, sizeof owner - 1);
    owner[n > 0 ? n : 0] = '\0';
    owner[strcspn(owner, "\n")] = '\0';
    close(fd);
    return SR_FAIL(SR_EINVAL,
                   "run directory %s is in use by another training (pid %s); wait for it or choose another "
                   "run.name",
                   run_dir, owner[0] ? owner : "unknown");
  }
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || write(fd, pid, (size_t)len) != len) {
    close(fd);
    return SR_FAIL(SR_EIO, "cannot write %s: %s", path, strerror(errno));
  }
  return SR_OK; /* fd stays open: the lock lives as long as this process */
}

/* A run directory holds one run (rank 0): a fresh run (no checkpoint.resume,
 * or --resume auto before any checkpoint) where an earlier run left
 * checkpoints, metrics or a model is refused, or with --overwrite starts
 * over, deleting them. */
static int claim_run_dir(const sr_config *cfg, const char *run_dir, int overwrite) {
  SR_TRY(sr_mkdir_p(run_dir));
  SR_TRY(lock_run_dir(run_dir));
  char ckpt_dir[SR_PATH_MAX + 200], metrics[SR_PATH_MAX + 200], model[SR_PATH_MAX + 200];
  if (cfg->checkpoint.dir[0])
    snprintf(ckpt_dir, sizeof ckpt_dir, "%s", cfg->checkpoint.dir);
  else
    snprintf(ckpt_dir, sizeof ckpt_dir, "%s/checkpoints", run_dir);
  snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", run_dir);
  snprintf(model, sizeof model, "%s/model.h5", run_dir);
  const int checkpoints = sr_ckptdir_has_checkpoints(ckpt_dir), automatic = !strcmp(cfg->checkpoint.resume, "auto");
  if (cfg->checkpoint.resume[0] && (checkpoints || !automatic)) return SR_OK; /* resuming */
  /* A fresh start. With --resume auto (no checkpoint yet: a job's first
   * start, or a restart of one stopped before its first checkpoint) the
   * metrics.jsonl of such an attempt is continued, a finished run's model.h5
   * is not replaced. */
  const int used = checkpoints || access(model, F_OK) == 0 || (!automatic && access(metrics, F_OK) == 0);
  if (!used) return SR_OK;
  if (!overwrite && automatic)
    return SR_FAIL(SR_EINVAL,
                   "--resume auto: run directory %s holds a model.h5 but no checkpoint to resume: start it over with "
                   "--overwrite, or choose another run.name",
                   run_dir);
  if (!overwrite)
    return SR_FAIL(SR_EINVAL,
                   "run directory %s already holds a run (checkpoints, metrics.jsonl or model.h5): continue it with "
                   "--resume auto, start it over with --overwrite, or choose another run.name",
                   run_dir);
  sr_warn("--overwrite: deleting the earlier run's checkpoints, metrics.jsonl and model.h5 in %s", run_dir);
  SR_TRY(sr_ckptdir_clear(ckpt_dir));
  const char *files[2] = {metrics, model};
  for (int i = 0; i < 2; i++)
    if (unlink(files[i]) != 0 && errno != ENOENT)
      return SR_FAIL(SR_EIO, "cannot remove %s: %s", files[i], strerror(errno));
  return SR_OK;
}

/* The resolved config, once the run has started (rank 0): a failed start
 * leaves the run's config.yaml as it was. The log shows the keys that differ
 * from the defaults; the file has them all. */
static int write_run_config(const sr_config *cfg, const char *run_dir) {
  char path[SR_PATH_MAX + 200];
  snprintf(path, sizeof path, "%s/config.yaml", run_dir);
  char *yaml = sr_config_to_yaml(cfg);
  int rc = sr_write_file_atomic(path, yaml, strlen(yaml));
  free(yaml);
  if (rc != SR_OK) return rc;
  sr_config defaults;
  sr_config_defaults(&defaults);
  char *changes = sr_config_changes(cfg, &defaults, ", ", NULL);
  sr_info("config (non-default keys; all in %s): %s", path, changes);
  free(changes);
  return SR_OK;
}

/* After sr_dist_agree failed: rank 0 holds every failed rank's message. */
static int agreed_failure(const sr_dist *dist) {
  if (dist->rank == 0) sr_log_current_error();
  return SR_CLI_AGREED_FAILURE;
}

static int train_main(const sr_dist *dist, const char *config_path, char **overrides, int n_overrides,
                      const char *run_dir_arg, int overwrite) {
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
  int rc = dist->rank == 0 ? claim_run_dir(&cfg, run_dir, overwrite) : SR_OK;
  if (sr_dist_agree(dist, rc)) return agreed_failure(dist);

  sr_cli_set_blas_threads(&cfg, dist);
  sr_info("run directory %s; %d rank(s); BLAS core %s, %d thread(s) per rank", run_dir, dist->size,
          sr_blas_core_name(), sr_blas_get_threads());
  sr_dataset data;
  sr_dataset_init(&data);
  /* The ranks of an item-parallel group share their rows (item_parallel.h). */
  int part, parts;
  rc = sr_item_grid_data_part(dist, cfg.dist.item_parallel, &part, &parts);
  if (rc == SR_OK) rc = sr_dataset_read_shard(cfg.data.path, part, parts, &data);
  if (rc == SR_OK && dist->rank == 0) rc = write_run_config(&cfg, run_dir);
  if (sr_dist_agree(dist, rc)) {
    sr_dataset_free(&data);
    return agreed_failure(dist);
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
  if (rc == SR_ESTOPPED) { /* every rank stopped at the same step: not a failure */
    if (dist->rank == 0) sr_warn("%s", sr_error_message());
    return SR_CLI_STOPPED;
  }
  if (rc && sr_error_agreed()) return agreed_failure(dist); /* every rank knows: no abort */
  return rc ? sr_cmd_report_error() : 0;
}

int sr_cmd_train(int argc, char **argv) {
  static const struct option longopts[] = {
      {"set", required_argument, NULL, 's'},    {"run-dir", required_argument, NULL, 'r'},
      {"resume", required_argument, NULL, 'R'}, {"overwrite", no_argument, NULL, 'O'},
      {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
  char **overrides = calloc((size_t)argc + 1, sizeof *overrides);
  char resume[SR_PATH_MAX + 32];
  int n_overrides = 0, opt, overwrite = 0;
  const char *run_dir_arg = NULL;
  optind = 1;
  while ((opt = sr_cli_getopt("train", argc, argv, "s:r:h", longopts, NULL)) != -1) {
    if (opt == 's') {
      overrides[n_overrides++] = optarg;
    } else if (opt == 'r') {
      run_dir_arg = optarg;
    } else if (opt == 'R') {
      snprintf(resume, sizeof resume, "checkpoint.resume=%s", optarg);
      overrides[n_overrides++] = resume;
    } else if (opt == 'O') {
      overwrite = 1;
    } else {
      free(overrides);
      if (opt == 'h') train_usage(stdout);
      return opt == 'h' ? 0 : SR_CLI_EXIT_USAGE;
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
    status = train_main(&dist, argv[optind], overrides, n_overrides, run_dir_arg, overwrite);
  free(overrides);
  return sr_cli_finish(&dist, status);
}

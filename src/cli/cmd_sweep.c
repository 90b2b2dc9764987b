/* cmd_sweep.c — `shardrec sweep CONFIG --grid key=v1,v2 ... --seeds 1,2,3`:
 * one training run per combination of the grid's values and seeds, run one
 * after the other as child processes (`shardrec train`, through a launcher
 * such as mpirun when given), into named runs under run.out_dir/NAME; ends
 * with the `runs` table of those runs. --index runs one combination: what a
 * Slurm array task does (cluster/sweep.sbatch). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.h"
#include "shardrec/checkpoint_dir.h"
#include "shardrec/error.h"
#include "shardrec/fsutil.h"
#include "shardrec/log.h"
#include "shardrec/mem.h"

#define MAX_GRID 16
#define MAX_VALUES 64

typedef struct {
  char key[128];
  char *values[MAX_VALUES]; /* point into the option's copy */
  int n;
} grid_axis;

typedef struct {
  const char *config;
  char **sets; /* --set, passed to every run */
  int n_sets;
  grid_axis axes[MAX_GRID + 1]; /* the grid, then run.seed (varying fastest) */
  int n_axes;
  char name[256]; /* the sweep's directory under run.out_dir */
  char out_dir[SR_PATH_MAX];
  char **launcher; /* words before the binary ("mpirun -np 2"), NULL-terminated; may be empty */
} sweep;

/* Splits "key=v1,v2,..." into an axis; commas inside [...] belong to a list value. */
static int parse_axis(char *spec, grid_axis *a) {
  char *eq = strchr(spec, '=');
  if (!eq || eq == spec || !eq[1])
    return sr_cli_usage_error("sweep", "--grid %s: expected key=value1,value2,...", spec);
  snprintf(a->key, sizeof a->key, "%.*s", (int)(eq - spec), spec);
  a->n = 0;
  int depth = 0;
  char *value = eq + 1;
  for (char *c = value;; c++) {
    depth += *c == '[' ? 1 : *c == ']' ? -1 : 0;
    if (*c && (*c != ',' || depth > 0)) continue;
    const int end = *c == '\0';
    *c = '\0';
    if (!*value || a->n == MAX_VALUES)
      return sr_cli_usage_error("sweep", "--grid %s: an empty value, or more than %d values", a->key, MAX_VALUES);
    a->values[a->n++] = value;
    if (end) break;
    value = c + 1;
  }
  return 0;
}

static int64_t n_combinations(const sweep *s) {
  int64_t n = 1;
  for (int i = 0; i < s->n_axes; i++) n *= s->axes[i].n;
  return n;
}

/* Combination `index`: the value of each axis (the last axis varies fastest). */
static void combination(const sweep *s, int64_t index, int which[MAX_GRID + 1]) {
  for (int i = s->n_axes - 1; i >= 0; i--) {
    which[i] = (int)(index % s->axes[i].n);
    index /= s->axes[i].n;
  }
}

/* "lr=0.001_hidden=200-600_seed=1": each key's last component and its value,
 * with characters that do not belong in a directory name left out. */
static void run_name(const sweep *s, const int *which, char *buf, size_t n) {
  size_t used = 0;
  for (int i = 0; i < s->n_axes && used < n; i++) {
    const char *key = strrchr(s->axes[i].key, '.');
    used += (size_t)snprintf(buf + used, n - used, "%s%s=", i ? "_" : "", key ? key + 1 : s->axes[i].key);
    for (const char *c = s->axes[i].values[which[i]]; *c && used + 1 < n; c++) {
      if (strchr("[] \"'", *c)) continue;
      buf[used++] = *c == ',' || *c == '/' ? '-' : *c;
    }
    buf[used < n ? used : n - 1] = '\0';
  }
}

/* The command training combination `index`: the launcher, this binary,
 * `train CONFIG`, the sweep's --set options, one --set per axis, and how to
 * treat an earlier attempt: continue it (--resume auto) when it left
 * checkpoints, else start over (--overwrite). */
static char **train_command(const sweep *s, const char *self, int64_t index, const char *dir, char **name_out) {
  int which[MAX_GRID + 1];
  combination(s, index, which);
  char name[1024];
  run_name(s, which, name, sizeof name);
  int n_launcher = 0;
  while (s->launcher && s->launcher[n_launcher]) n_launcher++;
  char **argv = sr_calloc((size_t)(n_launcher + 6 + 2 * (s->n_sets + s->n_axes + 1)), sizeof *argv);
  int k = 0;
  for (int i = 0; i < n_launcher; i++) argv[k++] = strdup(s->launcher[i]);
  argv[k++] = strdup(self);
  argv[k++] = strdup("train");
  argv[k++] = strdup(s->config);
  for (int i = 0; i < s->n_sets; i++) {
    argv[k++] = strdup("--set");
    argv[k++] = strdup(s->sets[i]);
  }
  for (int i = 0; i < s->n_axes; i++) {
    char set[1024];
    snprintf(set, sizeof set, "%s=%s", s->axes[i].key, s->axes[i].values[which[i]]);
    argv[k++] = strdup("--set");
    argv[k++] = strdup(set);
  }
  char set[1400];
  snprintf(set, sizeof set, "run.name=%s/%s", s->name, name);
  argv[k++] = strdup("--set");
  argv[k++] = strdup(set);
  char ckpt[SR_PATH_MAX * 4];
  snprintf(ckpt, sizeof ckpt, "%s/checkpoints", dir);
  argv[k++] = strdup(sr_ckptdir_has_checkpoints(ckpt) ? "--resume=auto" : "--overwrite");
  *name_out = strdup(name);
  return argv;
}

static void free_argv(char **argv) {
  for (int i = 0; argv[i]; i++) free(argv[i]);
  free(argv);
}

/* Runs argv as a child and returns its exit status (128 + signal when killed).
 * The sweep itself ignores the stop signals while it waits: a Ctrl-C or a
 * scancel reaches the training, which checkpoints and exits 75, and the sweep
 * then stops too. */
static int run_child(char **argv) {
  static const int stop_signals[3] = {SIGINT, SIGTERM, SIGUSR1};
  struct sigaction ignore = {.sa_handler = SIG_IGN}, old[3];
  sigemptyset(&ignore.sa_mask);
  for (int i = 0; i < 3; i++) sigaction(stop_signals[i], &ignore, &old[i]);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    for (int i = 0; i < 3; i++) signal(stop_signals[i], SIG_DFL); /* ignored dispositions survive exec */
    execvp(argv[0], argv);
    fprintf(stderr, "shardrec sweep: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  int status = 0;
  if (pid > 0)
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  for (int i = 0; i < 3; i++) sigaction(stop_signals[i], &old[i], NULL);
  if (pid < 0) return 127;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs combinations [first, last); 0, 1 (some failed) or 75 (stopped). */
static int run_combinations(const sweep *s, int64_t first, int64_t last, int dry_run) {
  char self[SR_PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) {
    SR_FAIL(SR_EIO, "cannot find this program's path (/proc/self/exe): %s", strerror(errno));
    return sr_cmd_report_error();
  }
  self[len] = '\0';
  const int64_t total = n_combinations(s);
  int failed = 0;
  for (int64_t i = first; i < last; i++) {
    int which[MAX_GRID + 1];
    combination(s, i, which);
    char name[1024], dir[SR_PATH_MAX * 3];
    run_name(s, which, name, sizeof name);
    snprintf(dir, sizeof dir, "%s/%s/%s", s->out_dir, s->name, name);
    char *run;
    char **argv = train_command(s, self, i, dir, &run);
    if (dry_run) {
      for (int k = 0; argv[k]; k++) printf("%s%s", k ? " " : "", argv[k]);
      printf("\n");
    } else if (sr_cli_run_finished(dir)) {
      sr_info("sweep [%lld/%lld] %s: finished earlier, skipped", (long long)i + 1, (long long)total, run);
    } else {
      sr_info("sweep [%lld/%lld] %s", (long long)i + 1, (long long)total, run);
      const int status = run_child(argv);
      if (status == SR_CLI_STOPPED) {
        sr_warn("sweep stopped with %s (run the same sweep command again to continue)", run);
        free(run);
        free_argv(argv);
        return SR_CLI_STOPPED;
      }
      if (status != 0) {
        sr_warn("sweep [%lld/%lld] %s failed (exit %d); going on", (long long)i + 1, (long long)total, run, status);
        failed++;
      }
    }
    free(run);
    free_argv(argv);
  }
  if (failed) sr_warn("sweep: %d of %lld run(s) failed", failed, (long long)(last - first));
  return failed ? 1 : 0;
}

static void sweep_usage(FILE *out) {
  fprintf(out,
          "usage: shardrec sweep CONFIG.yaml --grid key=v1,v2,... [--grid key=...]... [--seeds 1,2,3]\n"
          "                      [--name NAME] [--set key=value]... [--launcher 'mpirun -np 2']\n"
          "                      [--format table|csv|md|json] [--count | --dry-run | --index I]\n"
          "\n"
          "Trains CONFIG once per combination of the --grid values and --seeds (run.seed;\n"
          "default: the config's), one run after the other, each in its own run directory\n"
          "run.out_dir/NAME/<key=value_..._seed=S> (NAME: the config file's name), then\n"
          "prints the `shardrec runs` table of the sweep (seeds of one combination as\n"
          "mean +- sd). A value that is a list keeps its commas inside brackets:\n"
          "--grid model.hidden=[200],[600,200]. Running the same sweep again skips\n"
          "finished runs and continues interrupted ones (--resume auto). A run that fails\n"
          "is reported and the sweep goes on (exit 1 at the end); a training stopped by a\n"
          "signal (exit 75) stops the sweep with 75.\n"
          "  --launcher CMD  run each training as CMD shardrec train ... (e.g. 'mpirun -np 4')\n"
          "  --count         print the number of combinations and exit\n"
          "  --dry-run       print each training command and exit\n"
          "  --index I       run combination I only (0-based; a Slurm array task:\n"
          "                  cluster/sweep.sbatch), without the table\n");
}

int sr_cmd_sweep(int argc, char **argv) {
  static const struct option longopts[] = {{"grid", required_argument, NULL, 'g'},
                                           {"seeds", required_argument, NULL, 'S'},
                                           {"name", required_argument, NULL, 'n'},
                                           {"set", required_argument, NULL, 's'},
                                           {"launcher", required_argument, NULL, 'l'},
                                           {"format", required_argument, NULL, 'f'},
                                           {"count", no_argument, NULL, 'c'},
                                           {"dry-run", no_argument, NULL, 'd'},
                                           {"index", required_argument, NULL, 'i'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  sweep s = {0};
  s.sets = sr_calloc((size_t)argc + 1, sizeof *s.sets);
  char *copies[MAX_GRID + 2] = {0}, *launcher = NULL;
  int n_copies = 0, count = 0, dry_run = 0, status = 0;
  long long index = -1;
  const char *seeds = NULL;
  const char *format = "table", *name = NULL;
  optind = 1;
  for (int opt; status == 0 && (opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1;) {
    if (opt == 'g' && s.n_axes == MAX_GRID) {
      status = sr_cli_usage_error("sweep", "at most %d --grid options", MAX_GRID);
    } else if (opt == 'g') {
      status = parse_axis(copies[n_copies++] = strdup(optarg), &s.axes[s.n_axes++]);
    } else if (opt == 'S') {
      seeds = optarg;
    } else if (opt == 'n') {
      name = optarg;
    } else if (opt == 's') {
      s.sets[s.n_sets++] = optarg;
    } else if (opt == 'l') {
      launcher = optarg;
    } else if (opt == 'f') {
      format = optarg;
    } else if (opt == 'c') {
      count = 1;
    } else if (opt == 'd') {
      dry_run = 1;
    } else if (opt == 'i') {
      status = sr_cli_parse_int("sweep", "--index", optarg, 0, INT64_MAX, &index);
    } else {
      sweep_usage(opt == 'h' ? stdout : stderr);
      status = opt == 'h' ? -1 : SR_CLI_EXIT_USAGE;
    }
  }
  if (status == 0 && seeds) { /* the last axis */
    char *spec = copies[n_copies++] = malloc(strlen(seeds) + 16);
    sprintf(spec, "run.seed=%s", seeds);
    status = parse_axis(spec, &s.axes[s.n_axes++]);
  }
  if (status == 0 && (optind != argc - 1 || s.n_axes == 0)) {
    sweep_usage(stderr);
    status = SR_CLI_EXIT_USAGE;
  }
  /* Every combination's config must load: errors before the first run. */
  sr_config cfg;
  if (status == 0) {
    s.config = argv[optind];
    const char *base = strrchr(s.config, '/');
    base = base ? base + 1 : s.config;
    snprintf(s.name, sizeof s.name, "%.*s", name ? (int)strlen(name) : (int)strcspn(base, "."), name ? name : base);
    char **sets = sr_calloc((size_t)(s.n_sets + s.n_axes) + 1, sizeof *sets);
    char assignments[MAX_GRID + 1][1024];
    memcpy(sets, s.sets, (size_t)s.n_sets * sizeof *sets);
    for (int a = 0; a < s.n_axes && status == 0; a++)
      for (int v = 0; v < s.axes[a].n && status == 0; v++) {
        for (int b = 0; b < s.n_axes; b++) {
          snprintf(assignments[b], sizeof assignments[b], "%s=%s", s.axes[b].key, s.axes[b].values[b == a ? v : 0]);
          sets[s.n_sets + b] = assignments[b];
        }
        if (sr_cli_load_config(s.config, sets, s.n_sets + s.n_axes, &cfg) != SR_OK) {
          sr_log_current_error();
          status = 1;
        }
      }
    free(sets);
    snprintf(s.out_dir, sizeof s.out_dir, "%s", cfg.run.out_dir);
    sr_log_set_level(SR_LOG_INFO); /* run.log_level is the trainings' own: the sweep reports each run */
  }
  /* The launcher's words. */
  char *launcher_copy = launcher ? strdup(launcher) : NULL;
  s.launcher = sr_calloc(launcher ? strlen(launcher) / 2 + 2 : 1, sizeof *s.launcher);
  int n_words = 0;
  for (char *w = launcher_copy ? strtok(launcher_copy, " ") : NULL; w; w = strtok(NULL, " "))
    s.launcher[n_words++] = w;
  const int64_t total = status == 0 ? n_combinations(&s) : 0;
  if (status == 0 && index >= total)
    status = sr_cli_usage_error("sweep", "--index %lld: the sweep has %lld combinations (0 to %lld)", index,
                                (long long)total, (long long)total - 1);
  if (status == 0 && count) {
    printf("%lld\n", (long long)total);
  } else if (status == 0) {
    status = index >= 0 ? run_combinations(&s, index, index + 1, dry_run) : run_combinations(&s, 0, total, dry_run);
    if (index < 0 && !dry_run && status != SR_CLI_STOPPED) {
      char dir[SR_PATH_MAX + 300];
      snprintf(dir, sizeof dir, "%s/%s", s.out_dir, s.name);
      const int table = sr_cli_print_runs(dir, format);
      if (status == 0) status = table;
    }
  }
  for (int i = 0; i < n_copies; i++) free(copies[i]);
  free(launcher_copy);
  free(s.launcher);
  free(s.sets);
  return status < 0 ? 0 : status;
}

# jobs.sh — sourced by the Slurm test scripts (run through cluster.sh) with
# bin (shardrec) and src (the source tree) set: the scratch directory, the
# failure count, the training data, and submitting cluster/shardrec.sbatch
# and waiting for its jobs.
[[ -n "${SLURM_CONF:-}" && -d "${SHARDREC_SLURM_DIR:-}" ]] || { echo "run me through tests/slurm/cluster.sh" >&2; exit 2; }
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# Makes $SHARDREC_SLURM_DIR/$1 the working directory, $work.
enter_work_dir() {
  work=$SHARDREC_SLURM_DIR/$1
  mkdir -p "$work"
  cd "$work"
}

# data.h5 (600 users, 60 held out for validation and 60 for test, 200 items)
# and train.yaml: a small Mult-VAE on it, with `run: {...}` given by $1.
write_training_setup() {
  "$bin" data synth -o data.h5 --users 600 --items 200 --heldout 60 >/dev/null
  cat >train.yaml <<YAML
run: {$1}
data: {path: $work/data.h5}
model: {hidden: [32], latent_dim: 8}
YAML
}

# submit_job OPTIONS... -- ARGS...: submits the template with sbatch's
# OPTIONS and the template's ARGS, output in $work/job-<id>.out; sets job_id.
submit_job() {
  local options=()
  while [[ $1 != -- ]]; do options+=("$1"); shift; done
  shift
  job_id=$(sbatch --parsable --output="$work/job-%j.out" "${options[@]}" "$src/cluster/shardrec.sbatch" "$@")
}

# wait_job ID SECONDS: waits (at most SECONDS) for job ID to leave the queue;
# sets job_info (scontrol's line), job_state, job_exit and job_out.
wait_job() {
  for _ in $(seq $(($2 * 10))); do [[ -z "$(squeue -h -j "$1" -o %i 2>/dev/null)" ]] && break; sleep 0.1; done
  job_info=$(scontrol -o show job "$1")
  job_state=$(grep -o 'JobState=[A-Z_]*' <<<"$job_info" | cut -d= -f2)
  job_exit=$(grep -o ' ExitCode=[0-9:]*' <<<"$job_info" | cut -d= -f2)
  job_out=$(cat "$work/job-$1.out" 2>/dev/null || true)
}

#!/usr/bin/env bash
# test_sbatch.sh SHARDREC SOURCE_DIR — the README's Slurm claims, on the real
# cluster that tests/slurm/cluster.sh starts (run this script through it):
#   1. cluster/shardrec.sbatch trains 2 ranks to completion with srun --mpi=pmix;
#   2. the same with SHARDREC_LAUNCHER=mpirun;
#   3. a rank given --cpus-per-task=2 may run on 2 CPUs and uses 2 BLAS
#      threads, with either launcher (mpirun alone would bind it to one core);
#   4. tasks that srun starts without an MPI plugin stop at once with our advice;
#   5. the two-tower model trains its (user, item) pairs on 2 srun ranks, with
#      cross-device negatives and sparse embedding exchange over PMIx-launched MPI;
#   6. cluster/sweep.sbatch trains a sweep as a job array, one task per combination.
set -euo pipefail
bin=$1 src=$2
source "$(dirname "$0")/jobs.sh"
enter_work_dir work

write_training_setup "name: default, out_dir: $work/runs, log_every_s: 1"
echo "train: {epochs: 2, batch_size: 100}" >>train.yaml

# Submits the template with sbatch OPTIONS... -- ARGS... and waits for the job
# to leave the queue (jobs.sh).
run_job() {
  local started=$EPOCHREALTIME
  submit_job "$@"
  wait_job "$job_id"
  echo "job $job_id ($*): $job_state, exit $job_exit, $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $started }")s"
}

# Expects the last job to have trained `ranks` ranks of `threads` BLAS threads
# into runs/NAME and to report its test metrics.
expect_trained() {
  local name=$1 ranks=$2 threads=$3
  if [[ $job_state != COMPLETED || $job_exit != 0:0 ]]; then
    fail "$name: job $job_id ended $job_state with exit code $job_exit"; echo "$job_out"; return
  fi
  grep -q "; $ranks rank(s); .*, $threads thread(s) per rank" <<<"$job_out" ||
    fail "$name: no '$ranks rank(s) ... $threads thread(s) per rank' line in the job output"
  grep -q "test recall@20 " <<<"$job_out" || fail "$name: no test metrics in the job output"
  [[ -s "runs/$name/model.h5" ]] || fail "$name: no runs/$name/model.h5"
}

# 1 and 2: two ranks with each launcher.
for launcher in srun mpirun; do
  SHARDREC_BIN=$bin SHARDREC_LAUNCHER=$launcher run_job --ntasks=2 -- train.yaml --set "run.name=$launcher"
  expect_trained "$launcher" 2 1
done

# 3: the CPUs each rank may run on, printed by a wrapper around the binary
# (nproc alone would count OMP_NUM_THREADS, which the job may export).
cat >affinity-shardrec <<EOF
#!/bin/sh
echo "rank \$\$ may run on \$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) CPU(s)"
exec "$bin" "\$@"
EOF
chmod +x affinity-shardrec
for launcher in srun mpirun; do
  SHARDREC_BIN=$work/affinity-shardrec SHARDREC_LAUNCHER=$launcher \
    run_job --ntasks=1 --cpus-per-task=2 -- train.yaml --set "run.name=$launcher-2cpus"
  expect_trained "$launcher-2cpus" 1 2
  grep -q "may run on 2 CPU(s)" <<<"$job_out" ||
    fail "$launcher-2cpus: the rank is not allowed on its 2 CPUs: $(grep 'may run on' <<<"$job_out")"
done

# 4: srun without an MPI plugin (the cluster's MpiDefault is none); under Open
# MPI even one task cannot start.
for tasks in 2 1; do
  status=0
  out=$(timeout 60 srun --ntasks=$tasks --mpi=none "$bin" train train.yaml --set run.name=no-pmi 2>&1) || status=$?
  echo "srun --ntasks=$tasks --mpi=none: exit $status"
  [[ $status -ne 0 ]] || fail "srun --ntasks=$tasks --mpi=none: exit status 0"
  grep -q 'without an MPI plugin.*srun --mpi=pmix' <<<"$out" || { fail "srun --ntasks=$tasks --mpi=none: not our advice"; echo "$out"; }
  [[ ! -e runs/no-pmi ]] || fail "srun --ntasks=$tasks --mpi=none: a run directory was created"
done

# 5: the two-tower model on 2 ranks (the synthetic data carries item features).
SHARDREC_BIN=$bin SHARDREC_LAUNCHER=srun run_job --ntasks=2 -- train.yaml --set run.name=twotower \
  --set model.type=twotower --set loss.logq_scaled=false --set dist.cross_device_negatives=true
expect_trained twotower 2 1
grep -q "model twotower: .* training pairs" <<<"$job_out" || fail "twotower: no 'model twotower ... training pairs' line"

# 6: a sweep as a job array (cluster/sweep.sbatch): one task per combination;
# `shardrec runs` then finds both runs finished.
sweep=(train.yaml --grid train.lr=1e-3,2e-3 --name sweep)
n=$("$bin" sweep "${sweep[@]}" --count)
array_id=$(SHARDREC_BIN=$bin sbatch --parsable --array=0-$((n - 1)) --ntasks=1 --output="$work/sweep-%A_%a.out" \
  "$src/cluster/sweep.sbatch" "${sweep[@]}")
until_dequeued "$array_id"
table=$("$bin" runs runs/sweep --format csv 2>&1) || true
echo "sweep array $array_id ($n tasks):"
echo "$table"
for lr in 1e-3:0.001 2e-3:0.002; do
  grep -q "^lr=${lr%:*},multvae,train.lr=${lr#*:},98765,1,0," <<<"$table" ||
    { fail "sweep array: run lr=${lr%:*} not finished"; cat "$work"/sweep-"$array_id"_*.out; }
done

if [[ $failures -gt 0 ]]; then echo "$failures failure(s)"; exit 1; fi
echo "PASS"

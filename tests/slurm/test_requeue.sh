#!/usr/bin/env bash
# test_requeue.sh SHARDREC SOURCE_DIR — preemption and requeue on the real
# cluster that tests/slurm/cluster.sh starts (run this script through it):
# a 2-rank job of cluster/shardrec.sbatch gets SIGUSR1 in its second epoch
# (what --signal=B:USR1@N sends before the time limit; here `scancel
# --signal=USR1 --batch` once both ranks hold at step 14 of 30, a test hook,
# so that the signal comes mid-epoch whatever the machine's speed). The ranks
# write a checkpoint and exit with 75, the template requeues the job, the
# requeued job resumes with --resume auto and ends with the parameters, Adam
# state and test metrics of an uninterrupted job, bit for bit.
set -euo pipefail
bin=$1 src=$2
[[ -n "${SLURM_CONF:-}" && -d "${SHARDREC_SLURM_DIR:-}" ]] || { echo "run me through tests/slurm/cluster.sh" >&2; exit 2; }
work=$SHARDREC_SLURM_DIR/requeue
mkdir -p "$work"
cd "$work"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$bin" data synth -o data.h5 --users 600 --items 200 --heldout 60 >/dev/null # 480 training users
cat >train.yaml <<YAML
run: {out_dir: $work/runs, threads: 1}
data: {path: $work/data.h5}
model: {hidden: [32], latent_dim: 8}
train: {epochs: 3, batch_size: 48}
YAML

# Submits the template (2 ranks, srun) with sbatch OPTIONS... -- ARGS... and
# sets job_id.
submit() {
  local options=()
  while [[ $1 != -- ]]; do options+=("$1"); shift; done
  shift
  job_id=$(SHARDREC_BIN=$bin sbatch --parsable --ntasks=2 --output="$work/job-%j.out" "${options[@]}" \
    "$src/cluster/shardrec.sbatch" "$@")
}

# Waits (at most $2 s) for job $1 to leave the queue; sets job_info.
wait_gone() {
  for _ in $(seq $(($2 * 10))); do [[ -z "$(squeue -h -j "$1" -o %i 2>/dev/null)" ]] && break; sleep 0.1; done
  job_info=$(scontrol -o show job "$1")
}
field() { grep -o " $1=[^ ]*" <<<"$job_info" | cut -d= -f2; }

# The uninterrupted run.
submit -- train.yaml --set run.name=whole
wait_gone "$job_id" 90
[[ $(field JobState) == COMPLETED && $(field ExitCode) == 0:0 ]] ||
  { fail "uninterrupted job $job_id: $(field JobState), exit $(field ExitCode)"; cat "job-$job_id.out"; }

# The preempted one: the signal once both ranks hold after 14 steps.
SHARDREC_TEST_HOLD_AT_STEP=14 submit -- train.yaml --set run.name=preempted
out=job-$job_id.out
exec 3< <(exec timeout 60 tail -n +1 -F "$out" 2>/dev/null)
tail_pid=$!
held=0
while [[ $held -lt 2 ]] && read -r line <&3; do [[ $line == *"holding after 14 steps"* ]] && held=$((held + 1)); done
kill "$tail_pid" 2>/dev/null || true
exec 3<&-
if [[ $held -eq 2 ]]; then
  scancel --signal=USR1 --batch "$job_id"
else
  fail "job $job_id: the ranks did not reach step 14 within 60 s"
fi
# Requeued, it waits for its earlier credentials to expire: start it now.
for _ in $(seq 300); do
  state=$(squeue -h -j "$job_id" -o %T 2>/dev/null || true)
  [[ $state == PENDING ]] && { scontrol update JobId="$job_id" StartTime=now 2>/dev/null || true; break; }
  [[ -z $state ]] && break
  sleep 0.1
done
wait_gone "$job_id" 120
echo "preempted job $job_id: $(field JobState), exit $(field ExitCode), restarts $(field Restarts)"
[[ $(field JobState) == COMPLETED && $(field ExitCode) == 0:0 ]] || fail "job $job_id ended $(field JobState)"
[[ $(field Restarts) == 1 ]] || fail "job $job_id was restarted $(field Restarts) times, expected once"
grep -q "stopped on signal 10 (User defined signal 1) at step 15 after writing a checkpoint" "$out" ||
  fail "no 'stopped on signal 10 ... at step 15' in $out"
grep -q "requeued" "$out" || fail "the template did not say it requeued the job"
grep -q "resuming run .* from $work/runs/preempted/checkpoints/ckpt-0000000015.h5: epoch 2, sample 240" "$out" ||
  fail "the requeued job did not resume at step 15 (epoch 2, sample 240)"

# Bit for bit: the model and the last checkpoint (parameters, Adam moments).
for pair in "model.h5 model.h5" "checkpoints/ckpt-0000000030.h5 checkpoints/ckpt-0000000030.h5"; do
  read -r a b <<<"$pair"
  diff=$("$bin" inspect "runs/whole/$a" "runs/preempted/$b" 2>&1) || true
  summary=$(grep -E '^[0-9]+ of [0-9]+ tensors identical' <<<"$diff" || true)
  read -r same _ all _ <<<"$summary"
  [[ -n $summary && $same == "$all" ]] || { fail "$a differs from the uninterrupted run's"; echo "$diff"; }
  echo "$a: $summary"
done
test_record() { grep '"type":"test"' "runs/$1/metrics.jsonl" | tail -n 1 | sed 's/"step":[0-9]*,//'; }
[[ "$(test_record whole)" == "$(test_record preempted)" ]] ||
  fail "test metrics differ: $(test_record whole) vs $(test_record preempted)"

if [[ $failures -gt 0 ]]; then cat "$out"; echo "$failures failure(s)"; exit 1; fi
echo "PASS"

#!/usr/bin/env bash
# test_requeue.sh SHARDREC SOURCE_DIR — preemption and requeue on the real
# cluster that tests/slurm/cluster.sh starts (run this script through it):
# a 2-rank job of cluster/shardrec.sbatch gets SIGUSR1 in its second epoch
# (what --signal=B:USR1@N sends before the time limit; here `scancel
# --signal=USR1 --batch` once both ranks hold at step 14 of 30, a test hook,
# so that the signal comes mid-epoch whatever the machine's speed). The ranks
# write a checkpoint and exit with 75, the template requeues the job, the
# requeued job resumes with --resume auto and ends with the parameters (of
# model.h5 and of the last checkpoint) and test metrics of an uninterrupted
# job, bit for bit.
set -euo pipefail
bin=$1 src=$2
source "$(dirname "$0")/jobs.sh"
enter_work_dir requeue

write_training_setup "out_dir: $work/runs, threads: 1"
echo "train: {epochs: 3, batch_size: 48}" >>train.yaml # 480 training users: 10 steps per epoch
export SHARDREC_BIN=$bin

# The uninterrupted run.
submit_job --ntasks=2 -- train.yaml --set run.name=whole
wait_job "$job_id" 90
[[ $job_state == COMPLETED && $job_exit == 0:0 ]] ||
  { fail "uninterrupted job $job_id: $job_state, exit $job_exit"; echo "$job_out"; }

# The preempted one: the signal once both ranks hold after 14 steps.
SHARDREC_TEST_HOLD_AT_STEP=14 submit_job --ntasks=2 -- train.yaml --set run.name=preempted
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
# Requeued, it starts again once its earlier credentials expired (20 s, cluster.sh).
wait_job "$job_id" 180
restarts=$(grep -o ' Restarts=[0-9]*' <<<"$job_info" | cut -d= -f2)
echo "preempted job $job_id: $job_state, exit $job_exit, restarts $restarts"
[[ $job_state == COMPLETED && $job_exit == 0:0 ]] || fail "job $job_id ended $job_state, exit $job_exit"
[[ $restarts == 1 ]] || fail "job $job_id was restarted $restarts times, expected once"
grep -q "stopped on signal 10 (User defined signal 1) at step 15 after writing a checkpoint" "$out" ||
  fail "no 'stopped on signal 10 ... at step 15' in $out"
grep -q "requeued" "$out" || fail "the template did not say it requeued the job"
grep -q "resuming run .* from $work/runs/preempted/checkpoints/ckpt-0000000015.h5: epoch 2, sample 240" "$out" ||
  fail "the requeued job did not resume at step 15 (epoch 2, sample 240)"

# Bit for bit: the parameters of the model and of the last checkpoint.
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

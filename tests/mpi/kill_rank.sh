#!/usr/bin/env bash
# kill_rank.sh SHARDREC MPIEXEC — SIGKILLs one rank of a 2-rank training job
# and asserts that the whole job ends with a non-zero status within a bounded
# time (no rank left waiting in a collective) and that the failure names the rank.
set -u
bin=$1 mpiexec=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
limit=30

"$bin" data synth -o "$work/data.h5" --users 4000 --items 800 --heldout 400 >/dev/null || exit 1
cat > "$work/train.yaml" <<YAML
run: {name: kill, out_dir: $work, log_every_s: 0.2}
data: {path: $work/data.h5}
model: {hidden: [64], latent_dim: 16}
train: {epochs: 1000, batch_size: 100, time_limit_s: 120}
YAML
"$mpiexec" -n 2 "$bin" train "$work/train.yaml" >"$work/log" 2>&1 &
job=$!
for _ in $(seq 300); do grep -q "users/s" "$work/log" && break; sleep 0.1; done
grep -q "users/s" "$work/log" || { echo "training never started:"; cat "$work/log"; kill -9 $job; exit 1; }

victim=$(pgrep -P "$job" -f "train $work/train.yaml" | tail -n 1)
[[ -n "$victim" ]] || { echo "no rank process found"; kill -9 $job; exit 1; }
start=$SECONDS
kill -9 "$victim"
( sleep $limit; kill -9 $job ) >/dev/null 2>&1 &
watchdog=$!
wait $job
status=$?
elapsed=$((SECONDS - start))
pkill -P $watchdog 2>/dev/null; kill $watchdog 2>/dev/null
echo "job exit status $status after ${elapsed}s"
tail -n 5 "$work/log"
if [[ $status -eq 0 ]]; then echo "FAIL: the job exited 0 after a rank was killed"; exit 1; fi
if (( elapsed >= limit )); then echo "FAIL: the job hung (killed by the watchdog)"; exit 1; fi
if ! grep -Eqi "rank [0-9]+.*(signal|killed)" "$work/log"; then echo "FAIL: no message naming the dead rank"; exit 1; fi
echo "PASS"

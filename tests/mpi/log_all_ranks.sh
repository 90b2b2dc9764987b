#!/usr/bin/env bash
# log_all_ranks.sh SHARDREC MPIEXEC — run.log_all_ranks: off, only rank 0
# prints progress; on, every rank does, each line prefixed with its rank.
set -u
bin=$1 mpiexec=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bin" data synth -o "$work/data.h5" --users 600 --items 200 --heldout 60 >/dev/null || exit 1
cat > "$work/train.yaml" <<YAML
run: {name: logs, out_dir: $work, log_every_s: 0.01}
data: {path: $work/data.h5}
model: {hidden: [16], latent_dim: 4}
train: {epochs: 1, batch_size: 100}
checkpoint: {every_epochs: 0}
YAML
for all in false true; do
  "$mpiexec" -n 2 "$bin" train "$work/train.yaml" --set run.log_all_ranks=$all --set run.name=$all \
    >"$work/$all.log" 2>&1 || { echo "training failed:"; cat "$work/$all.log"; exit 1; }
done
grep -q "rank 1/2" "$work/false.log" && { echo "rank 1 printed with log_all_ranks off:"; cat "$work/false.log"; exit 1; }
grep -q "rank 1/2" "$work/true.log" || { echo "rank 1 printed nothing with log_all_ranks on:"; cat "$work/true.log"; exit 1; }
echo "log_all_ranks: ok"

#!/usr/bin/env bash
# two_tower_study.sh — what each part of the two-tower recipe buys, on
# synthetic data (item features carry signal, popularity is Zipf-skewed):
# held-out test Recall@50 over several seeds for
#   - the reference run (SSL on with CFM, streaming logQ outside the temperature),
#   - SSL off, logQ off, logQ inside the temperature (methods.md's literal
#     (s - log p)/tau), static logQ, random instead of correlated masking;
#   - cross-device vs local negatives on 2 and 4 ranks at the same per-rank batch.
# Each variant is a `shardrec sweep` over the seeds; the end is the markdown
# table of `shardrec runs` (mean ± sample standard deviation over the seeds).
#   bench/two_tower_study.sh [EPOCHS] [SEEDS] [DATA] [PARTS] [BUILD_DIR]   e.g. 2 "1 2 3" quickstart all build
# DATA: quickstart (data/synth.h5: 20k users, 4k items, ~25 items per user) or
# sparse (data/synth-sparse.h5: 20k users, 20k items, ~8 items per user: a long
# tail of items seen a few times, where the SSL paper expects its gains).
# PARTS: all, single (the 1-rank variants) or ranks (the 2- and 4-rank ones).
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-2}
seeds=${2:-"1 2 3"}
dataset=${3:-quickstart}
parts=${4:-all}
build=${5:-build}
bin=$build/shardrec
mkdir -p data
case $dataset in
  quickstart) data=data/synth.h5 synth=(--users 20000 --items 4000) ;;
  sparse) data=data/synth-sparse.h5 synth=(--users 20000 --items 20000 --mean-items 8) ;;
  *)
    echo "unknown dataset '$dataset' (quickstart or sparse)" >&2
    exit 2
    ;;
esac
[[ -f $data ]] || "$bin" data synth -o "$data" "${synth[@]}" --heldout 2000 --seed 98765 >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
  OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_hwloc_base_binding_policy=none
work=$(mktemp -d "${TMPDIR:-/tmp}/shardrec-tt-study.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Common settings (configs/synth-twotower.yaml's recipe) for a fixed number of epochs.
cat >"$work/study.yaml" <<YAML
run: {out_dir: $work, threads: 1, log_level: warn}
data: {path: $data}
model: {type: twotower}
train: {lr: 5.0e-3, epochs: $epochs, eval_every: $epochs, select_metric: recall@50, batch_size: 512}
loss: {logq_scaled: false}
checkpoint: {every_epochs: 0}
YAML
seed_list=${seeds// /,}

# Each variant is a sweep over the seeds, into $work/<variant>/; `shardrec runs`
# then shows one row per variant with its config differences and mean ± sd.
variant() { # variant NAME [sweep options...]
  local name=$1
  shift
  "$bin" sweep "$work/study.yaml" --name "$name" --seeds "$seed_list" "$@" >/dev/null
}
if [[ $parts != ranks ]]; then
  variant reference --grid ssl.masking=cfm # SSL on (CFM), streaming logQ outside tau
  variant ssl-off --grid ssl.enabled=false
  variant logq --grid loss.logq=none,static
  variant logq-inside-tau --grid loss.logq_scaled=true # methods.md's literal (s - log p)/tau
  variant rfm --grid ssl.masking=rfm
fi
if [[ $parts != single ]]; then
  for ranks in 2 4; do # the same per-rank batch (512), cross-device vs local negatives
    variant "ranks$ranks" --grid dist.cross_device_negatives=true,false --set train.batch_size=$((512 * ranks)) \
      --launcher "mpiexec -n $ranks"
  done
fi
echo "Two-tower study: $dataset data, $epochs epochs, seeds $seeds (test Recall@50: mean ± sd over the seeds)"
"$bin" runs "$work" --format md --metric recall@50

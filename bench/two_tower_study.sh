#!/usr/bin/env bash
# two_tower_study.sh — what each part of the two-tower recipe buys, on the
# quickstart's synthetic data (item features carry signal, popularity is
# Zipf-skewed): held-out test Recall@50 over several seeds for
#   - the reference run (SSL on, streaming logQ outside the temperature),
#   - SSL off, logQ off, logQ inside the temperature (methods.md's literal
#     (s - log p)/tau), random instead of correlated feature masking;
#   - cross-device vs local negatives on 2 ranks at the same per-rank batch.
# Prints a markdown table (mean and standard deviation over the seeds).
#   bench/two_tower_study.sh [EPOCHS] [SEEDS] [BUILD_DIR]     e.g. 2 "1 2 3" build
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-2}
seeds=${2:-"1 2 3"}
build=${3:-build}
bin=$build/shardrec
data=data/synth.h5
mkdir -p data
[[ -f $data ]] || "$bin" data synth -o "$data" --users 20000 --items 4000 --heldout 2000 --seed 98765 >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
  OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_hwloc_base_binding_policy=none
work=$(mktemp -d "${TMPDIR:-/tmp}/shardrec-tt-study.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Common settings: configs/synth-twotower.yaml's model, a fixed number of epochs.
common=(--set data.path=$data --set model.type=twotower --set train.lr=5e-3 --set loss.logq_scaled=false
  --set train.epochs="$epochs" --set train.eval_every="$epochs" --set train.select_metric=recall@50
  --set checkpoint.every_epochs=0 --set run.threads=1)

# run NAME RANKS GLOBAL_BATCH SEED [--set k=v ...]: prints test recall@50.
run() {
  local name=$1 ranks=$2 batch=$3 seed=$4
  shift 4
  local out
  out=$(mpiexec -n "$ranks" "$bin" train /dev/null --run-dir "$work/$name-$seed" "${common[@]}" \
    --set train.batch_size="$batch" --set run.seed="$seed" "$@" 2>&1) || { echo "$out" >&2; exit 1; }
  echo "$out" | sed -n 's/.*] test recall@20 [0-9.]*  recall@50 \([0-9.]*\).*/\1/p; s/^test recall@20 [0-9.]*  recall@50 \([0-9.]*\).*/\1/p' |
    head -1
}

row() { # row LABEL VALUES...
  local label=$1
  shift
  printf '| %s | %s | %s |\n' "$label" "$*" "$(printf '%s\n' "$@" | awk '{s+=$1; q+=$1*$1; n++}
    END {m=s/n; v=q/n-m*m; if (v<0) v=0; printf "%.4f ± %.4f", m, sqrt(v)}')"
}

echo "| variant | test Recall@50 per seed ($seeds) | mean ± sd |"
echo "|---|---|---|"
declare -A variants=(
  ["1 rank, batch 512: SSL on, logQ streaming (reference)"]=""
  ["1 rank, batch 512: SSL off"]="--set ssl.enabled=false"
  ["1 rank, batch 512: logQ off"]="--set loss.logq=none"
  ["1 rank, batch 512: logQ inside tau (methods.md literal)"]="--set loss.logq_scaled=true"
  ["1 rank, batch 512: static logQ"]="--set loss.logq=static"
  ["1 rank, batch 512: RFM instead of CFM"]="--set ssl.masking=rfm"
)
for label in "1 rank, batch 512: SSL on, logQ streaming (reference)" "1 rank, batch 512: SSL off" \
  "1 rank, batch 512: logQ off" "1 rank, batch 512: logQ inside tau (methods.md literal)" \
  "1 rank, batch 512: static logQ" "1 rank, batch 512: RFM instead of CFM"; do
  values=()
  for s in $seeds; do
    # shellcheck disable=SC2086
    values+=("$(run v$RANDOM 1 512 "$s" ${variants[$label]})")
  done
  row "$label" "${values[@]}"
done
for cross in true false; do
  values=()
  for s in $seeds; do values+=("$(run x$cross 2 1024 "$s" --set dist.cross_device_negatives=$cross)"); done
  row "2 ranks x 512 per rank, cross-device negatives $cross" "${values[@]}"
done

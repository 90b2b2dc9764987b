#!/usr/bin/env bash
# two_tower_study.sh — what each part of the two-tower recipe buys, on
# synthetic data (item features carry signal, popularity is Zipf-skewed):
# held-out test Recall@50 over several seeds for
#   - the reference run (SSL on with CFM, streaming logQ outside the temperature),
#   - SSL off, logQ off, logQ inside the temperature (methods.md's literal
#     (s - log p)/tau), static logQ, random instead of correlated masking;
#   - cross-device vs local negatives on 2 and 4 ranks at the same per-rank batch.
# Prints a markdown table (mean and standard deviation over the seeds).
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
common=(--set data.path="$data" --set model.type=twotower --set train.lr=5e-3 --set loss.logq_scaled=false
  --set train.epochs="$epochs" --set train.eval_every="$epochs" --set train.select_metric=recall@50
  --set checkpoint.every_epochs=0 --set run.threads=1)

# recall_at_50 NAME RANKS GLOBAL_BATCH SEED [--set k=v ...]: trains, prints test Recall@50.
recall_at_50() {
  local name=$1 ranks=$2 batch=$3 seed=$4
  shift 4
  local out
  out=$(mpiexec -n "$ranks" "$bin" train /dev/null --run-dir "$work/$name-$seed" "${common[@]}" \
    --set train.batch_size="$batch" --set run.seed="$seed" "$@" 2>&1) || {
    echo "$out" >&2
    exit 1
  }
  # Rank 0's "test recall@20 ...  recall@50 X ..." line (prefixed by the rank on N ranks).
  echo "$out" | sed -n 's/^\(\[[^]]*\] \)*test recall@20 [0-9.]*  recall@50 \([0-9.]*\).*/\2/p'
}

row() { # row LABEL VALUES...
  local label=$1
  shift
  printf '| %s | %s | %s |\n' "$label" "$*" "$(printf '%s\n' "$@" | awk '{s+=$1; q+=$1*$1; n++}
    END {m=s/n; v=q/n-m*m; if (v<0) v=0; printf "%.4f ± %.4f", m, sqrt(v)}')"
}

echo "| variant ($dataset data, $epochs epochs) | test Recall@50 per seed ($seeds) | mean ± sd |"
echo "|---|---|---|"
labels=("SSL on (CFM), streaming logQ: reference" "SSL off" "logQ off" "logQ inside tau (methods.md literal)"
  "static logQ" "RFM instead of CFM")
overrides=("" "--set ssl.enabled=false" "--set loss.logq=none" "--set loss.logq_scaled=true"
  "--set loss.logq=static" "--set ssl.masking=rfm")
for i in "${!labels[@]}"; do
  [[ $parts == ranks ]] && break
  values=()
  for s in $seeds; do
    # shellcheck disable=SC2086 # the override is one or zero --set pairs
    values+=("$(recall_at_50 "v$i" 1 512 "$s" ${overrides[$i]})")
  done
  row "1 rank, batch 512: ${labels[$i]}" "${values[@]}"
done
for ranks in 2 4; do
  [[ $parts == single ]] && break
  for cross in true false; do
    values=()
    for s in $seeds; do
      values+=("$(recall_at_50 "x$ranks$cross" "$ranks" $((512 * ranks)) "$s" --set dist.cross_device_negatives=$cross)")
    done
    row "$ranks ranks x 512 per rank, cross-device negatives $cross" "${values[@]}"
  done
done

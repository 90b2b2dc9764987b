#!/usr/bin/env bash
# checkpoint_cadence.sh — what the checkpoint cadence costs on an ML-1M-shaped
# Mult-VAE run (6040 users x 3533 items, ~95 items per user, batch 500, one
# thread): a checkpoint after every epoch (checkpoint.every_epochs: 1, the
# earlier default) against the default time interval (checkpoint.every_s), for
# EPOCHS epochs. Prints each run's wall time, the checkpoints written and
# their total size.
#   bench/checkpoint_cadence.sh [EPOCHS] [BUILD_DIR]      e.g. 50 build
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-50}
bin=$PWD/${2:-build}/shardrec
work=$(mktemp -d "${TMPDIR:-/tmp}/shardrec-cadence.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
"$bin" data synth -o ml1m.h5 --users 6040 --items 3533 --mean-items 95 --heldout 600 --no-features 2>/dev/null
for every_epochs in 1 0; do
  start=$(date +%s.%N)
  # Debug logging names every checkpoint committed ("checkpoint <path>").
  "$bin" train /dev/null --run-dir "run$every_epochs" --set data.path=ml1m.h5 --set train.epochs="$epochs" \
    --set train.batch_size=500 --set run.threads=1 --set run.log_level=debug \
    --set checkpoint.every_epochs="$every_epochs" >/dev/null 2>"run$every_epochs.log"
  end=$(date +%s.%N)
  written=$(grep -c ' checkpoint .*\.h5$' "run$every_epochs.log" || true)
  latest=$(cat "run$every_epochs/checkpoints/latest")
  size=$(stat -c %s "run$every_epochs/checkpoints/$latest")
  awk -v e="$every_epochs" -v s="$start" -v t="$end" -v n="$written" -v b="$size" 'BEGIN {
    printf "checkpoint.every_epochs %d: %.1f s wall, %d checkpoints of %.1f MB written (%.2f GB)\n", e, t - s, n,
      b / 1e6, n * b / 1e9 }'
done

#!/usr/bin/env bash
# quickstart.sh — the main job on a built-in default, from a clean clone:
# installs what is missing, builds, generates a synthetic dataset with planted
# structure, trains Mult-VAE for about a minute and prints validation and test
# metrics (and the popularity baseline for comparison).
#   launch/quickstart.sh [--set section.key=value]...
set -euo pipefail
cd "$(dirname "$0")/.."
cluster/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target shardrec h5zstd
mkdir -p data
if [[ ! -f data/synth.h5 ]]; then
  build/shardrec data synth -o data/synth.h5 --users 20000 --items 4000 --heldout 2000 --seed 98765
fi
build/shardrec data info data/synth.h5
# A demo: running it again starts its run (runs/quickstart) over.
exec build/shardrec train configs/quickstart.yaml --overwrite "$@"

#!/usr/bin/env bash
# run.sh — the whole test suite from a clean clone: installs missing
# dependencies (Slurm and munge included, for the single-node cluster test),
# configures, builds (Release, warnings as errors: GCC's -O3 warns where
# -O2 does not) and runs ctest.
#   tests/run.sh [extra ctest args]       (BUILD_DIR defaults to build/)
set -euo pipefail
cd "$(dirname "$0")/.."
cluster/install-deps.sh --slurm
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSHARDREC_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j"$(nproc)" "$@"

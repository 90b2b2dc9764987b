#!/usr/bin/env bash
# run.sh — the whole test suite from a clean clone: installs missing
# dependencies (Slurm and munge included, for the single-node cluster test;
# clang for the fuzz stage), configures, builds (Release, warnings as errors:
# GCC's -O3 warns where -O2 does not) and runs ctest; then the fuzz targets
# briefly on their corpus (FUZZ_SECONDS, default 10, each) in a clang build
# with ASan and UBSan (FUZZ_SECONDS=0 skips them). The whole suite under the
# sanitizers is tests/sanitize.sh: ~18 minutes on a 2-core machine, more than
# CI's budget, so it runs by hand before a release.
#   tests/run.sh [extra ctest args]       (BUILD_DIR defaults to build/)
set -euo pipefail
cd "$(dirname "$0")/.."
cluster/install-deps.sh --slurm --sanitizers
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSHARDREC_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
(cd "$build" && ctest --output-on-failure -j"$(nproc)" "$@")

fuzz_seconds=${FUZZ_SECONDS:-10}
((fuzz_seconds > 0)) || exit 0
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export LSAN_OPTIONS=suppressions=$PWD/tests/sanitizers.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
CC=clang CXX=clang++ cmake -S . -B "$build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHARDREC_WERROR=ON \
  -DSHARDREC_CUDA=OFF -DSHARDREC_BUILD_TESTS=OFF -DSHARDREC_BUILD_BENCH=OFF -DSHARDREC_FUZZ=ON \
  -DSHARDREC_FUZZ_SECONDS="$fuzz_seconds" >/dev/null
cmake --build "$build-fuzz" -j"$(nproc)" --target fuzz_yaml fuzz_import
cd "$build-fuzz"
ctest --output-on-failure -L fuzz

#!/usr/bin/env bash
# sanitize.sh — the sanitizer stage of CI: a clang build with AddressSanitizer
# and UndefinedBehaviorSanitizer (the library, the binary, the tests and the
# libFuzzer targets of fuzz/), then ctest under it: the tests given as
# arguments (default: every test), and each fuzz target for
# SHARDREC_FUZZ_SECONDS (30) on its corpus. Open MPI's own leaks at exit are
# suppressed (tests/sanitizers.supp).
#   tests/sanitize.sh [ctest args]      (BUILD_DIR defaults to build-asan/)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-asan}
# Exported before building: gtest_discover_tests runs the test binaries then.
export ASAN_OPTIONS=fast_unwind_on_malloc=0:detect_leaks=1:abort_on_error=0
export LSAN_OPTIONS=suppressions=$PWD/tests/sanitizers.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHARDREC_WERROR=ON \
  -DSHARDREC_CUDA=OFF -DSHARDREC_BUILD_BENCH=OFF -DSHARDREC_FUZZ=ON \
  -DSHARDREC_FUZZ_SECONDS="${SHARDREC_FUZZ_SECONDS:-30}" >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j"$(nproc)" "$@"

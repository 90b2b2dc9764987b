#!/usr/bin/env bash
# pack.sh — a folder that runs the GPU checks on another machine (docs/gpu.md):
#
#   tests/gpu/pack.sh [BUILD_DIR] OUT_DIR
#
# OUT_DIR/bin gets the binaries tests/gpu/run.sh runs, OUT_DIR/lib the shared
# libraries they load (their ldd closure) except those the GPU machine must
# provide itself: the C/C++ runtime, the CUDA driver and toolkit libraries
# (libcuda, cudart, cuBLAS, cuSPARSE: CUDA 13 there), NCCL and Open MPI (its
# mpirun must match its libraries). OUT_DIR/run.sh and configs/ come along, so
#   OUT_DIR/run.sh OUT_DIR
# runs everything there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
if [[ $# -eq 1 ]]; then build=$src/build out=$1; else build=$1 out=$2; fi
[[ -x "$build/tests/shardrec_gpu_tests" ]] || {
  echo "pack.sh: $build has no tests/shardrec_gpu_tests (configure with CUDA: docs/gpu.md)" >&2
  exit 2
}
mkdir -p "$out/bin" "$out/lib" "$out/configs"
bins=("$build/shardrec" "$build/tests/shardrec_gpu_tests" "$build/tests/shardrec_gpu_mpi_tests"
      "$build/bench/bench_vae")
cp "${bins[@]}" "$out/bin/"
cp "$here/run.sh" "$out/run.sh"
cp "$src/configs/quickstart.yaml" "$out/configs/"
system='^(linux-vdso|ld-linux|libc|libm|libdl|librt|libpthread|libgcc_s|libstdc\+\+|libcuda|libcudart|libcublas|libcublasLt|libcusparse|libnvJitLink|libnccl|libmpi|libopen-rte|libopen-pal|libhwloc|libevent|libevent_core|libevent_pthreads|libudev)[.-]'
for bin in "${bins[@]}"; do
  ldd "$bin" | awk '$3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  [[ $name =~ $system ]] || cp -L "$path" "$out/lib/$name"
done
# Debug sections are not needed to run, and the folder must stay small to travel.
strip --strip-debug "$out"/bin/* "$out"/lib/*
echo "packed into $out: $(du -sh "$out" | cut -f1) ($(ls "$out/lib" | wc -l) libraries)"

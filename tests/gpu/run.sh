#!/usr/bin/env bash
# run.sh — every GPU check, on a machine with an NVIDIA GPU, in under 5 minutes:
#
#   tests/gpu/run.sh [BUILD_DIR]     from a CUDA build (default: build/)
#   PACK/run.sh PACK                 from a folder made by tests/gpu/pack.sh
#
# 1. shardrec_gpu_tests: each CUDA kernel against its CPU kernel, the device
#    Mult-VAE/DAE loss and gradients, 50 training steps against the CPU, the
#    1-rank NCCL path, bit-exact resume, a GPU checkpoint resumed on the CPU;
# 2. two ranks sharing one GPU (MPI backend) against one rank;
# 3. the shardrec binary: synthetic data, training on the GPU with 1 rank
#    (NCCL when built with it) and 2 ranks (MPI backend), evaluation on the CPU;
# 4. bench_vae --device cuda on the ML-20M shape (and the CPU for comparison).
# A test that skips counts as a failure here: this machine has a GPU.
set -uo pipefail
root=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$root/../../build}
if [[ -d $dir/bin ]]; then # a packed folder
  tests=$dir/bin bench=$dir/bin shardrec=$dir/bin/shardrec config=$dir/configs/quickstart.yaml
  export LD_LIBRARY_PATH=$dir/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}
else
  tests=$dir/tests bench=$dir/bench shardrec=$dir/shardrec config=$root/../../configs/quickstart.yaml
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_hwloc_base_binding_policy=none
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
check() { # check NAME COMMAND...: runs it, output to the terminal and to $work/NAME.log
  local name=$1 start=$SECONDS
  shift
  echo "=== $name: $*"
  "$@" 2>&1 | tee "$work/$name.log"
  local rc=${PIPESTATUS[0]}
  if [[ $rc -ne 0 ]]; then
    failed+=("$name (exit $rc)")
  elif grep -q '\[  SKIPPED \]' "$work/$name.log"; then
    failed+=("$name (tests skipped on a GPU machine)")
  fi
  echo "=== $name: exit $rc in $((SECONDS - start)) s"
}

nvidia-smi -L || echo "nvidia-smi not found"
check kernels_model_training "$tests/shardrec_gpu_tests"
check two_ranks_one_gpu mpirun -np 2 "$tests/shardrec_gpu_mpi_tests"

data=$work/synth.h5
check synth "$shardrec" data synth -o "$data" --users 20000 --items 4000
common=(--set data.path="$data" --set run.out_dir="$work/runs" --set train.time_limit_s=20 --set run.device=cuda)
check train_1rank "$shardrec" train "$config" "${common[@]}" --set run.name=one
check train_2ranks mpirun -np 2 "$shardrec" train "$config" "${common[@]}" --set run.name=two --set dist.backend=mpi
check eval_on_cpu "$shardrec" eval "$work/runs/one/model.h5" --split test

check bench_cuda "$bench/bench_vae" --device cuda --steps 30
check bench_cuda_batch2000 "$bench/bench_vae" --device cuda --steps 10 --batch 2000
check bench_cpu "$bench/bench_vae" --steps 3

if [[ ${#failed[@]} -gt 0 ]]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "all GPU checks passed in $SECONDS s"

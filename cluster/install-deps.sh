#!/usr/bin/env bash
# install-deps.sh — installs everything shardrec needs to build, test and run
# on Debian 12 (as root, or through sudo). Idempotent: packages already present
# are skipped, so it is cheap to call before every build.
#
#   cluster/install-deps.sh            build + test dependencies
#   cluster/install-deps.sh --slurm    also Slurm + munge (for the Slurm tests/templates)
#   ... --sanitizers                   also clang and its runtimes (ASan/UBSan builds, libFuzzer)
set -euo pipefail

packages=(build-essential cmake pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev libhdf5-dev hdf5-tools
          libzstd-dev libyaml-dev libgtest-dev libopenblas-dev libjansson-dev python3-h5py python3-hdf5plugin python3-numpy
          python3-matplotlib python3-yaml)
for option in "$@"; do
  case $option in
    --slurm) packages+=(slurm-wlm munge) ;;
    --sanitizers) packages+=(clang libclang-rt-14-dev) ;;
    *)
      echo "install-deps: unknown option $option (--slurm, --sanitizers)" >&2
      exit 2
      ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
# apt-get update fails while another apt holds the lock: retry for a while.
for attempt in $(seq 1 30); do
  if $sudo apt-get update -qq; then break; fi
  [[ $attempt -eq 30 ]] && { echo "install-deps: apt-get update kept failing" >&2; exit 1; }
  sleep 5
done
for attempt in $(seq 1 10); do
  if $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    exit 0
  fi
  sleep 5
done
echo "install-deps: apt-get install failed" >&2
exit 1

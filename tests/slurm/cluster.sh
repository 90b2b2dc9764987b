#!/usr/bin/env bash
# cluster.sh — runs a command inside a private single-node Slurm cluster.
#
#   tests/slurm/cluster.sh [-t SECONDS] COMMAND [ARG]...    e.g. tests/slurm/cluster.sh bash
#
# Starts munged, slurmctld and slurmd as the calling user (root or not: the
# cluster then runs that user's jobs only) with every key, socket, state,
# spool, pid and log file in a fresh scratch directory, waits until the node
# is idle, runs COMMAND with SLURM_CONF pointing at that cluster and
# SHARDREC_SLURM_DIR at the scratch directory, then cancels what is left of
# its jobs, stops the daemons by the PIDs it started and removes the directory
# (kept, with the daemons' logs, when COMMAND fails or SHARDREC_KEEP_SLURM=1).
# -t ends COMMAND after SECONDS (exit status 124), early enough for the cleanup
# to run before a harness such as ctest kills everything.
# Nothing outside the directory is touched: the munge daemon has its own key
# and socket, the Slurm daemons their own ports, so a system munge or Slurm
# keeps running undisturbed. The one node is `localhost` with this machine's
# CPUs; task/affinity binds tasks to CPUs as on a real cluster; MpiDefault is
# Slurm's default, none, so that MPI jobs must ask for --mpi=pmix. Job
# credentials live 20 s instead of 120: a requeued job waits that long before
# it starts again (it may not start with its earlier credentials revoked).
#
# Exit status: COMMAND's; 77 (ctest's "skipped") when Slurm or munge is not
# installed, unless the CI variable is set: CI must not skip silently;
# 1 when the cluster cannot start (the daemons' logs are printed).
set -euo pipefail

say() { echo "slurm-cluster: $*" >&2; }
die() { say "$*"; exit 1; }
time_limit=()
if [[ "${1:-}" == -t ]]; then time_limit=(timeout --kill-after=5 "$2"); shift 2; fi
[[ $# -ge 1 ]] || { sed -n '2,24p' "$0" >&2; exit 2; }

required=(munged munge slurmctld slurmd sinfo squeue scontrol scancel sbatch srun)
missing=()
for tool in "${required[@]}"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [[ ${#missing[@]} -gt 0 ]]; then
  hint="install them with: cluster/install-deps.sh --slurm"
  [[ -n "${CI:-}" ]] && die "FAIL: ${missing[*]} missing under CI=$CI ($hint)"
  say "SKIP: ${missing[*]} not installed ($hint)"
  exit 77
fi
# nproc honours OMP_NUM_THREADS, which a user may export for BLAS: count the CPUs without it.
cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
(( cpus >= 2 )) || die "FAIL: the cluster tests need 2 CPUs, this machine has $cpus"

# A job of an enclosing real Slurm allocation would steer sbatch/srun at it.
while IFS='=' read -r name _; do unset "$name"; done < <(env | grep -E '^(SLURM|SBATCH|SRUN|SALLOC)_' || true)

dir=$(mktemp -d "${TMPDIR:-/tmp}/shardrec-slurm.XXXXXX")
chmod 755 "$dir" # munged wants its socket directory searchable by everyone
mkdir -p "$dir"/{munge,state,spool,log}
pids=()   # munged, slurmctld, slurmd: the daemons started here, in order
ctld_pid=""

# A daemon that exited but is not yet reaped still answers kill -0.
alive() { [[ -r /proc/$1/status ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# Cancels the cluster's jobs (their steps outlive slurmd otherwise), then
# stops the daemons, newest first, by the PIDs started here.
stop_cluster() {
  local status=$? job
  trap - EXIT INT TERM
  if [[ -n "$ctld_pid" ]] && alive "$ctld_pid"; then
    for job in $(squeue -h -o %i 2>/dev/null); do scancel "$job" 2>/dev/null || true; done
    for _ in $(seq 50); do [[ -z "$(squeue -h -o %i 2>/dev/null)" ]] && break; sleep 0.1; done
  fi
  local i pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -9 "$pid"; say "daemon $pid ignored SIGTERM for 5s: killed"; fi
    wait "$pid" 2>/dev/null || true
  done
  if [[ $status -ne 0 || -n "${SHARDREC_KEEP_SLURM:-}" ]]; then
    say "kept $dir (daemon logs in $dir/log)"
  else
    rm -rf "$dir"
  fi
  exit "$status"
}
command_pid=""
# On a signal, end COMMAND first: stop_cluster then cancels its jobs.
on_signal() {
  [[ -n "$command_pid" ]] && kill "$command_pid" 2>/dev/null
  exit "$1"
}
trap stop_cluster EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

show_logs() {
  local log
  for log in "$dir"/log/*; do say "--- $log"; tail -n 20 "$log" >&2; done
}

# Polls `$@` every 0.1 s for up to $1 seconds; fails naming $2 and showing the
# logs if it never succeeds or if a daemon died meanwhile.
wait_for() {
  local seconds=$1 what=$2 pid
  shift 2
  for _ in $(seq $((seconds * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    for pid in "${pids[@]}"; do
      alive "$pid" || { show_logs; die "FAIL: a daemon (pid $pid) exited while waiting for $what"; }
    done
    sleep 0.1
  done
  show_logs
  die "FAIL: no $what after ${seconds}s"
}

# A port that nothing listens on and that is not $1 (a race with another
# starter is possible but unlikely: the daemon would exit, wait_for says so).
# Below the kernel's ephemeral range: a port there can be the local end of any
# outgoing connection (another test's MPI or srun), which a listener cannot bind.
free_port() {
  local port ephemeral
  ephemeral=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  ((ephemeral > 12000)) || ephemeral=32768
  while :; do
    port=$((10000 + RANDOM % (ephemeral - 10000)))
    [[ $port != "${1:-}" ]] || continue
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

start_munge() {
  (umask 077 && head -c 1024 /dev/urandom >"$dir/munge/munge.key")
  munged -F --socket="$dir/munge/socket" --key-file="$dir/munge/munge.key" --pid-file="$dir/munge/munged.pid" \
    --seed-file="$dir/munge/seed" --log-file="$dir/log/munged.log" >"$dir/log/munged.out" 2>&1 &
  pids+=($!)
  wait_for 10 "munge credential" munge --socket="$dir/munge/socket" --no-input
}

write_slurm_conf() {
  local ctld_port slurmd_port
  ctld_port=$(free_port)
  slurmd_port=$(free_port "$ctld_port")
  cat >"$dir/slurm.conf" <<EOF
ClusterName=shardrec-test
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
AuthInfo=socket=$dir/munge/socket,cred_expire=20
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
NodeName=localhost CPUs=$cpus
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

node_idle() { [[ "$(sinfo -h -n localhost -o %T)" == idle ]]; }

start_slurm() {
  write_slurm_conf
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -D -i >"$dir/log/slurmctld.out" 2>&1 &
  ctld_pid=$!
  pids+=("$ctld_pid")
  # The node is `localhost` whatever this machine's hostname: tell slurmd.
  slurmd -D -N localhost >"$dir/log/slurmd.out" 2>&1 &
  pids+=($!)
  wait_for 30 "idle node in sinfo" node_idle
}

started=$EPOCHREALTIME
start_munge
start_slurm
say "cluster up in $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $started }")s ($dir)"
export SHARDREC_SLURM_DIR=$dir
# In the background, with its stdin kept, so that signals reach the traps
# above at once rather than after COMMAND ends.
"${time_limit[@]}" "$@" <&0 &
command_pid=$!
status=0
wait "$command_pid" || status=$?
if [[ ${#time_limit[@]} -gt 0 && ($status -eq 124 || $status -eq 137) ]]; then
  say "FAIL: $1 ran past the ${time_limit[2]}s limit"
fi
exit "$status"

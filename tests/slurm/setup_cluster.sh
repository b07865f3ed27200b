#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine (localhost) for tests/test_slurm.py.
#
#   sudo tests/slurm/setup_cluster.sh            # install (apt) + configure + start; idempotent
#   sudo tests/slurm/teardown_cluster.sh         # stop what this script started
#
# Needs root and apt-get (Debian 12: slurm-wlm 22.05 + munge). What it does:
#   1. installs slurm-wlm and munge with apt-get when slurmctld/munged are missing;
#   2. munge: keeps a valid /etc/munge/munge.key (>= 32 bytes) or writes a 1024-byte random one,
#      creates /run/munge /var/log/munge /var/lib/munge (owner munge) and starts munged as munge;
#   3. writes /etc/slurm/slurm.conf and /etc/slurm/cgroup.conf (one node = this host, all CPUs,
#      one default partition) with every state/spool/pid/log path under a state folder;
#   4. starts slurmctld then slurmd and waits until `sinfo` shows the node idle.
# Running it again while the cluster is up only checks it. A /etc/slurm/slurm.conf that this
# script did not write is never overwritten (the script stops with a message instead).
#
# Environment:
#   SPECENH_SLURM_STATE   state folder [/tmp/specenh-slurm]
#   SPECENH_SLURM_TIMEOUT seconds to wait for the node to become idle [60]
set -euo pipefail

STATE=${SPECENH_SLURM_STATE:-/tmp/specenh-slurm}
TIMEOUT=${SPECENH_SLURM_TIMEOUT:-60}
MARK="# written by specenh tests/slurm/setup_cluster.sh"
CONF=/etc/slurm/slurm.conf
HOST=$(hostname -s)
T0=$(date +%s)

say() { echo "setup_cluster.sh: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_state() { sinfo -h -n "${HOST}" -o %T 2>/dev/null | head -n 1; }

wait_idle() {
  local state=""
  for _ in $(seq 1 "${TIMEOUT}"); do
    state=$(node_state || true)
    case "${state}" in
      idle|mixed|allocated) return 0 ;;
    esac
    sleep 1
  done
  say "node ${HOST} not idle after ${TIMEOUT} s (sinfo state: '${state:-no answer}')"
  say "logs: ${STATE}/slurmctld.log ${STATE}/slurmd.log (last lines follow)"
  tail -n 5 "${STATE}/slurmctld.log" "${STATE}/slurmd.log" >&2 2>/dev/null || true
  exit 1
}

# ---------------------------------------------------------------- already up?
if command -v sinfo >/dev/null 2>&1 && alive "${STATE}/slurmctld.pid" && alive "${STATE}/slurmd.pid"; then
  case "$(node_state || true)" in
    idle|mixed|allocated) say "cluster already up (node ${HOST}: $(node_state))"; exit 0 ;;
  esac
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages, writes /etc/slurm and /etc/munge, starts daemons)"

# ---------------------------------------------------------------- 1. packages
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "slurmctld/slurmd/munged missing and apt-get not available"
  say "installing slurm-wlm and munge with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
fi
PATH=/usr/sbin:/usr/bin:${PATH}

# ---------------------------------------------------------------- 2. munge
id munge >/dev/null 2>&1 || die "no 'munge' user (the munge package creates it)"
mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge
key=/etc/munge/munge.key
if [ ! -f "${key}" ] || [ "$(stat -c %s "${key}")" -lt 32 ]; then
  say "writing a new 1024-byte munge key"
  head -c 1024 /dev/urandom > "${key}"
fi
chown munge:munge /etc/munge "${key}" /run/munge /var/log/munge /var/lib/munge
chmod 700 /etc/munge /var/log/munge
chmod 400 "${key}"
chmod 755 /run/munge
chmod 711 /var/lib/munge
if ! alive /run/munge/munged.pid; then
  rm -f /run/munge/munged.pid /run/munge/munge.socket.2*
  runuser -u munge -- munged || die "munged did not start (see /var/log/munge/munged.log)"
  mkdir -p "${STATE}"; touch "${STATE}/munged.started-here"
fi
for _ in $(seq 1 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
munge -n | unmunge >/dev/null 2>&1 || die "munge -n | unmunge fails (see /var/log/munge/munged.log)"

# ---------------------------------------------------------------- 3. configuration
if [ -f "${CONF}" ] && ! grep -qF "${MARK}" "${CONF}"; then
  die "${CONF} exists and was not written by this script: not touching a real site's configuration"
fi
mkdir -p "${STATE}/ctld" "${STATE}/spool" /etc/slurm
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 3 / 4)}' /proc/meminfo)
[ "${mem_mb}" -gt 8000 ] && mem_mb=8000
new_conf=$(cat <<EOF
${MARK} (state in ${STATE})
ClusterName=specenh
SlurmctldHost=${HOST}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=${STATE}/ctld
SlurmdSpoolDir=${STATE}/spool
SlurmctldPidFile=${STATE}/slurmctld.pid
SlurmdPidFile=${STATE}/slurmd.pid
SlurmctldLogFile=${STATE}/slurmctld.log
SlurmdLogFile=${STATE}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
KillWait=5
MaxArraySize=10001
NodeName=${HOST} CPUs=${cpus} RealMemory=${mem_mb} State=UNKNOWN
PartitionName=debug Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
EOF
)
new_cgroup=$(cat <<EOF
${MARK}
CgroupPlugin=cgroup/v1
IgnoreSystemd=yes
ConstrainCores=no
ConstrainRAMSpace=no
ConstrainDevices=no
EOF
)
changed=false
if [ "$(cat "${CONF}" 2>/dev/null)" != "${new_conf}" ]; then
  echo "${new_conf}" > "${CONF}"; changed=true
fi
[ "$(cat /etc/slurm/cgroup.conf 2>/dev/null)" = "${new_cgroup}" ] || echo "${new_cgroup}" > /etc/slurm/cgroup.conf

# ---------------------------------------------------------------- 4. daemons
if [ "${changed}" = true ]; then  # a stale daemon would keep the old configuration
  for d in slurmd slurmctld; do
    if alive "${STATE}/${d}.pid"; then kill "$(cat "${STATE}/${d}.pid")"; sleep 1; fi
  done
fi
if ! alive "${STATE}/slurmctld.pid"; then
  slurmctld || die "slurmctld did not start (see ${STATE}/slurmctld.log)"
fi
if ! alive "${STATE}/slurmd.pid"; then
  slurmd || die "slurmd did not start (see ${STATE}/slurmd.log)"
fi
wait_idle
say "cluster up in $(( $(date +%s) - T0 )) s: node ${HOST} $(node_state), ${cpus} CPUs, ${mem_mb} MB, partition debug; state in ${STATE}"

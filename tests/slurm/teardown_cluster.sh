#!/usr/bin/env bash
# Stop the one-node Slurm cluster started by tests/slurm/setup_cluster.sh: slurmd, slurmctld and
# (only if setup_cluster.sh started it) munged, each by the PID in its pid file. Configuration and
# packages stay, so the next setup_cluster.sh starts in seconds. Safe to run when nothing is up.
#   SPECENH_SLURM_STATE   state folder [/tmp/specenh-slurm]
set -uo pipefail

STATE=${SPECENH_SLURM_STATE:-/tmp/specenh-slurm}

say() { echo "teardown_cluster.sh: $*" >&2; }

stop() {  # stop NAME PIDFILE: SIGTERM, wait up to 10 s, then SIGKILL
  local name=$1 pidfile=$2 pid
  if [ ! -f "${pidfile}" ]; then say "${name}: no pid file ${pidfile}"; return 0; fi
  pid=$(cat "${pidfile}")
  if ! kill -0 "${pid}" 2>/dev/null; then say "${name}: not running"; rm -f "${pidfile}"; return 0; fi
  kill -TERM "${pid}"
  for _ in $(seq 1 20); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "${pid}" 2>/dev/null; then kill -KILL "${pid}"; say "${name}: killed (pid ${pid})"
  else say "${name}: stopped (pid ${pid})"; fi
  rm -f "${pidfile}"
}

stop slurmd "${STATE}/slurmd.pid"
stop slurmctld "${STATE}/slurmctld.pid"
if [ -f "${STATE}/munged.started-here" ]; then
  stop munged /run/munge/munged.pid
  rm -f "${STATE}/munged.started-here"
fi
exit 0

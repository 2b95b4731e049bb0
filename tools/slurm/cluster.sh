#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for qmap's Slurm test and for trying the examples:
#   tools/slurm/cluster.sh start    installs nothing; starts munged, slurmctld and slurmd
#   tools/slurm/cluster.sh stop     stops the daemons it started (and leaves no state behind)
#   tools/slurm/cluster.sh status   sinfo
# It needs Debian's slurmctld, slurmd, slurm-client and munge (tools/slurm/install.sh). Its
# configuration, state and logs live in $QMAP_SLURM_DIR (default /tmp/qmap-slurm); clients find
# the cluster with SLURM_CONF=$QMAP_SLURM_DIR/slurm.conf (printed by `start`).
set -euo pipefail

dir="${QMAP_SLURM_DIR:-/tmp/qmap-slurm}"
conf="$dir/slurm.conf"
cpus="$(nproc)"

write_conf() {
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  cat > "$conf" <<CONF
ClusterName=qmap
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=qmap Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
}

start_munge() {
  if pgrep -x munged >/dev/null; then return; fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge 2>/dev/null || true
  chmod 0400 /etc/munge/munge.key
  if id munge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
  else
    /usr/sbin/munged --force
  fi
  touch "$dir/munged.ours"
}

start() {
  for b in slurmctld slurmd sinfo munged; do
    command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || { echo "cluster.sh: $b is missing (tools/slurm/install.sh)" >&2; exit 3; }
  done
  stop quiet
  write_conf
  start_munge
  /usr/sbin/slurmctld -f "$conf"
  /usr/sbin/slurmd -f "$conf" -N localhost
  for _ in $(seq 1 100); do
    if SLURM_CONF="$conf" sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
      echo "SLURM_CONF=$conf"
      return 0
    fi
    sleep 0.1
  done
  echo "cluster.sh: the node did not become idle; logs in $dir/log" >&2
  SLURM_CONF="$conf" sinfo >&2 || true
  exit 1
}

stop() {
  for d in slurmd slurmctld; do
    if [ -f "$dir/$d.pid" ]; then
      kill "$(cat "$dir/$d.pid")" 2>/dev/null || true
    fi
  done
  for _ in $(seq 1 50); do
    pgrep -f "slurm(ctld|d) -f $conf" >/dev/null || break
    sleep 0.1
  done
  pkill -9 -f "slurm(ctld|d) -f $conf" 2>/dev/null || true
  if [ -f "$dir/munged.ours" ]; then
    pkill -x munged 2>/dev/null || true
  fi
  rm -rf "$dir"
  [ "${1:-}" = quiet ] || echo "cluster.sh: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) SLURM_CONF="$conf" sinfo ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac

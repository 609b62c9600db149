#!/usr/bin/env bash
# A real one-node SLURM on this machine, for the tests of the SLURM paths (needs root and the Debian
# packages slurm-wlm and munge; scripts/install_system_deps.sh --slurm installs them):
#   scripts/slurm_local.sh start    # writes /etc/slurm/slurm.conf, starts munged, slurmctld, slurmd
#   scripts/slurm_local.sh stop     # stops the daemons this script started, and only those
# One node (this host) with all its CPUs, no accounting, processes tracked by Linux process lists;
# a requeued job may start again after 10 s (cred_expire; SLURM's default is 120 s). Each daemon this
# script starts (not one that was running already) gets its PID file in $SLURM_LOCAL_RUN_DIR
# (/run/slurm_local; the tests give each run of theirs a directory of its own); `stop` with the same
# directory signals those PIDs (when the process there still has the daemon's name), never daemons by
# name, so a site's SLURM or munge, or one that another checkout started, is left alone. SLURM's own
# PID files go to $SLURM_LOCAL_RUN_DIR/daemon/.
set -euo pipefail
action=${1:-start}
host=$(hostname -s)
cpus=$(nproc)
state=/var/spool/slurmctld
run=${SLURM_LOCAL_RUN_DIR:-/run/slurm_local}

if [ "$action" = stop ]; then
    for name in slurmd slurmctld munged; do
        pidfile=$run/$name.pid
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        if [ "$(ps -p "$pid" -o comm= 2>/dev/null)" = "$name" ]; then
            kill "$pid"
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        fi
        rm -f "$pidfile"
    done
    exit 0
fi

command -v slurmctld >/dev/null || { echo "error: slurmctld not found: apt-get install slurm-wlm munge (as root)" >&2; exit 2; }
mkdir -p /etc/slurm "$state" /var/spool/slurmd /var/log/slurm /run/munge /etc/munge "$run/daemon"
cat > /etc/slurm/slurm.conf <<EOF
ClusterName=local
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmUser=root
StateSaveLocation=$state
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPidFile=$run/daemon/slurmctld.pid
SlurmdPidFile=$run/daemon/slurmd.pid
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MinJobAge=600
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge /run/munge
chmod 400 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
    su -s /bin/sh munge -c "munged --force"
    pgrep -n -x munged > "$run/munged.pid"  # started here: stop may stop it
fi
# a daemon started here: its PID as it writes it itself (pgrep -n would find slurmctld's own children, which
# carry its name), copied to where stop reads it
started() {
    for _ in $(seq 1 50); do
        [ -s "$run/daemon/$1.pid" ] && { cp "$run/daemon/$1.pid" "$run/$1.pid"; return 0; }
        sleep 0.2
    done
    echo "error: $1 wrote no PID file ($run/daemon/$1.pid); see /var/log/slurm/" >&2
    exit 1
}
if pgrep -x slurmctld >/dev/null; then
    scontrol reconfigure >/dev/null  # a running SLURM takes the configuration written above
else
    rm -f "$run/daemon/slurmctld.pid"
    slurmctld
    started slurmctld
fi
if ! pgrep -x slurmd >/dev/null; then
    rm -f "$run/daemon/slurmd.pid"
    slurmd
    started slurmd
fi
for _ in $(seq 1 30); do
    if sinfo -h -o "%T" 2>/dev/null | grep -qE "idle|mixed|allocated"; then
        echo "SLURM is up: $(sinfo -h -o '%P %D %T %C')"
        exit 0
    fi
    scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
    sleep 1
done
echo "error: the SLURM node did not come up; see /var/log/slurm/" >&2
exit 1

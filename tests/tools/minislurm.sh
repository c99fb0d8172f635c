#!/bin/sh
# minislurm.sh: a private one-node Slurm on loopback for the tests (and for
# trying SUBMIT=srun by hand): its own munge key and socket, its own ports,
# every file under DIR; nothing of the machine's own Slurm or munge is used.
# usage: minislurm.sh start DIR   (prints `export SLURM_CONF=DIR/slurm.conf`)
#        minislurm.sh stop DIR    (stops the three daemons by their pids)
# Needs Debian's munge, slurmctld, slurmd and slurm-client (scripts/deps.sh test).
set -eu
cmd=${1:-} dir=${2:-}
[ -n "$dir" ] || { echo "usage: minislurm.sh start|stop DIR" >&2; exit 2; }

stop() {
    for p in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
        [ -s "$p" ] || continue
        pid=$(cat "$p")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$p"
    done
}

# up WHAT TIMEOUT COMMAND...: retry COMMAND for TIMEOUT seconds, else fail naming WHAT and its log
up() {
    what=$1 n=$(($2 * 10)); shift 2
    while [ "$n" -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; n=$((n - 1)); done
    echo "minislurm: $what did not come up; the end of its log:" >&2
    tail -n 20 "$dir/log/$what.log" >&2 2>/dev/null || true
    stop
    exit 1
}

case $cmd in
stop) stop; exit 0 ;;
start) ;;
*) echo "usage: minislurm.sh start|stop DIR" >&2; exit 2 ;;
esac

for p in munged mungekey slurmctld slurmd srun sinfo; do
    command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] || { echo "minislurm: no $p: run scripts/deps.sh test" >&2; exit 1; }
done
PATH="$PATH:/usr/sbin"
mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
dir=$(cd "$dir" && pwd)
chmod 700 "$dir/munge"
# two free TCP ports on loopback, chosen by the kernel
ports=$(/usr/bin/python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
set -- $ports
ctld_port=$1 d_port=$2
user=$(id -un)
host=$(hostname -s)

rm -f "$dir/munge/munge.key"
mungekey --create --keyfile="$dir/munge/munge.key" 2>"$dir/log/mungekey.log" ||
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$dir/munge/munge.key"
munged --force --socket="$dir/munge/socket" --key-file="$dir/munge/munge.key" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" 2>>"$dir/log/munged.log" ||
    { echo "minislurm: munged failed:" >&2; tail -n 5 "$dir/log/munged.log" >&2; exit 1; }
up munged 10 sh -c "munge -S '$dir/munge/socket' -n | unmunge -S '$dir/munge/socket'"

cpus=$(nproc)
mem=$(awk '/^MemTotal:/ { m = int($2 / 1024) - 1024; print (m > 256 ? m : 256) }' /proc/meminfo)   # MB, less 1 GB
cat > "$dir/slurm.conf" <<CONF
# a private one-node cluster (tests/tools/minislurm.sh)
ClusterName=diffmmtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SlurmdTimeout=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
# make -j4 on a 2-core node: up to 4 job steps share each core
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF" 2>>"$dir/log/slurmctld.log" || up slurmctld 0 false
up slurmctld 20 scontrol ping
slurmd -f "$SLURM_CONF" -N "$host" 2>>"$dir/log/slurmd.log" || up slurmd 0 false
up slurmd 30 sh -c "sinfo -h -N -o %T | grep -qx idle"
echo "export SLURM_CONF=$SLURM_CONF"

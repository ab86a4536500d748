#!/usr/bin/env bash
# A private Slurm cluster on this one machine, for the end-to-end tests and
# the benchmarks: one slurmctld and three slurmd nodes (n1 n2 n3), every file
# (config, state, spool, logs, pids) in DIR. See README.md next to this file.
#
#   cluster.sh start DIR            write DIR/slurm.conf, start munged if it is
#                                   not running (it is shared, never stopped),
#                                   then the four daemons; wait until sinfo
#                                   shows n1 n2 n3 idle (30 s, else print the
#                                   logs, stop, exit 1). Silent on success.
#   cluster.sh stop DIR             SIGTERM the daemons, their slurmstepds and
#                                   the jobs' processes, SIGKILL what is left
#                                   after 5 s. Idempotent, never fails.
#   cluster.sh kill-node DIR nX     node nX dies: SIGKILL its slurmd, its
#                                   slurmstepds and their jobs' processes.
#   cluster.sh start-node DIR nX    start nX's slurmd again (ReturnToService=2
#                                   brings the node back at once).
#
# Client commands (sbatch, squeue, scancel, sinfo) find the cluster through
# SLURM_CONF=DIR/slurm.conf, which the caller sets. Nothing reads /etc/slurm.
# Root only; needs slurmctld, slurmd, slurm-client (22.05) and munge.
# SWARM_SLURM_EXTRA_CONF (optional): lines appended to slurm.conf at start; a
# key given again there wins (e.g. "SlurmdTimeout=2").
#
# How this cluster's processes are told apart from another cluster's (two may
# run at once, with the same node names):
#  - every daemon runs with SWARM_SLURM_CLUSTER=DIR (and a slurmd with
#    SWARM_SLURM_NODE=nX) in its environment; slurmd execs slurmstepd with its
#    own environment, so each slurmstepd carries the same markers;
#  - slurmstepd is double-forked: its parent is init, not slurmd, so it is not
#    found among slurmd's descendants. Besides its markers it is found by its
#    socket, DIR/spool/nX/nX_<job>.<step> (ss -xlp);
#  - a job's processes descend from its slurmstepd; one that left the tree is
#    still found by its environment, which slurmstepd sets:
#    SLURM_CONF=DIR/slurm.conf, SLURM_JOB_ID, SLURMD_NODENAME=nX.
# This script, its children and its ancestors are never killed, even when the
# caller exports SLURM_CONF.
set -u

NODES="n1 n2 n3"
PORT_LOCK=/tmp/swarm-slurm-cluster-ports.lock
DAEMON_PATH=/usr/sbin:/usr/bin:/sbin:/bin

die() { echo "cluster.sh: $*" >&2; exit 1; }

usage() {
    echo "usage: cluster.sh start DIR | stop DIR | kill-node DIR nX | start-node DIR nX" >&2
    exit 2
}

abs_dir() {
    # The markers and SLURM_CONF compare paths as strings: always the same
    # absolute spelling of DIR.
    local d
    d=$(realpath -m -- "$1") || die "bad directory: $1"
    printf '%s\n' "$d"
}

check_node() {
    case " $NODES " in *" $1 "*) ;; *) die "unknown node '$1' (want one of: $NODES)" ;; esac
}

# ---------------------------------------------------------------- processes

# Prints "pid ppid" for every process.
ps_table() {
    ps -e -o pid= -o ppid= 2>/dev/null
}

# Processes whose environment holds every given VAR=value ("VAR=" alone: VAR
# set to anything). One grep per condition over all of /proc, not one per
# process: fast enough to call in a loop.
pids_with_env() {
    local files=(/proc/[0-9]*/environ) kv f
    for kv in "$@"; do
        [ ${#files[@]} -gt 0 ] || return 0
        case "$kv" in
            *=) mapfile -t files < <(grep -lz -- "^$kv" "${files[@]}" 2>/dev/null) ;;
            *) mapfile -t files < <(grep -lzxF -- "$kv" "${files[@]}" 2>/dev/null) ;;
        esac
    done
    for f in "${files[@]}"; do
        f=${f#/proc/}
        echo "${f%/environ}"
    done
}

# The slurmstepds listening on a unix socket under $1 (each step's socket is
# SlurmdSpoolDir/<node>_<job>.<step>): a second way to find them, besides
# their environment.
stepd_pids() {
    ss -Hxlp 2>/dev/null | awk -v dir="$1" '
        index($0, " " dir) && match($0, /pid=[0-9]+/) { print substr($0, RSTART + 4, RLENGTH - 4) }'
}

# The given pids and all their descendants, one a line.
with_descendants() {
    [ $# -gt 0 ] || return 0
    ps_table | awk -v seeds="$*" '
        { parent[$1] = $2; pids[NR] = $1 }
        END {
            n = split(seeds, s, " ")
            for (i = 1; i <= n; i++) keep[s[i]] = 1
            changed = 1
            while (changed) {
                changed = 0
                for (i in pids) {
                    p = pids[i]
                    if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 }
                }
            }
            for (p in keep) print p
        }'
}

# This script, its subshells and its ancestors (the caller, which may well
# export SLURM_CONF): never ours to kill. A forked subshell shows the
# script's original environment in /proc, so it could match a marker.
protected_pids() {
    local pid=$$ ppid
    with_descendants $$
    while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
        echo "$pid"
        ppid=$(ps -o ppid= -p "$pid" 2>/dev/null) || break
        pid=$((ppid + 0))
    done
}

# Those of the given pids still running (zombies do not count).
alive() {
    [ $# -gt 0 ] || return 0
    ps -o pid= -o stat= -p "$(IFS=,; echo "$*")" 2>/dev/null | awk '$2 !~ /^Z/ { print $1 }'
}

# Milliseconds since the epoch.
now_ms() {
    local t=${EPOCHREALTIME/[.,]/}
    echo $((t / 1000))
}

# Waits until "$1" (a command, word-split) prints nothing, $2 ms at most.
wait_empty() {
    local cmd=$1 deadline=$(($(now_ms) + $2))
    # shellcheck disable=SC2086
    while [ -n "$($cmd)" ]; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# Freeze the set (so nothing forks away while we look), grow it until no new
# descendant appears, then SIGKILL all of it. $1: a function printing seeds.
freeze_and_kill() {
    local seeds_fn=$1 protected seeds all filtered prev="" p _
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        protected=" $(protected_pids | tr '\n' ' ') "
        seeds=$($seeds_fn)
        # shellcheck disable=SC2086
        all=$(with_descendants $seeds | sort -n | uniq)
        filtered=""
        for p in $all; do
            case "$protected" in *" $p "*) continue ;; esac
            filtered="$filtered $p"
        done
        # shellcheck disable=SC2086
        [ -n "$filtered" ] && kill -STOP $filtered 2>/dev/null
        [ "$filtered" = "$prev" ] && break
        prev=$filtered
    done
    # shellcheck disable=SC2086
    [ -n "$prev" ] && kill -KILL $prev 2>/dev/null
    return 0
}

# ------------------------------------------------------------------- munge

ensure_munge() {
    if ! [ -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key --force >/dev/null 2>&1 ||
                dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        fi
        chown munge:munge /etc/munge /etc/munge/munge.key
        chmod 0700 /etc/munge
        chmod 0400 /etc/munge/munge.key
    fi
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        return 0
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    # --force: a munged killed earlier leaves its socket and pid file behind.
    runuser -u munge -- /usr/sbin/munged --force 9>&- </dev/null >/dev/null 2>&1 ||
        die "munged did not start"
    local i
    for i in $(seq 50); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "munged is not answering"
}

# ------------------------------------------------------------------- ports

# Four ports nobody uses, below the ephemeral range (so no outgoing connection
# takes one between now and the daemons' bind). Called with the port lock
# held, and the lock is kept until the daemons listen: two clusters starting
# at once can never pick the same port.
pick_ports() {
    local used p picked="" n=0 tries=0
    used=" $(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u | tr '\n' ' ') "
    while [ "$n" -lt 4 ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 10000 ] || die "no free port found"
        p=$((20000 + RANDOM % 12000))
        case "$used $picked " in *" $p "*) continue ;; esac
        picked="$picked $p"
        n=$((n + 1))
    done
    echo "$picked"
}

port_listening() {
    [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]
}

# ------------------------------------------------------------------- config

write_conf() {
    local dir=$1 host=$2 ctld_port=$3; shift 3
    local conf=$dir/slurm.conf
    cat >"$conf" <<EOF
# Written by tests/slurm/cluster.sh: a private test cluster, all files in $dir
ClusterName=swarmtest
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core,CR_LLN
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=1,bf_interval=1
MaxArraySize=${SWARM_TEST_MAX_ARRAY_SIZE:-1001}
ReturnToService=2
JobRequeue=0
SlurmdParameters=config_overrides
PlugStackConfig=$dir/plugstack.conf
StateSaveLocation=$dir/state
SlurmctldPidFile=$dir/slurmctld.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmctldDebug=info
SlurmdSpoolDir=$dir/spool/%n
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmdLogFile=$dir/log/slurmd-%n.log
SlurmdDebug=info
SlurmdTimeout=3
SlurmctldTimeout=10
MessageTimeout=5
KillWait=2
InactiveLimit=0
MinJobAge=300
EOF
    local i=0 node
    for node in $NODES; do
        i=$((i + 1))
        echo "NodeName=$node NodeHostname=$host Port=${!i} CPUs=4 RealMemory=4000 State=UNKNOWN" >>"$conf"
    done
    echo "PartitionName=debug Nodes=${NODES// /,} Default=YES MaxTime=INFINITE State=UP" >>"$conf"
    if [ -n "${SWARM_SLURM_EXTRA_CONF:-}" ]; then
        printf '%s\n' "$SWARM_SLURM_EXTRA_CONF" >>"$conf"
    fi
    : >"$dir/plugstack.conf"
}

# ------------------------------------------------------------------ daemons

# Starts a daemon in the foreground of its own session (setsid: the caller's
# Ctrl-C or process-group kill does not reach it), detached from our stdio (a
# caller reading our output would otherwise wait for the daemons to exit) and
# from the lock fd 9, in DIR/log, with a clean environment carrying the
# markers. slurmstepd rewrites its process title over the start of its
# environment block in /proc/PID/environ: the padding variable goes first
# and takes that, the markers come last and survive.
# Prints its pid.
launch() {
    local dir=$1 name=$2; shift 2
    local node_marker=()
    [ "$name" != slurmctld ] && node_marker=(SWARM_SLURM_NODE="$name")
    (
        cd "$dir/log" || exit 1
        exec env -i SWARM_SLURM_PAD="$(printf '%0256d' 0)" \
            PATH="$DAEMON_PATH" LANG=C SLURM_CONF="$dir/slurm.conf" \
            SWARM_SLURM_CLUSTER="$dir" "${node_marker[@]}" \
            setsid "$@" </dev/null >>"$dir/log/$name.stderr" 2>&1 9>&-
    ) &
    echo $!
}

set_pid() {
    local dir=$1 name=$2 pid=$3
    local f=$dir/pids
    touch "$f"
    { grep -v "^$name " "$f"; echo "$name $pid"; } >"$f.tmp" && mv "$f.tmp" "$f"
}

get_pid() {
    [ -r "$1/pids" ] && awk -v n="$2" '$1 == n { print $2 }' "$1/pids"
}

# Is pid $2 a process of cluster $1 (and not a reused pid)?
is_ours() {
    local dir=$1 pid=$2
    [ -n "$pid" ] && grep -qzxF -- "SWARM_SLURM_CLUSTER=$dir" "/proc/$pid/environ" 2>/dev/null
}

start_slurmd() {
    local dir=$1 node=$2 pid
    mkdir -p "$dir/spool/$node"
    pid=$(launch "$dir" "$node" /usr/sbin/slurmd -D -N "$node" -f "$dir/slurm.conf")
    set_pid "$dir" "$node" "$pid"
}

node_port() {
    awk -v n="$2" '$1 == "NodeName=" n { for (i = 1; i <= NF; i++) if ($i ~ /^Port=/) { sub(/^Port=/, "", $i); print $i } }' "$1/slurm.conf"
}

# Waits (15 s at most) until every port given listens. $1: the daemons'
# pids; gives up early when one of them has died.
wait_listening() {
    local pids=$1 deadline=$((SECONDS + 15)) port p; shift
    for port in "$@"; do
        while ! port_listening "$port"; do
            [ "$SECONDS" -lt "$deadline" ] || return 1
            for p in $pids; do
                # shellcheck disable=SC2086
                [ -n "$(alive $p)" ] || { echo "cluster.sh: pid $p died" >&2; return 1; }
            done
            sleep 0.05
        done
    done
}

dump_logs() {
    local dir=$1 f
    for f in "$dir"/log/*; do
        [ -f "$f" ] || continue
        echo "===== $f" >&2
        tail -n 40 "$f" >&2
    done
}

# Prints the number of nodes sinfo shows idle.
idle_count() {
    SLURM_CONF="$1/slurm.conf" sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2 == "idle"' | sort -u | wc -l
}

cmd_start() {
    local dir=$1
    local host; host=$(hostname -s)
    local node pid pids=""
    [ -z "$(pids_with_env "SWARM_SLURM_CLUSTER=$dir")" ] ||
        die "a cluster is already running in $dir (stop it first)"
    mkdir -p "$dir"
    rm -rf "$dir/state" "$dir/spool" "$dir/log" "$dir/pids" "$dir/jobcomp.txt"
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"

    exec 9>>"$PORT_LOCK"
    flock -w 120 9 || die "waited 120 s for $PORT_LOCK"
    ensure_munge
    local ports
    # shellcheck disable=SC2046  # four numbers
    set -- $(pick_ports)
    ports="$*"
    write_conf "$dir" "$host" "$@"

    pid=$(launch "$dir" slurmctld /usr/sbin/slurmctld -D -f "$dir/slurm.conf")
    set_pid "$dir" slurmctld "$pid"
    for node in $NODES; do start_slurmd "$dir" "$node"; done
    pids=$(awk '{ print $2 }' "$dir/pids")
    # Released only once the daemons listen: until then another cluster
    # starting could pick the same ports.
    # shellcheck disable=SC2086
    if ! wait_listening "$pids" $ports; then
        exec 9>&-
        echo "cluster.sh: the daemons did not listen on ports $ports" >&2
        dump_logs "$dir"
        cmd_stop "$dir"
        exit 1
    fi
    exec 9>&-

    local deadline=$((SECONDS + 30))
    until [ "$(idle_count "$dir")" -eq 3 ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "cluster.sh: the nodes are not idle after 30 s" >&2
            SLURM_CONF="$dir/slurm.conf" sinfo -N >&2
            dump_logs "$dir"
            cmd_stop "$dir"
            exit 1
        fi
        sleep 0.1
    done
}

# Seeds for stop: everything of cluster $STOP_DIR.
stop_seeds() {
    local name pid
    for name in slurmctld $NODES; do
        pid=$(get_pid "$STOP_DIR" "$name")
        is_ours "$STOP_DIR" "$pid" && echo "$pid"
    done
    pids_with_env "SWARM_SLURM_CLUSTER=$STOP_DIR"
    stepd_pids "$STOP_DIR/spool/"
    pids_with_env "SLURM_CONF=$STOP_DIR/slurm.conf" "SLURM_JOB_ID="
}

# shellcheck disable=SC2086
stop_waited_alive() { alive $STOP_WAITED; }
# shellcheck disable=SC2046
stop_seeds_alive() { alive $(stop_seeds); }

cmd_stop() {
    local dir=$1 protected p pids=""
    STOP_DIR=$dir
    # Politely first: SIGTERM to the daemons, the slurmstepds and the jobs'
    # processes, up to 5 s for them to go; then SIGKILL whatever is left.
    # slurmstepd ignores SIGTERM: not waited for.
    protected=" $(protected_pids | tr '\n' ' ') "
    for p in $(stop_seeds | sort -un); do
        case "$protected" in *" $p "*) continue ;; esac
        pids="$pids $p"
    done
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null
        STOP_WAITED=""
        for p in $pids; do
            [ "$(cat "/proc/$p/comm" 2>/dev/null)" = slurmstepd ] || STOP_WAITED="$STOP_WAITED $p"
        done
        wait_empty stop_waited_alive 5000
    fi
    freeze_and_kill stop_seeds
    wait_empty stop_seeds_alive 5000
    rm -f "$dir/pids"
    return 0
}

# Seeds for kill-node: node $KILL_NODE of cluster $KILL_DIR.
node_seeds() {
    local pid
    pid=$(get_pid "$KILL_DIR" "$KILL_NODE")
    is_ours "$KILL_DIR" "$pid" && echo "$pid"
    pids_with_env "SWARM_SLURM_CLUSTER=$KILL_DIR" "SWARM_SLURM_NODE=$KILL_NODE"
    stepd_pids "$KILL_DIR/spool/$KILL_NODE/"
    pids_with_env "SLURM_CONF=$KILL_DIR/slurm.conf" "SLURMD_NODENAME=$KILL_NODE" "SLURM_JOB_ID="
}

# shellcheck disable=SC2046
node_seeds_alive() { alive $(node_seeds); }

cmd_kill_node() {
    local dir=$1 node=$2
    KILL_DIR=$dir KILL_NODE=$node
    freeze_and_kill node_seeds
    wait_empty node_seeds_alive 5000
    return 0
}

cmd_start_node() {
    local dir=$1 node=$2 pid port
    [ -r "$dir/slurm.conf" ] || die "no cluster in $dir"
    pid=$(get_pid "$dir" "$node")
    is_ours "$dir" "$pid" && die "$node is already running (pid $pid)"
    port=$(node_port "$dir" "$node")
    start_slurmd "$dir" "$node"
    if ! wait_listening "$(get_pid "$dir" "$node")" "$port"; then
        dump_logs "$dir"
        die "$node did not listen on port $port"
    fi
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
[ $# -ge 2 ] || usage
cmd=$1
dir=$(abs_dir "$2")
case "$cmd" in
    start) [ $# -eq 2 ] || usage; cmd_start "$dir" ;;
    stop) [ $# -eq 2 ] || usage; cmd_stop "$dir" ;;
    kill-node) [ $# -eq 3 ] || usage; check_node "$3"; cmd_kill_node "$dir" "$3" ;;
    start-node) [ $# -eq 3 ] || usage; check_node "$3"; cmd_start_node "$dir" "$3" ;;
    *) usage ;;
esac

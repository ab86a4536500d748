#!/usr/bin/env bash
# What one task costs swarm, and whether that stays flat as plans grow
# (issue 32): no-op tasks (`sh -c true`, read-only, so nothing merges) run
# by swarm beside `xargs -P` running the same commands, interleaved in one
# run of this script, medians of RUNS, on tmpfs and on the disk. Then plans
# of 500 to 10,000 tasks: wall time, CPU time per task (user + system, from
# the kernel, children included) and peak RSS, and how long `swarm status`
# takes on each run's journal. Prints a Markdown section (BENCHMARKS.md,
# section 17).
#
#   bench/pertask.sh                      # RUNS=5, N=1000
#   BASELINE=/path/to/older/swarm bench/pertask.sh   # adds its rows
#   SMOKE=1 SWARM=target/debug/swarm bench/pertask.sh
#
# The tmpfs runs need a tmpfs that is not /dev/shm (a sandboxed task gets a
# private /dev/shm, which would hide its worktree): as root, one is mounted
# for the run (and unmounted); otherwise TMPFS=DIR names one, or the
# sandboxed rows are measured on the disk and say so. Smoke mode (SMOKE=1,
# see bench/common.sh): tiny sizes, one run, to check that the script runs;
# tests/e2e/bench_scripts.rs does so in CI.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
RUNS=${RUNS:-$(sized 5 1)}
N=${N:-$(sized 1000 10)}
SCALE=${SCALE:-$(sized "500 5000 10000" "5 20")}
NPROC=${NPROC:-2}
cd "$ROOT"
ensure_swarm

work_dirs pertask
FAST_FS=$(df -T "$FAST" | awk 'NR == 2 { print $2 }')
DISK_FS=$(df -T "$DISK" | awk 'NR == 2 { print $2 }')

# noop_plan FILE N SANDBOX: N no-op read-only tasks.
noop_plan() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
path, n, sandbox = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    f.write(f'[swarm]\nsandbox = "{sandbox}"\n\n[[task]]\nid = "t-{{n}}"\nisolation = "readonly"\nrun = "true"\n')
    f.write("matrix = { n = [%s] }\n" % ", ".join(str(i) for i in range(n)))
PY
}

# setup DIR: a repository of 10 files in DIR/repo, HOME (worktrees) in DIR.
setup() {
  local dir=$1
  mkdir -p "$dir/repo"
  git -C "$dir/repo" init -q -b main
  for i in $(seq 10); do echo "file $i" > "$dir/repo/f$i.txt"; done
  git -C "$dir/repo" add -A
  git -C "$dir/repo" commit -qm init
}
hermetic_git "$DISK"
setup "$FAST"
setup "$DISK"

# Forget earlier runs so that every repetition does the same work.
reset_swarm() {
  rm -rf .swarm
  git for-each-ref --format='delete %(refname)' refs/swarm refs/heads/swarm | git update-ref --stdin
  git worktree prune
}

# timed CMD...: "wall_ms cpu_s peak_kB" of one run of CMD (the wall clock;
# GNU time: user + system of it and its children, max RSS).
timed() {
  local t0 t1
  t0=$(now_ms)
  run_logged "$DISK/timed.log" /usr/bin/time -o "$DISK/time.out" -f "%U %S %M" "$@"
  t1=$(now_ms)
  awk -v a="$t0" -v b="$t1" '{ printf "%.1f %.3f %d\n", b - a, $1 + $2, $3 }' "$DISK/time.out"
}

# swarm_in DIR BIN PLAN: "wall_ms cpu_s peak_kB" of one run of PLAN in
# DIR's repository, HOME in DIR (what runs before is forgotten first).
swarm_in() {
  local dir=$1 bin=$2 plan=$3
  (cd "$dir/repo" && reset_swarm)
  (cd "$dir/repo" && HOME=$dir/home timed "$bin" run -q -j "$NPROC" "$plan")
}

# xargs_n N: the same of `xargs -P` running N no-op commands.
xargs_n() { timed sh -c "seq $1 | xargs -P$NPROC -n1 sh -c true"; }

# The floor (bench/floor.c, no swarm code): the same N no-op commands run
# plainly, and each isolated as a sandboxed swarm task is (its own PID and
# mount namespaces over a template of about forty mounts, /proc, /dev/shm,
# its directory moved in, no_new_privs, seccomp, Landlock), in the fewest
# calls C allows. Needs root (namespaces without a user namespace) and gcc.
FLOOR=
if [ "$(id -u)" = 0 ] && command -v gcc > /dev/null; then
  FLOOR=$DISK/floor
  gcc -O2 -o "$FLOOR" "$ROOT/bench/floor.c"
fi
floor_n() { timed "$FLOOR" "$1" "$2" "$NPROC" 40 50 "$FAST"; }

noop_plan "$FAST/none.toml" "$N" none
noop_plan "$FAST/sandboxed.toml" "$N" landlock
noop_plan "$DISK/none.toml" "$N" none
(cd "$FAST/repo" && plan_clean . "$FAST/none.toml" && plan_clean . "$FAST/sandboxed.toml")

# The rows of the side-by-side table: label and command.
labels=() commands=()
row() { labels+=("$1"); shift; commands+=("$*"); }
row "\`xargs -P$NPROC\`, $FAST_FS" xargs_n "$N"
row "**swarm**, unconfined, $FAST_FS" swarm_in "$FAST" "$SWARM" "$FAST/none.toml"
row "**swarm**, sandboxed, $FAST_FS" swarm_in "$FAST" "$SWARM" "$FAST/sandboxed.toml"
if [ -n "$FLOOR" ]; then
  row "floor: fork and exec in C, $FAST_FS" floor_n plain "$N"
  row "floor: the same isolated in C, no swarm, $FAST_FS" floor_n iso "$N"
fi
row "\`xargs -P$NPROC\`, $DISK_FS" xargs_n "$N"
row "**swarm**, unconfined, $DISK_FS" swarm_in "$DISK" "$SWARM" "$DISK/none.toml"
if [ -n "${BASELINE:-}" ]; then
  row "baseline swarm ($("$BASELINE" --version | awk '{ print $2 }')), unconfined, $FAST_FS" swarm_in "$FAST" "$BASELINE" "$FAST/none.toml"
  row "baseline swarm, sandboxed, $FAST_FS" swarm_in "$FAST" "$BASELINE" "$FAST/sandboxed.toml"
fi

# Interleaved: run r of every row, then run r + 1 of every row, so that a
# busy moment of the machine hits all rows alike.
declare -A walls cpus
for _ in $(seq "$RUNS"); do
  for i in "${!labels[@]}"; do
    # shellcheck disable=SC2086 # a command and its words
    read -r wall cpu _ < <(${commands[$i]})
    walls[$i]+="$wall "
    cpus[$i]+="$cpu "
  done
done
med() { tr ' ' '\n' <<<"$1" | grep . | median_of; }

COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
echo "## 17. Per-task cost and scale"
echo
echo "Measured by \`bench/pertask.sh\` at commit $COMMIT on $(date -u +%Y-%m-%d): $(nproc) cores,"
echo "$N no-op tasks (\`sh -c true\`, read-only), $NPROC at a time, every row interleaved"
echo "with the others, median of $RUNS runs; CPU is user + system time of the whole run"
echo "(children included) from the kernel."
echo
# Each row's ratio is to the `xargs` row of its file system.
for i in "${!labels[@]}"; do
  case ${labels[$i]} in
    "\`xargs -P$NPROC\`, $FAST_FS") fast_xargs=$(med "${walls[$i]}") ;;
    "\`xargs -P$NPROC\`, $DISK_FS") disk_xargs=$(med "${walls[$i]}") ;;
  esac
done
echo "| runner | wall (ms) | vs xargs on the same file system | CPU (s) |"
echo "|---|---:|---:|---:|"
for i in "${!labels[@]}"; do
  wall=$(med "${walls[$i]}")
  case ${labels[$i]} in *", $DISK_FS") base=$disk_xargs ;; *) base=$fast_xargs ;; esac
  [ "$FAST_FS" = "$DISK_FS" ] && base=$fast_xargs
  echo "| ${labels[$i]} | $wall | $(ratio "$wall" "$base")x | $(med "${cpus[$i]}") |"
done
if [ -z "$FLOOR" ]; then
  echo
  echo "(The floor rows, bench/floor.c, are left out: they need root and gcc.)"
fi

echo
echo "Plans of growing size, unconfined, on $FAST_FS, one run each (with \`swarm status\` of"
echo "the finished run, which reads its journal):"
echo
echo "| tasks | swarm wall (ms) | \`xargs\` wall (ms) | vs xargs | CPU per task (ms) | peak RSS (MB) | \`swarm status\` (ms) |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for n in $SCALE; do
  noop_plan "$FAST/scale.toml" "$n" none
  read -r wall cpu rss < <(swarm_in "$FAST" "$SWARM" "$FAST/scale.toml")
  read -r xwall _ < <(xargs_n "$n")
  read -r swall _ < <(cd "$FAST/repo" && HOME=$FAST/home timed "$SWARM" status scale)
  echo "| $n | $wall | $xwall | $(ratio "$wall" "$xwall")x | $(awk -v c="$cpu" -v n="$n" 'BEGIN { printf "%.2f", c * 1000 / n }') | $(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }') | $swall |"
done

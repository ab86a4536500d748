#!/usr/bin/env bash
# What Slurm costs a task: the same plan run by the local executor and by
# the Slurm executor on a real three-node cluster on this machine
# (tests/slurm/cluster.sh), and 300 tasks over the three nodes beside the
# job array a user would submit by hand (`sbatch --array --wait`, no git,
# no sandbox, no merge), with `--export=NONE` and with `--export=ALL` from
# a clean environment; swarm both with a job per task and with
# `tasks_per_job = $PACK` (several short tasks one after another in a
# job). Prints a Markdown table (BENCHMARKS.md, section 14). Needs root
# (the cluster's daemons) and Debian's slurm packages.
#
#   bench/slurm.sh                  # RUNS=3, N=300, PACK=10
#   RUNS=1 N=100 bench/slurm.sh     # PACK= the packed rows' tasks_per_job
#   SMOKE=1 SWARM=target/debug/swarm BENCH_CLUSTER=DIR bench/slurm.sh
#
# Smoke mode (SMOKE=1, see bench/common.sh): 3 tasks, one run, and the
# rows of N tasks left out (the same commands again, and `sbatch --wait`
# alone takes about 10 s), to check that the script still runs;
# tests/e2e/bench_scripts.rs does so in CI. With SWARM nothing is built. BENCH_CLUSTER=DIR uses a cluster already
# started by `tests/slurm/cluster.sh start DIR` (the e2e test's, which it
# stops) instead of starting and stopping one here. A benchmarked command
# that fails ends the script with a message naming it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
RUNS=${RUNS:-$(sized 3 1)}
N=${N:-300}
SMALL=${SMALL:-$(sized 30 3)}
cd "$ROOT"
ensure_swarm

BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
WORK=$(mktemp -d "$BENCH_DIR/swarm-bench-slurm.XXXXXX")
hermetic_git "$WORK"
bench_cluster "$WORK"


repo() {
  local dir=$1
  rm -rf "$dir"; mkdir -p "$dir/src"
  git -C "$dir" init -q -b main
  for i in $(seq 100); do echo "file $i" > "$dir/src/f$i.txt"; done
  git -C "$dir" add -A; git -C "$dir" commit -q -m base
}

# `count` independent tasks, each writing its own file; `executor` is
# `local` or `slurm`; `pack` (optional) is the plan's `tasks_per_job`.
plan() {
  local count=$1 executor=$2 pack=${3:-}
  printf '[swarm]\nname = "b"\n\n[executor]\nkind = "%s"\n' "$executor"
  if [ "$executor" = slurm ]; then printf 'poll_interval = "200ms"\n'; fi
  if [ -n "$pack" ]; then printf 'tasks_per_job = %s\n' "$pack"; fi
  for k in $(seq "$count"); do
    printf '\n[[task]]\nid = "t%s"\ncreates = ["out/%s.txt"]\nrun = "mkdir -p out && echo %s > out/%s.txt"\n' "$k" "$k" "$k" "$k"
  done
}

# Milliseconds of one `swarm run` of `count` tasks on `executor`.
one_run() {
  local count=$1 executor=$2 pack=${3:-} dir=$WORK/repo
  repo "$dir"
  plan "$count" "$executor" "$pack" > "$WORK/plan.toml"
  plan_clean "$dir" "$WORK/plan.toml"
  local t0 t1
  t0=$(now_ms)
  run_logged "$WORK/err" "$SWARM" -C "$dir" run -q "$WORK/plan.toml"
  t1=$(now_ms)
  [ "$(git -C "$dir" ls-tree --name-only swarm/b out/ | wc -l)" = "$count" ] || { echo "not all merged" >&2; exit 1; }
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'
}

# submit_array COUNT EXPORT DIR [SBATCH ARGS...]: a job array of COUNT
# elements, each writing its index to a file of its own in DIR (which the
# caller empties before its clock starts), submitted from a clean
# environment with sbatch's --export=EXPORT.
submit_array() {
  local count=$1 export=$2 out=$3
  shift 3
  printf '#!/bin/sh\necho $SLURM_ARRAY_TASK_ID > %s/$SLURM_ARRAY_TASK_ID.txt\n' "$out" |
    env -i PATH="$PATH" SLURM_CONF="$SLURM_CONF" \
      sbatch --parsable "$@" --export="$export" --array=1-"$count" --output=/dev/null >/dev/null
}

# Milliseconds of a job array of `count` tasks doing the same echo,
# submitted and waited for by hand; `export` is sbatch's --export: NONE
# (the coordinator's environment kept out, as swarm must; slurmd then
# builds each job's environment with `su -`), or ALL from a clean `env -i`
# (the same environment kept out, no login shell: what swarm does since
# issue 32).
by_hand() {
  local count=$1 export=$2 out=$WORK/array
  rm -rf "$out"; mkdir -p "$out"
  local t0 t1
  t0=$(now_ms)
  submit_array "$count" "$export" "$out" --wait
  t1=$(now_ms)
  [ "$(ls "$out" | wc -l)" = "$count" ] || { echo "array incomplete" >&2; exit 1; }
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'
}

# Milliseconds until every element of the same array (`--export=ALL` from
# a clean environment) has written its file: when the array's work is done,
# which `sbatch --wait` reports only at its next check (it checks on a
# backing-off timer: 10 s, then 42 s, for these arrays).
by_hand_done() {
  local count=$1 out=$WORK/array
  rm -rf "$out"; mkdir -p "$out"
  local t0 t1
  t0=$(now_ms)
  submit_array "$count" ALL "$out"
  local waited=0
  while [ "$(ls "$out" | wc -l)" -lt "$count" ]; do
    sleep 0.05
    waited=$((waited + 1))
    [ "$waited" -lt 12000 ] || { echo "array incomplete after 10 minutes" >&2; exit 1; }
  done
  t1=$(now_ms)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'
}

# median F ARGS...: the median of $RUNS runs of F; a run that fails ends the
# script (through pipefail and the assignment of the median).
median() { local f=$1; shift; for _ in $(seq "$RUNS"); do checked "$f" "$@"; echo; done | median_of; }

PACK=${PACK:-10}
local_small=$(median one_run "$SMALL" local)
slurm_small=$(median one_run "$SMALL" slurm)
slurm_small_packed=$(median one_run "$SMALL" slurm "$PACK")
array_small=$(median by_hand "$SMALL" NONE)
array_small_all=$(median by_hand "$SMALL" ALL)
array_small_done=$(median by_hand_done "$SMALL")
if [ "$SMOKE" = 0 ]; then
  slurm_big=$(median one_run "$N" slurm)
  slurm_big_packed=$(median one_run "$N" slurm "$PACK")
  array_big=$(median by_hand "$N" NONE)
  array_big_all=$(median by_hand "$N" ALL)
  array_big_done=$(median by_hand_done "$N")
fi

per() { awk -v t="$1" -v n="$2" 'BEGIN { printf "%.1f", t / n }'; }
echo "| what | tasks | wall (ms, median of $RUNS) | per task (ms) |"
echo "|---|---:|---:|---:|"
echo "| swarm, local executor (sandboxed) | $SMALL | $local_small | $(per "$local_small" "$SMALL") |"
echo "| swarm, Slurm executor, 3 nodes (sandboxed) | $SMALL | $slurm_small | $(per "$slurm_small" "$SMALL") |"
echo "| swarm, Slurm executor, \`tasks_per_job = $PACK\` | $SMALL | $slurm_small_packed | $(per "$slurm_small_packed" "$SMALL") |"
echo "| \`sbatch --array --wait --export=NONE\` by hand (no git, sandbox or merge) | $SMALL | $array_small | $(per "$array_small" "$SMALL") |"
echo "| \`env -i sbatch --array --wait --export=ALL\` by hand | $SMALL | $array_small_all | $(per "$array_small_all" "$SMALL") |"
echo "| the same array, until its last file is written | $SMALL | $array_small_done | $(per "$array_small_done" "$SMALL") |"
if [ "$SMOKE" = 0 ]; then
  echo "| swarm, Slurm executor, 3 nodes (sandboxed) | $N | $slurm_big | $(per "$slurm_big" "$N") |"
  echo "| swarm, Slurm executor, \`tasks_per_job = $PACK\` | $N | $slurm_big_packed | $(per "$slurm_big_packed" "$N") |"
  echo "| \`sbatch --array --wait --export=NONE\` by hand | $N | $array_big | $(per "$array_big" "$N") |"
  echo "| \`env -i sbatch --array --wait --export=ALL\` by hand | $N | $array_big_all | $(per "$array_big_all" "$N") |"
  echo "| the same array, until its last file is written | $N | $array_big_done | $(per "$array_big_done" "$N") |"
fi

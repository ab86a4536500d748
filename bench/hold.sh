#!/usr/bin/env bash
# What holding swarm's objects in kept packs costs (issue 64: `git gc
# --prune=now` beside a run loses nothing, section 25): two builds side by
# side, interleaved, on tmpfs:
#   - 200 writing tasks, unconfined (worktree, run, snapshot, merge each),
#     each round from a fresh copy of the repository and no worktree home;
#   - 50 merges of disjoint results into a 10,000-file repository, and a
#     snapshot of 5 changes there (the `bench_git` harness).
# Prints a Markdown table of every round and the medians.
#
#   bench/hold.sh OLD_DIR NEW_DIR   # each holds `swarm` and `bench_git`
#   SMOKE=1 bench/hold.sh D D       # tiny sizes, one round
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
[ $# -eq 2 ] || { echo "usage: bench/hold.sh OLD_DIR NEW_DIR" >&2; exit 2; }
OLD=$(cd "$1" && pwd); NEW=$(cd "$2" && pwd)
ROUNDS=$(sized 5 1); TASKS=$(sized 200 4); FILES=$(sized 10000 200); MERGES=$(sized 50 3)
BASE=/dev/shm; [ -d "$BASE" ] && [ -w "$BASE" ] || BASE=${TMPDIR:-/tmp}
W=$(mktemp -d "$BASE/swarm-hold.XXXXXX")
trap 'rm -rf "$W"' EXIT
hermetic_git "$W"
# ms CMD...: the milliseconds CMD took (run as run_logged does: a failure
# ends the script, showing its output).
ms() { local t0; t0=$(now_ms); run_logged "$W/timed.log" "$@"; awk -v a="$t0" -v b="$(now_ms)" 'BEGIN { printf "%.0f", b - a }'; }

new_repo "$W/write" 100
# Section 2's tasks (bench/run.sh).
matrix_plan "$W/write.toml" "$TASKS" 'creates = ["out-t-{n}.txt"]
run = "echo $SWARM_TASK > out-$SWARM_TASK.txt"'
cp -a "$W/write" "$W/write.orig"
write_run() { rm -rf "$W/write" "$HOME/.cache"; cp -a "$W/write.orig" "$W/write"; (cd "$W/write" && "$1/swarm" run -q -j 2 "$W/write.toml"); }
declare -A write merge snap
for _ in $(seq "$ROUNDS"); do
  for v in OLD NEW; do
    dir=${!v}
    write[$v]+="$(ms write_run "$dir") "
  done
done

new_repo "$W/big" "$FILES"
cd "$W/big"
branches=()
for i in $(seq 1 "$MERGES"); do
  git worktree add -q --detach "$W/m-wt" main
  (cd "$W/m-wt" && echo "change $i" >> "src/d$(printf %03d "$i")/f$(printf %05d "$i").txt" && git commit -qam "change $i")
  branches+=("$(git -C "$W/m-wt" rev-parse HEAD)")
  git worktree remove --force "$W/m-wt"
done
for _ in $(seq "$ROUNDS"); do
  for v in OLD NEW; do
    dir=${!v}
    read -r t _ <<<"$("$dir/bench_git" merge "$W/big" main "${branches[@]}")"
    merge[$v]+="$t "
    read -r t _ <<<"$("$dir/bench_git" snapshot "$W/big" main 1 5 0 new)"
    snap[$v]+="$t "
  done
done
row() { # NAME ARRAY-NAME UNIT
  local -n a=$2
  local o n
  o=$(tr ' ' '\n' <<<"${a[OLD]}" | grep . | median_of); n=$(tr ' ' '\n' <<<"${a[NEW]}" | grep . | median_of)
  printf '| %s | %s %s (%s) | %s %s (%s) | %sx |\n' "$1" "$o" "$3" "${a[OLD]% }" "$n" "$3" "${a[NEW]% }" "$(ratio "$n" "$o")"
}
echo "| measure | $(basename "$OLD") (rounds) | $(basename "$NEW") (rounds) | new / old |"
echo "|---|---:|---:|---:|"
row "$TASKS writing tasks, unconfined" write ms
row "$MERGES merges, $FILES-file repository" merge ms
row "snapshot of 5 changes, $FILES-file repository" snap ms

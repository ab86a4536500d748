#!/usr/bin/env bash
# Writing tasks on a large repository, sandboxed (issue 76): N tasks each
# write one file in a repository of FILES files, two at a time, every one a
# worktree of its own, snapshotted and merged. Side by side, interleaved,
# medians of RUNS:
#
#   - swarm, sandboxed (the default): as root, each worktree is handed to
#     the sandbox's user and taken back, which changes every file's ctime,
#     so the snapshot reads every file;
#   - swarm, `sandbox = "none"`: the same work without the sandbox;
#   - by hand: the script a user would write (`git worktree add -b`, the
#     command, `git add -A`, `git commit`, `git merge --no-ff`, `git
#     worktree remove`), one task after another;
#   - with BASELINE=/path/to/older/swarm, that build sandboxed too.
#
# The repository and the worktrees are on a tmpfs when one can be mounted
# (as root; TMPFS=DIR names one), so that the file system's own allocator
# (ext4 scanning for free inodes after many deleted ones) is not measured.
# Prints a Markdown section (BENCHMARKS.md, section 31).
#
#   bench/bigwrite.sh                      # N=20, FILES=10000, RUNS=3
#   BASELINE=/tmp/swarm-old bench/bigwrite.sh
#   SMOKE=1 SWARM=target/debug/swarm bench/bigwrite.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
N=${N:-$(sized 20 2)}
FILES=${FILES:-$(sized 10000 100)}
RUNS=${RUNS:-$(sized 3 1)}
NPROC=${NPROC:-2}
cd "$ROOT"
ensure_swarm
OUT=$(bench_out BENCHMARKS.md)

work_dirs bigwrite
WORK=$FAST
FS=$(df -T "$WORK" | awk 'NR == 2 { print $2 }')
hermetic_git "$WORK"

new_repo "$WORK/repo" "$FILES"
cp -r "$WORK/repo" "$WORK/repo.orig"
# Task n writes one new file in directory n of the hundred.
body='creates = ["src/d{n}/new.txt"]
run = "echo $SWARM_TASK > src/d{n}/new.txt"'
dirs=$(python3 -c "print(', '.join(f'\"{i:03d}\"' for i in range($N)))")
plan() { # plan FILE SANDBOX
  printf '[swarm]\nsandbox = "%s"\n\n[[task]]\nid = "t-{n}"\n%s\nmatrix = { n = [%s] }\n' \
    "$2" "$body" "$dirs" > "$1"
}
plan "$WORK/sandboxed.toml" landlock
plan "$WORK/none.toml" none
plan_clean "$WORK/repo" "$WORK/sandboxed.toml"
plan_clean "$WORK/repo" "$WORK/none.toml"

# Forget earlier runs and their worktrees, so every run does the same work.
reset_all() {
  rm -rf .swarm "$WORK/home/.cache/swarm"
  git for-each-ref --format='delete %(refname)' refs/swarm refs/heads/swarm | git update-ref --stdin
  git worktree prune
}
swarm_with() { # swarm_with BIN PLAN: wall ms
  local t0 t1
  (cd "$WORK/repo" && reset_all)
  t0=$(now_ms)
  (cd "$WORK/repo" && run_logged "$WORK/run.log" "$1" run -q -j "$NPROC" "$2")
  t1=$(now_ms)
  # What it merged, checked against the script by hand's at the end.
  local name
  name=$(basename "$2" .toml)
  git -C "$WORK/repo" rev-parse "swarm/$name^{tree}" > "$WORK/tree-$name"
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", b - a }'
}
by_hand() {
  local repo=$WORK/byhand
  rm -rf "$repo" "$WORK/byhand-wt" && cp -r "$WORK/repo.orig" "$repo" && cd "$repo"
  git checkout -q -b integration
  for i in $(seq 0 $((N - 1))); do
    d=$(printf '%03d' "$i")
    git worktree add -q -b "task-$i" "$WORK/byhand-wt/$i" main
    (cd "$WORK/byhand-wt/$i" && echo "t-$d" > "src/d$d/new.txt" && git add -A && git commit -qm "task $i")
    git merge -q --no-ff --no-edit "task-$i"
    git worktree remove --force "$WORK/byhand-wt/$i"
  done
}
hand_ms() {
  local t0 t1
  t0=$(now_ms); run_logged "$WORK/hand.log" by_hand; t1=$(now_ms)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", b - a }'
}

rows=(sandboxed none hand)
[ -n "${BASELINE:-}" ] && rows+=(baseline)
declare -A walls
for _ in $(seq "$RUNS"); do
  for row in "${rows[@]}"; do
    case $row in
      sandboxed) ms=$(swarm_with "$SWARM" "$WORK/sandboxed.toml") ;;
      none) ms=$(swarm_with "$SWARM" "$WORK/none.toml") ;;
      hand) ms=$(hand_ms) ;;
      baseline) ms=$(swarm_with "$BASELINE" "$WORK/sandboxed.toml") ;;
    esac
    walls[$row]+="$ms "
  done
done
med() { tr ' ' '\n' <<<"${walls[$1]}" | grep . | median_of; }
# The same tree every way: each task's one file (its id), merged.
tree_hand=$(git -C "$WORK/byhand" rev-parse 'integration^{tree}')
for run in sandboxed none; do
  [ "$(cat "$WORK/tree-$run")" = "$tree_hand" ] ||
    { echo "${0##*/}: swarm's $run run merged another tree than the script by hand" >&2; exit 1; }
done
same=identical
hand=$(med hand)
baseline_row=
if [ -n "${BASELINE:-}" ]; then
  baseline_row="| baseline swarm ($("$BASELINE" --version | awk '{ print $2 }')), sandboxed | $(med baseline) | $(ratio "$(med baseline)" "$hand")x |"
fi

commit=$(git -C "$ROOT" rev-parse --short HEAD)
section=$(cat <<EOF
## 31. Writing tasks on a large repository, sandboxed

Measured at $commit by \`bench/bigwrite.sh\` ($(date -u +%Y-%m-%d), $(nproc) cores, as $( [ "$(id -u)" = 0 ] && echo root || echo "a user" ), medians of $RUNS
runs, interleaved): $N tasks, each writing one file in a repository of $FILES files (on $FS),
$NPROC at a time, each in a worktree of its own, snapshotted and merged; by hand, the
script a user would write (\`git worktree add -b\`, the command, \`git commit\`, \`git
merge --no-ff\`, \`git worktree remove\`), one task after another. Merged trees: $same.

| how | wall (ms) | vs by hand |
|---|---:|---:|
| by hand | $hand | 1.00x |
| **swarm**, sandboxed | $(med sandboxed) | $(ratio "$(med sandboxed)" "$hand")x |
| swarm, \`sandbox = "none"\` | $(med none) | $(ratio "$(med none)" "$hand")x |
$baseline_row
EOF
)
python3 "$ROOT/bench/benchmarks_md.py" place "$OUT" "## 31. Writing tasks" "$section"
printf '%s\n' "$section"

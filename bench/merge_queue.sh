#!/usr/bin/env bash
# The integration branch as a merge queue (issue 61), on a real crate
# (humantime, from cargo's registry): N command tasks each add a module,
# its `mod` line at one place of src/lib.rs (a shared mod list) and a line
# at the end of CHANGELOG.md, so every pair of them conflicts. Side by
# side, in one run:
#
#   - swarm with `on_conflict = "stop"` (before re-runs): the conflicts left
#     to a person;
#   - swarm re-running on conflict (`predict_conflicts = false`);
#   - swarm re-running and predicting (the default);
#   - by hand: the same commands one after another in one checkout, each
#     committed;
#   - `git rebase` of each task's branch (its command run on the base) onto
#     main in turn, then a fast-forward: the rebases that stop on a
#     conflict (aborted) are what a person would have to resolve;
#   - `swarm land` of the re-run run after main moved by M commits (each
#     touching CHANGELOG.md too): time, re-runs, verify runs.
#
# Prints a Markdown section (BENCHMARKS.md, section 21).
#
#   bench/merge_queue.sh                 # N=16, M=10, medians of 3 runs
#   SMOKE=1 SWARM=target/debug/swarm bench/merge_queue.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
N=$(sized 16 4)
M=$(sized 10 2)
RUNS=${RUNS:-$(sized 3 1)}
cd "$ROOT"
ensure_swarm

CRATE=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/humantime-2.* 2>/dev/null | head -n 1 || true)
[ -n "$CRATE" ] && [ -f "$CRATE/src/lib.rs" ] || {
  echo "${0##*/}: humantime's source is not in cargo's registry (cargo fetch builds it: it is a dependency of swarm)" >&2
  exit 1
}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
WORK=$(mktemp -d "$BENCH_DIR/swarm-bench-mq.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
hermetic_git "$WORK"
OUT=$(bench_out BENCHMARKS.md)

# The one place of lib.rs every task adds its `mod` line after.
ANCHOR=$(grep -m1 -n '^mod ' "$CRATE/src/lib.rs" | cut -d: -f1)

repo() {
  local dir=$1
  rm -rf "$dir"; mkdir -p "$dir"
  cp -r "$CRATE/src" "$CRATE/Cargo.toml" "$dir/"
  printf '# Changelog\n\n## Unreleased\n' > "$dir/CHANGELOG.md"
  git -C "$dir" init -q -b main
  git -C "$dir" add -A; git -C "$dir" commit -q -m base
}

# The command of task K: a module, its mod line, a changelog line.
edit() {
  local k=$1
  printf 'printf '"'"'pub fn ext%s() -> u32 { %s }\\n'"'"' > src/ext%s.rs && sed -i "%sa mod ext%s;" src/lib.rs && echo "- ext%s" >> CHANGELOG.md' \
    "$k" "$k" "$k" "$ANCHOR" "$k" "$k"
}

plan() {
  local name=$1 keys=$2
  printf '[swarm]\nname = "%s"\non_failure = "continue"\n%s\n\n[defaults]\nallow_overlap = true\n' "$name" "$keys"
  for k in $(seq -w 1 "$N"); do
    printf '\n[[task]]\nid = "ext%s"\npaths = ["src/lib.rs", "CHANGELOG.md"]\ncreates = ["src/ext%s.rs"]\nrun = %s\n' \
      "$k" "$k" "$(edit "$k" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')"
  done
}

count() { grep -c "\"event\":\"$2\"" "$1/.swarm/runs/$3/events.jsonl" || true; }

# swarm_mode LABEL KEYS: time, conflicts left, re-runs, holds.
swarm_mode() {
  local label=$1 keys=$2 dir=$WORK/$1 t0 t1
  repo "$dir"
  plan "$label" "$keys" > "$WORK/$label.toml"
  plan_clean "$dir" "$WORK/$label.toml"
  t0=$(now_ms)
  "$SWARM" -C "$dir" run "$WORK/$label.toml" -q > "$WORK/$label.log" 2>&1 || true
  t1=$(now_ms)
  local left
  left=$(grep -c '"status":"conflicted"' "$dir/.swarm/runs/$label/events.jsonl" || true)
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') $left $(count "$dir" task_requeued "$label") $(count "$dir" task_held "$label")"
}

by_hand() {
  local dir=$WORK/hand t0 t1
  repo "$dir"
  t0=$(now_ms)
  for k in $(seq -w 1 "$N"); do
    (cd "$dir" && sh -c "$(edit "$k")" && git add -A && git commit -q -m "ext$k")
  done
  t1=$(now_ms)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", b - a }'
}

rebase_loop() {
  local dir=$WORK/rebase t0 t1 stopped=0
  rm -rf "$WORK"/rebase-t*
  repo "$dir"
  t0=$(now_ms)
  for k in $(seq -w 1 "$N"); do
    git -C "$dir" worktree add -q -b "t$k" "$WORK/rebase-t$k" main
    (cd "$WORK/rebase-t$k" && sh -c "$(edit "$k")" && git add -A && git commit -q -m "ext$k")
  done
  for k in $(seq -w 1 "$N"); do
    if git -C "$WORK/rebase-t$k" rebase -q main >/dev/null 2>&1; then
      git -C "$dir" merge -q --ff-only "t$k"
    else
      git -C "$WORK/rebase-t$k" rebase --abort
      stopped=$((stopped + 1))
    fi
  done
  t1=$(now_ms)
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') $stopped"
}

# land_bench: a re-run run, then main moves by M commits, then land.
land_bench() {
  local dir=$WORK/land t0 t1
  repo "$dir"
  plan "lq" 'verify = "test -f src/lib.rs"' > "$WORK/lq.toml"
  "$SWARM" -C "$dir" run "$WORK/lq.toml" -q > "$WORK/lq.log" 2>&1
  for m in $(seq 1 "$M"); do
    (cd "$dir" && echo "- meanwhile $m" >> CHANGELOG.md && echo "$m" > "moved$m.txt" && git add -A && git commit -q -m "meanwhile $m")
  done
  t0=$(now_ms)
  "$SWARM" -C "$dir" land lq -q > "$WORK/land.log" 2>&1
  t1=$(now_ms)
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') $(count "$dir" task_requeued lq-land) $(count "$dir" run_verified lq-land)"
}

for r in $(seq "$RUNS"); do
  echo "stop $(swarm_mode stop 'on_conflict = "stop"
predict_conflicts = false')" >> "$WORK/rows"
  echo "rerun $(swarm_mode rerun 'predict_conflicts = false')" >> "$WORK/rows"
  echo "predict $(swarm_mode predict '')" >> "$WORK/rows"
  echo "hand $(by_hand)" >> "$WORK/rows"
  echo "rebase $(rebase_loop)" >> "$WORK/rows"
  echo "land $(land_bench)" >> "$WORK/rows"
done

# med LABEL COLUMN: the median of a column (1-based after the label).
med() { awk -v l="$1" -v c="$2" '$1 == l { print $(c + 1) }' "$WORK/rows" | median_of; }

commit=$(git -C "$ROOT" rev-parse --short HEAD)
section=$(cat <<EOF
## 21. Merge queue: conflicts run again, predicted, and landing a run

Measured at $commit by \`bench/merge_queue.sh\` ($(date -u +%Y-%m-%d), medians of $RUNS runs).
$N command tasks on a real crate (humantime $(basename "$CRATE" | sed 's/humantime-//'), from cargo's registry), each adding a
module, its \`mod\` line at one place of \`src/lib.rs\` and a line at the end of
\`CHANGELOG.md\`: every pair of them conflicts.

| how | wall | left to a person | re-runs | tasks held |
|---|---:|---:|---:|---:|
| swarm, \`on_conflict = "stop"\`, no prediction (before this) | $(med stop 1) ms | $(med stop 2) conflicted | 0 | 0 |
| swarm, re-run on conflict, no prediction | $(med rerun 1) ms | $(med rerun 2) | $(med rerun 3) | 0 |
| swarm, re-run and predict (default) | $(med predict 1) ms | $(med predict 2) | $(med predict 3) | $(med predict 4) |
| by hand, the commands one after another, each committed | $(med hand 1) ms | 0 | | |
| \`git rebase\` of each task's branch onto main in turn | $(med rebase 1) ms | $(med rebase 2) rebases stopped | | |

\`swarm land\` of the re-run run after main moved by $M commits (each touching
\`CHANGELOG.md\` too): $(med land 1) ms, $(med land 2) re-runs, $(med land 3) run of the run-wide verify.
EOF
)
python3 "$ROOT/bench/benchmarks_md.py" place "$OUT" "## 21. Merge queue" "$section"
printf '%s\n' "$section"

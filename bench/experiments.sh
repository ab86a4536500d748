#!/usr/bin/env bash
# What an experiment costs over plain tasks: one task with 16 variants
# (each a worktree, a run, a verify, a score, a snapshot; one merge) beside
# 16 independent tasks doing the same work (16 worktrees, runs, verifies,
# snapshots and merges), and the shell script a user would write for
# best-of-16 by hand (worktree, run, verify, score, pick the smallest,
# merge it). Prints a Markdown table (BENCHMARKS.md, section 13).
#
#   bench/experiments.sh            # RUNS=3, in $TMPDIR (on disk)
#   RUNS=5 bench/experiments.sh
#   SMOKE=1 SWARM=target/debug/swarm bench/experiments.sh
#
# Smoke mode (SMOKE=1, see bench/common.sh): 4 variants / tasks instead of
# 16, one run, to check that the script still runs;
# tests/e2e/bench_scripts.rs does so in CI. With SWARM nothing is built. A
# benchmarked command that fails ends the script with a message naming it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
RUNS=${RUNS:-$(sized 3 1)}
K=$(sized 16 4)
cd "$ROOT"
ensure_swarm

# On disk, not tmpfs: a sandboxed worker's view of the file system has a
# /dev of its own, so worktrees under /dev/shm are not reachable in it.
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
WORK=$(mktemp -d "$BENCH_DIR/swarm-bench-exp.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
hermetic_git "$WORK"


# A 100-file repository with a 64 KiB input to compress.
repo() {
  local dir=$1
  rm -rf "$dir"; mkdir -p "$dir/src"
  git -C "$dir" init -q -b main
  for i in $(seq 100); do echo "file $i" > "$dir/src/f$i.txt"; done
  seq 1 12000 > "$dir/input.txt"
  git -C "$dir" add -A; git -C "$dir" commit -q -m base
}

# The work of variant / task K: gzip at level 1..9 (cycling).
WORK_CMD='mkdir -p out && gzip -$(( (K - 1) % 9 + 1 )) -c input.txt > out/input.gz'
VERIFY='gzip -d -c out/input.gz | cmp - input.txt'
SCORE='stat -c %s out/input.gz'

plan_variants() {
  cat <<EOF
[swarm]
name = "exp"
sandbox = "$1"

[[task]]
id = "compress"
creates = ["out"]
variants = $K
run = "K={variant}; ${WORK_CMD}"
verify = "${VERIFY}"
score = "${SCORE}"
pick = "min"
EOF
}

plan_tasks() {
  cat <<EOF
[swarm]
name = "tasks"
sandbox = "$1"

[[task]]
id = "compress-{k}"
matrix = { k = [$(seq -s ', ' 1 "$K")] }
creates = ["out/{k}"]
run = "K={k}; mkdir -p out/{k} && gzip -\$(( ({k} - 1) % 9 + 1 )) -c input.txt > out/{k}/input.gz"
verify = "gzip -d -c out/{k}/input.gz | cmp - input.txt"
EOF
}

# Best-of-16 by hand, 2 at a time: worktree, run, verify, score; then the
# smallest merged. Every variant must get through (they all do, here): one
# that fails fails the function (each is waited for by pid).
by_hand() {
  local dir=$1 pids=()
  cd "$dir"
  for k in $(seq "$K"); do
    (
      # Concurrent `git worktree add`s race on .git/worktrees (git
      # itself does not lock it): one at a time, as swarm does.
      flock ../worktrees.lock git worktree add -q -b "v$k" "../wt$k" HEAD
      cd "../wt$k"
      K=$k sh -c "$WORK_CMD" && sh -c "$VERIFY" \
        && git add -A && git commit -q -m "variant $k" \
        && echo "$(sh -c "$SCORE") $k" > "../score$k"
    ) &
    pids+=($!)
    if (( k % 2 == 0 )); then
      for p in "${pids[@]}"; do wait "$p"; done
      pids=()
    fi
  done
  for p in "${pids[@]}"; do wait "$p"; done
  best=$(sort -n ../score* | awk 'NR == 1 { print $2 }')
  git merge -q --no-ff -m "best of $K: v$best" "v$best"
  for k in $(seq "$K"); do git worktree remove --force "../wt$k"; done
  cd - >/dev/null
}

measure() {
  local what=$1 times=()
  for _ in $(seq "$RUNS"); do
    repo "$WORK/r"
    rm -f "$WORK"/score*
    local t0 t1
    case $what in
      hand)
        t0=$(now_ms); run_logged "$WORK/out" by_hand "$WORK/r"; t1=$(now_ms)
        git -C "$WORK/r" log -1 --format=%s | grep -q "best of $K" || { echo "by hand: no merge" >&2; exit 1; }
        ;;
      variants-*|tasks-*)
        local sandbox=${what#*-} kind=${what%%-*}
        "plan_$kind" "$sandbox" > "$WORK/plan.toml"
        plan_clean "$WORK/r" "$WORK/plan.toml"
        t0=$(now_ms)
        run_logged "$WORK/out" "$SWARM" -C "$WORK/r" run "$WORK/plan.toml" -j 2 -q
        t1=$(now_ms)
        ;;
    esac
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')")
    rm -rf "$HOME/.cache"
  done
  printf '%s\n' "${times[@]}" | median_of
}

hand=$(measure hand)
tasks_none=$(measure tasks-none)
variants_none=$(measure variants-none)
tasks_ll=$(measure tasks-landlock)
variants_ll=$(measure variants-landlock)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

cat <<EOF
| approach (2 at a time, $(nproc) cores, median of $RUNS) | wall time | vs $K tasks |
|---|---:|---:|
| best-of-$K by hand (shell: worktree, run, verify, score, merge the best; no sandbox) | ${hand} ms | $(ratio "$hand" "$tasks_none") |
| swarm, $K independent tasks, \`sandbox = "none"\` | ${tasks_none} ms | 1.00x |
| **swarm, one task with \`variants = $K\`, \`sandbox = "none"\`** | **${variants_none} ms** | **$(ratio "$variants_none" "$tasks_none")** |
| swarm, $K independent tasks, sandboxed | ${tasks_ll} ms | 1.00x |
| **swarm, one task with \`variants = $K\`, sandboxed** | **${variants_ll} ms** | **$(ratio "$variants_ll" "$tasks_ll")** |
EOF

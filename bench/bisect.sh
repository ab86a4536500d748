#!/usr/bin/env bash
# What finding the merge that broke the run-wide verify costs: 64 tasks,
# each merging a file of its own, one of which breaks a verify (a command
# standing in for a test suite: it sleeps VERIFY_SLEEP seconds, then fails
# if any file says BAD). swarm with `[swarm] verify` (verify_every = "end")
# verifies the tip, bisects the 64 merges, takes the culprit's merge out,
# rebuilds the branch and verifies it again. By hand, on the branch the
# same run made without `verify`: verify the tip, `git bisect run` over
# its first-parent merges, `git revert -m 1` the culprit's merge, verify
# again. Prints a Markdown table (BENCHMARKS.md, section 15).
#
#   bench/bisect.sh                    # culprits at merges 8, 33 and 57
#   VERIFY_SLEEP=1 POSITIONS="20" bench/bisect.sh
#   SWARM=/path/to/swarm bench/bisect.sh   # an already built binary
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=64
POSITIONS=${POSITIONS:-"8 33 57"}
VERIFY_SLEEP=${VERIFY_SLEEP:-0.5}
cd "$ROOT"
if [[ -z ${SWARM:-} ]]; then
  cargo build --release --quiet -p swarm --bin swarm
  SWARM=${CARGO_TARGET_DIR:-$ROOT/target}/release/swarm
fi

# On disk, not tmpfs (see bench/experiments.sh).
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
WORK=$(mktemp -d "$BENCH_DIR/swarm-bench-bisect.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
. "$ROOT/bench/common.sh"
hermetic_git "$WORK"

VERIFY="sleep $VERIFY_SLEEP; if grep -l BAD *.txt; then exit 1; fi"

repo() {
  local dir=$1
  rm -rf "$dir"; mkdir -p "$dir"
  git -C "$dir" init -q -b main
  echo "# bench" > "$dir/README.md"
  git -C "$dir" add -A; git -C "$dir" commit -q -m base
}

# plan NAME BAD [VERIFY_KEYS]: N tasks t01..tN, task BAD writes BAD.
plan() {
  local name=$1 bad=$2 keys=${3:-}
  printf '[swarm]\nname = "%s"\non_failure = "continue"\n%s\n' "$name" "$keys"
  for i in $(seq -w 1 $N); do
    local word=ok
    (( 10#$i == bad )) && word=BAD
    printf '\n[[task]]\nid = "t%s"\ncreates = ["t%s.txt"]\nrun = "echo %s > t%s.txt"\n' "$i" "$i" "$word" "$i"
  done
}

# journal_stats RUN: verify runs, probes, seconds from the last merge to the
# end of the run (the verify phase), the culprit.
journal_stats() {
  python3 - "$WORK/r/.swarm/runs/$1/events.jsonl" <<'PY'
import json, sys
from datetime import datetime
ev = [json.loads(l) for l in open(sys.argv[1])]
ts = lambda e: datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()
runs = [e for e in ev if e["event"] == "run_verified"]
first = next(i for i, e in enumerate(ev) if e["event"] == "run_verified")
last_merge = max(i for i, e in enumerate(ev[:first]) if e["event"] == "task_merged")
broken = [e["task"] for e in ev if e["event"] == "verify_broken"]
probes = sum(1 for r in runs if r["purpose"] != "tip")
phase = ts(ev[-1]) - ts(ev[last_merge])
print(len(runs), probes, f"{phase:.2f}", ",".join(broken) or "-")
PY
}

by_hand() {
  local dir=$1 branch=$2 base=$3
  cd "$dir"
  git checkout -q --detach "$branch"
  local runs=1
  if sh -c "$VERIFY" >/dev/null 2>&1; then echo "0 0 - -"; return; fi
  git bisect start --first-parent "$branch" "$base" >/dev/null
  local out
  out=$(git bisect run sh -c "$VERIFY" 2>&1)
  local probes
  probes=$(grep -c '^running' <<<"$out")
  local culprit
  culprit=$(git rev-parse refs/bisect/bad)
  local task
  task=$(git log -1 --format=%B "$culprit" | sed -n 's/^Swarm-Task: //p')
  git bisect reset >/dev/null 2>&1
  git checkout -q -b fixed "$branch"
  git revert -m 1 --no-edit "$culprit" >/dev/null
  sh -c "$VERIFY" >/dev/null 2>&1 || { echo "by hand: still failing" >&2; exit 1; }
  runs=$((runs + probes + 1))
  echo "$runs $probes $task"
  cd - >/dev/null
}

rows=()
for pos in $POSITIONS; do
  repo "$WORK/r"
  base=$(git -C "$WORK/r" rev-parse HEAD)
  # The same tasks without verify: the branch a user would bisect by hand.
  plan plain "$pos" > "$WORK/plain.toml"
  t0=$(now_ms)
  "$SWARM" -C "$WORK/r" run "$WORK/plain.toml" -j 2 -q >"$WORK/out" 2>&1 \
    || { echo "swarm failed (plain):" >&2; cat "$WORK/out" >&2; exit 1; }
  t1=$(now_ms)
  plain_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')

  plan end "$pos" "verify = \"$VERIFY\"" > "$WORK/end.toml"
  t0=$(now_ms)
  "$SWARM" -C "$WORK/r" run "$WORK/end.toml" -j 2 -q >"$WORK/out" 2>&1 && {
    echo "swarm: the verify did not fail" >&2; exit 1; }
  t1=$(now_ms)
  end_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')
  read -r end_runs end_probes end_phase end_culprit < <(journal_stats end)

  plan merge "$pos" "verify = \"$VERIFY\"
verify_every = \"merge\"" > "$WORK/merge.toml"
  t0=$(now_ms)
  "$SWARM" -C "$WORK/r" run "$WORK/merge.toml" -j 2 -q >"$WORK/out" 2>&1 && {
    echo "swarm: the verify did not fail" >&2; exit 1; }
  t1=$(now_ms)
  merge_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')
  read -r merge_runs merge_probes _ merge_culprit < <(journal_stats merge)

  t0=$(now_ms)
  read -r hand_runs hand_probes hand_culprit < <(by_hand "$WORK/r" swarm/plain "$base")
  t1=$(now_ms)
  hand_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1000 }')

  rows+=("| $pos | \`$end_culprit\` in ${end_runs} verifies (${end_probes} probes), **${end_phase} s** after the last merge; run ${end_ms} ms vs ${plain_ms} ms without verify | \`$hand_culprit\` in ${hand_runs} verifies (${hand_probes} probes), ${hand_s} s, plus the revert | \`$merge_culprit\` in ${merge_runs} verifies (${merge_probes} probes); run ${merge_ms} ms |")
  rm -rf "$HOME/.cache"
done

cat <<EOF
| bad merge (of $N) | swarm, \`verify_every = "end"\`: found, verifies, verify phase | by hand: verify, \`git bisect run --first-parent\`, revert, verify | swarm, \`verify_every = "merge"\` |
|---:|---|---|---|
$(printf '%s\n' "${rows[@]}")
EOF
echo "(verify = sleep ${VERIFY_SLEEP}s, then grep; $(nproc) cores; -j 2)"

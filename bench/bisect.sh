#!/usr/bin/env bash
# What finding the merge that broke the run-wide verify costs: 64 tasks,
# each merging a file of its own, one of which breaks a verify (a command
# standing in for a test suite: it sleeps VERIFY_SLEEP seconds, then fails
# if any file says BAD). swarm with `[swarm] verify` (verify_every = "end")
# verifies the tip, bisects the 64 merges, takes the culprit's merge out,
# rebuilds the branch and verifies it again. By hand, on the branch the
# same run made without `verify`: verify the tip, `git bisect run` over
# its first-parent merges, `git revert -m 1` the culprit's merge, verify
# again. And swarm with `verify_concurrency = 3`: three probes per round.
# Prints a Markdown table (BENCHMARKS.md, section 15).
#
#   bench/bisect.sh                    # culprits at merges 8, 33 and 57
#   VERIFY_SLEEP=1 POSITIONS="20" bench/bisect.sh
#   SWARM=/path/to/swarm bench/bisect.sh   # an already built binary
#   SMOKE=1 SWARM=target/debug/swarm bench/bisect.sh
#
# Smoke mode (SMOKE=1, see bench/common.sh): 8 tasks, the culprit at merge
# 3, a 0.05 s verify, to check that the script still runs;
# tests/e2e/bench_scripts.rs does so in CI. A swarm run that ends otherwise
# than expected (0 without verify, 1 when the verify fails) ends the script
# with a message naming it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
N=$(sized 64 8)
POSITIONS=${POSITIONS:-$(sized "8 33 57" 3)}
VERIFY_SLEEP=${VERIFY_SLEEP:-$(sized 0.5 0.05)}
cd "$ROOT"
ensure_swarm

# On disk, not tmpfs (see bench/experiments.sh).
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
WORK=$(mktemp -d "$BENCH_DIR/swarm-bench-bisect.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
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
# Rounds of the search: runs that ran at once share one.
rounds = len({r.get("round", i) for i, r in enumerate(runs) if r["purpose"] != "tip"})
print(len(runs), probes, f"{phase:.2f}", ",".join(broken) or "-", rounds)
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
  probes=$(grep -c '^running' <<<"$out" || true)
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

# swarm_ms NAME EXPECT: milliseconds of one `swarm run` of NAME.toml in the
# repository, which must exit EXPECT (1: the run-wide verify failed, as it
# must); any other exit (a refused plan: 2) ends the script.
swarm_ms() {
  local t0 t1 status=0
  t0=$(now_ms)
  "$SWARM" -C "$WORK/r" run "$WORK/$1.toml" -j 2 -q >"$WORK/out" 2>&1 || status=$?
  t1=$(now_ms)
  if [ "$status" != "$2" ]; then
    echo "bisect.sh: \`swarm run $1.toml\` exited $status, not $2:" >&2
    tail -n 40 "$WORK/out" >&2
    exit 1
  fi
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }'
}

rows=()
for pos in $POSITIONS; do
  repo "$WORK/r"
  base=$(git -C "$WORK/r" rev-parse HEAD)
  # The same tasks without verify: the branch a user would bisect by hand.
  plan plain "$pos" > "$WORK/plain.toml"
  plan_clean "$WORK/r" "$WORK/plain.toml"
  plain_ms=$(swarm_ms plain 0)

  plan end "$pos" "verify = \"$VERIFY\"" > "$WORK/end.toml"
  plan_clean "$WORK/r" "$WORK/end.toml"
  end_ms=$(swarm_ms end 1)
  stats=$(journal_stats end)
  read -r end_runs end_probes end_phase end_culprit end_rounds <<<"$stats"

  plan par "$pos" "verify = \"$VERIFY\"
verify_concurrency = 3" > "$WORK/par.toml"
  plan_clean "$WORK/r" "$WORK/par.toml"
  par_ms=$(swarm_ms par 1)
  stats=$(journal_stats par)
  read -r par_runs _ par_phase par_culprit par_rounds <<<"$stats"

  plan merge "$pos" "verify = \"$VERIFY\"
verify_every = \"merge\"" > "$WORK/merge.toml"
  plan_clean "$WORK/r" "$WORK/merge.toml"
  merge_ms=$(swarm_ms merge 1)
  stats=$(journal_stats merge)
  read -r merge_runs merge_probes _ merge_culprit _ <<<"$stats"

  t0=$(now_ms)
  hand=$(checked by_hand "$WORK/r" swarm/plain "$base")
  read -r hand_runs hand_probes hand_culprit <<<"$hand"
  t1=$(now_ms)
  hand_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1000 }')

  rows+=("| $pos | \`$end_culprit\` in ${end_runs} verifies (${end_probes} probes, ${end_rounds} rounds), **${end_phase} s** after the last merge; run ${end_ms} ms vs ${plain_ms} ms without verify | \`$par_culprit\` in ${par_runs} verifies, ${par_rounds} rounds, **${par_phase} s**; run ${par_ms} ms | \`$hand_culprit\` in ${hand_runs} verifies (${hand_probes} probes), ${hand_s} s, plus the revert | \`$merge_culprit\` in ${merge_runs} verifies (${merge_probes} probes); run ${merge_ms} ms |")
  rm -rf "$HOME/.cache"
done

cat <<EOF
| bad merge (of $N) | swarm, \`verify_every = "end"\`: found, verifies, verify phase | swarm, \`verify_concurrency = 3\` | by hand: verify, \`git bisect run --first-parent\`, revert, verify | swarm, \`verify_every = "merge"\` |
|---:|---|---|---|---|
$(printf '%s\n' "${rows[@]}")
EOF
echo "(verify = sleep ${VERIFY_SLEEP}s, then grep; $(nproc) cores; -j 2)"

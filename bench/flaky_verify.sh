#!/usr/bin/env bash
# The merge queue with a flaky test suite: N tasks each merging a file of
# their own, one of which breaks the run-wide verify, and a verify that
# also fails FLAKE_PCT% of its runs at random (a port taken, a timing), as
# real suites do. Each of REPEAT runs puts the culprit at a random merge;
# the same runs go once with the default `verify_retries = 1` and once
# with `verify_retries = 0` (every failure taken at its word, as swarm did
# before issue 74). Counts, from each run's report.json: verify runs,
# flaky runs, whether the culprit was found, merges wrongly taken out.
# Prints a Markdown table (BENCHMARKS.md, section 15).
#
#   bench/flaky_verify.sh                       # 64 merges, 10 runs, 10%
#   FLAKE_PCT=20 REPEAT=12 bench/flaky_verify.sh
#   SWARM=target/debug/swarm bench/flaky_verify.sh
#   SMOKE=1 SWARM=target/debug/swarm bench/flaky_verify.sh
#
# Smoke mode (SMOKE=1, see bench/common.sh): 8 tasks, 2 runs, a 0.05 s
# verify; tests/e2e/bench_scripts.rs runs it so in CI.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
N=$(sized 64 8)
REPEAT=${REPEAT:-$(sized 10 2)}
FLAKE_PCT=${FLAKE_PCT:-10}
VERIFY_SLEEP=${VERIFY_SLEEP:-$(sized 0.2 0.05)}
SEED=${SEED:-74}
cd "$ROOT"
ensure_swarm

BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
WORK=$(mktemp -d "$BENCH_DIR/swarm-bench-flaky.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
hermetic_git "$WORK"

# One byte of /dev/urandom below the threshold: a flake.
LIMIT=$((FLAKE_PCT * 256 / 100))
VERIFY="sleep $VERIFY_SLEEP; if [ \$(od -An -N1 -tu1 /dev/urandom) -lt $LIMIT ]; then echo flake >&2; exit 1; fi; if grep -l BAD *.txt; then exit 1; fi"

repo() {
  rm -rf "$1"; mkdir -p "$1"
  git -C "$1" init -q -b main
  echo "# bench" > "$1/README.md"
  git -C "$1" add -A; git -C "$1" commit -q -m base
}

# plan NAME BAD RETRIES
plan() {
  printf '[swarm]\nname = "%s"\non_failure = "continue"\nverify = "%s"\nverify_retries = %s\n' "$1" "$(printf '%s' "$VERIFY" | sed 's/\\/\\\\/g; s/"/\\"/g')" "$3"
  for i in $(seq -w 1 $N); do
    local word=ok
    (( 10#$i == $2 )) && word=BAD
    printf '\n[[task]]\nid = "t%s"\ncreates = ["t%s.txt"]\nrun = "echo %s > t%s.txt"\n' "$i" "$i" "$word" "$i"
  done
}

# stats RUN BAD: verify runs, flaky runs, found (1/0), wrongly taken out.
stats() {
  python3 - "$WORK/r/.swarm/runs/$1/report.json" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = "t%0*d" % (len(r["tasks"][0]["id"]) - 1, int(sys.argv[2]))
q = r.get("merge_queue") or {}
runs = r.get("verify_runs", [])
flaky = sum(1 for i, v in enumerate(runs) if not v["passed"]
            and any(w["commit"] == v["commit"] and w["passed"] for w in runs[i + 1:]))
out = [t["id"] for t in r["tasks"] if t["status"] == "broke_verify"]
print(len(runs), flaky, int(bad in out), len([t for t in out if t != bad]))
PY
}

RANDOM=$SEED
positions=()
for _ in $(seq 1 "$REPEAT"); do positions+=($((RANDOM % N + 1))); done

rows=()
for retries in 1 0; do
  total_runs=0 total_flaky=0 found=0 wrong=0 ms=0
  for pos in "${positions[@]}"; do
    repo "$WORK/r"
    name="f$retries-$pos"
    plan "$name" "$pos" "$retries" > "$WORK/$name.toml"
    plan_clean "$WORK/r" "$WORK/$name.toml"
    t0=$(now_ms)
    status=0
    "$SWARM" -C "$WORK/r" run "$WORK/$name.toml" -j 2 -q >"$WORK/out" 2>&1 || status=$?
    t1=$(now_ms)
    if [ "$status" != 1 ] && [ "$status" != 0 ]; then
      echo "flaky_verify.sh: \`swarm run $name.toml\` exited $status:" >&2
      tail -n 40 "$WORK/out" >&2
      exit 1
    fi
    read -r runs flaky hit bad_blames <<<"$(stats "$name" "$pos")"
    total_runs=$((total_runs + runs)); total_flaky=$((total_flaky + flaky))
    found=$((found + hit)); wrong=$((wrong + bad_blames))
    ms=$(awk -v m="$ms" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", m + b - a }')
  done
  rows+=("| $retries | $REPEAT | $(awk -v a=$total_runs -v b=$REPEAT 'BEGIN { printf "%.1f", a / b }') | $total_flaky | $found of $REPEAT | **$wrong** | $(awk -v a=$ms -v b=$REPEAT 'BEGIN { printf "%.1f", a / b / 1000 }') s |")
done

cat <<EOF
| \`verify_retries\` | runs | verify runs per run | flaky runs seen | culprit found | correct merges taken out | time per run |
|---:|---:|---:|---:|---:|---:|---:|
$(printf '%s\n' "${rows[@]}")
EOF
echo "($N merges, one culprit at a random merge, a verify that sleeps ${VERIFY_SLEEP}s and fails ${FLAKE_PCT}% of its runs at random; $(nproc) cores; -j 2)"

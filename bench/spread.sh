#!/usr/bin/env bash
# Section 28 of BENCHMARKS.md: how evenly swarm's shards of a real test
# suite end (the longest shard's time over the mean shard's, "spread") at
# N = 2, 4 and 8 shards after one learning run, beside a split by hand
# (the files in N runs of equal count, as `split -n` deals them) run the
# same way, and beside `pytest -n N`; and what running again only the
# failed tests (`swarm resume --retry-failed`) costs against running the
# whole suite again. The suite is Jinja2's own tests (from its source
# distribution on PyPI), as in section 23.
#
#   bench/spread.sh          # writes section 28 into BENCHMARKS.md
#   SMOKE=1 SWARM=target/debug/swarm OUT=/tmp/b.md bench/spread.sh
#
# Every plan runs two tasks at once (the machine's cores on CI), sandboxed,
# each in its own (warm) worktree (one of Jinja2's tests touches a
# template's modification time, which a read-only checkout refuses). Smoke mode (SMOKE=1, see bench/common.sh): no network, a
# made-up suite run by tests/python-tools' pytest, N = 2 only, one round;
# tests/e2e/bench_scripts.rs runs it in CI. A command that fails ends the
# script with a message naming it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
OUT=$(bench_out "$ROOT/BENCHMARKS.md")
NPROC=$(nproc)
cd "$ROOT"
ensure_swarm
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)

WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/swarm-spread-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
jinja2_suite "$WORK" 'import time\n\ndef test_a@():\n    time.sleep(0.0@)\n'
COUNTS=$(sized "2 4 8" 2)
git init -q -b main && git add -A && git commit -q -m "a test suite"
FILES=$(git ls-files 'tests/test_*.py' | wc -l)
PYTEST="env PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=$PYPATH $VENV/bin/pytest -q -p no:cacheprovider"
# Where the test that fails until mended looks (below), shown to tasks.
MEND=$WORK/mend
mkdir -p "$MEND"
HEAD="[swarm]
concurrency = 2
read_paths = [\"$VENV\", \"$BASE_PREFIX\", \"$MEND\"]
on_failure = \"continue\"
"

sharded_plan() { # sharded_plan FILE N [EXTRA]: the suite in N shards
  cat > "$1" <<PLAN
$HEAD
[[task]]
id = "pytest"
allow_overlap = true
shards = $2
$3
matrix = { file = { glob = "tests/test_*.py" } }
run = "$PYTEST {entries} --junitxml=\$TMPDIR/report.xml"
list_tests = "$PYTEST --collect-only {entries}"
junit = "\$TMPDIR/report.xml"
PLAN
  plan_clean "$REPO" "$1"
}

by_hand_plan() { # by_hand_plan FILE N: N tasks, the files dealt as split -n l/N
  local k=0
  printf '%s\n' "$HEAD" > "$1"
  git ls-files 'tests/test_*.py' > "$WORK/files.txt"
  split -n "l/$2" "$WORK/files.txt" "$WORK/group."
  for g in "$WORK"/group.*; do
    k=$((k + 1))
    printf '[[task]]\nid = "hand-%s"\nallow_overlap = true\nrun = "%s %s"\n\n' \
      "$k" "$PYTEST" "$(tr '\n' ' ' < "$g")" >> "$1"
  done
  rm -f "$WORK"/group.*
  plan_clean "$REPO" "$1"
}

ROUNDS=$(sized 3 1)
rows=""
for n in $COUNTS; do
  sharded_plan "$WORK/shards-$n.toml" "$n" ""
  by_hand_plan "$WORK/hand-$n.toml" "$n"
  # A fresh history per N: the first run learns, the next are measured.
  rm -f "$REPO/.swarm/durations.json"
  timed "$WORK/learn-$n.log" "$SWARM" run -q --name "learn-$n" "$WORK/shards-$n.toml" >/dev/null
  s=""; h=""; w=""
  for r in $(seq 1 "$ROUNDS"); do
    w="$w $(timed "$WORK/s-$n-$r.log" "$SWARM" run -q --name "s-$n-$r" "$WORK/shards-$n.toml")"
    s="$s $(spread_of "s-$n-$r" pytest)"
    timed "$WORK/h-$n-$r.log" "$SWARM" run -q --name "h-$n-$r" "$WORK/hand-$n.toml" >/dev/null
    h="$h $(spread_of "h-$n-$r" hand)"
  done
  # One shard at a time (as on a runner each, where no other shard
  # shares the cores): a run to learn at that pace, then the rounds.
  timed "$WORK/learn1-$n.log" "$SWARM" run -q -j 1 --name "learn1-$n" "$WORK/shards-$n.toml" >/dev/null
  s1=""; h1=""
  for r in $(seq 1 "$ROUNDS"); do
    timed "$WORK/s1-$n-$r.log" "$SWARM" run -q -j 1 --name "s1-$n-$r" "$WORK/shards-$n.toml" >/dev/null
    s1="$s1 $(spread_of "s1-$n-$r" pytest)"
    timed "$WORK/h1-$n-$r.log" "$SWARM" run -q -j 1 --name "h1-$n-$r" "$WORK/hand-$n.toml" >/dev/null
    h1="$h1 $(spread_of "h1-$n-$r" hand)"
  done
  med() { printf '%s\n' $1 | median_of; }
  xdist=$(median_timed "$ROUNDS" "$WORK/xdist-$n" sh -c "$PYTEST -n $n tests")
  rows="$rows| $n | **$(med "$s")** | $(med "$h") | **$(med "$s1")** | $(med "$h1") | $(med "$w") s | $xdist s |
"
  echo "N=$n: swarm spread $(med "$s") (one at a time $(med "$s1")), by hand $(med "$h") ($(med "$h1")); swarm wall $(med "$w") s, pytest -n $n $xdist s"
done

# Running again only what failed: a seeded test fails until a file beside
# the repository exists; the whole suite's second run against
# `swarm resume --retry-failed` once it is mended.
MARK=$MEND/mended
cat > tests/test_zz_seeded.py <<PY
import os

def test_seeded():
    assert os.path.exists("$MARK"), "not mended yet"
PY
git add -A && git commit -q -m "a test that fails until mended"
sharded_plan "$WORK/rerun.toml" 2 ""
rm -f "$REPO/.swarm/durations.json"
"$SWARM" run -q --name rerun-learn "$WORK/rerun.toml" >/dev/null 2>&1 || true
"$SWARM" run -q --name rerun "$WORK/rerun.toml" >/dev/null 2>&1 || true
touch "$MARK"
retry=$(timed "$WORK/retry.log" "$SWARM" resume -q rerun --retry-failed)
whole_run() { "$SWARM" run -q --name "whole-$(date +%s%N)" "$WORK/rerun.toml"; }
whole=$(median_timed "$ROUNDS" "$WORK/whole" whole_run)
retried=$(python3 - "$REPO/.swarm/runs/rerun/report.json" <<'PY'
import json, sys
shards = [t for t in json.load(open(sys.argv[1]))["tasks"] if t["id"].startswith("pytest-")]
print(sum(1 for t in shards if t.get("attempts", 1) > 1))
PY
)

if [ "$SMOKE" = 1 ]; then
  SMOKE_NOTE="**Smoke run (\`SMOKE=1\`): a made-up suite, N = 2, one round; these figures measure nothing.**

"
else
  SMOKE_NOTE=
fi
section=$(cat <<EOF
## 28. Shard spread and running again only what failed

${SMOKE_NOTE}Measured by \`bench/spread.sh\` on $(date -u +%Y-%m-%d) at $COMMIT: $SUITE ($FILES test
files) made a repository; $NPROC cores; pytest and pytest-xdist as pinned in
\`tests/python-tools\`. Every plan runs two tasks at once, sandboxed, in warm worktrees. "Spread" is
the longest shard's time over the mean shard's (1.00: they all end together); swarm's is its
second and later runs' (the first, from a fresh history, learned each file's time and each
shard's start-up from the shards' own JUnit reports; the plan has \`list_tests\`, so a file
longer than a mean shard is split across shards by its tests, each shard listing them with
\`pytest --collect-only\` first); "by hand" runs the same files as N tasks
dealt the way \`split -n l/N\` deals them, in the same conditions. "One at a time" runs the same
plans with \`-j 1\` (after a learning run at that pace): each shard alone on the machine, as on
a CI runner of its own, where two at once on two cores make each shard's time depend on which
other shard shares the cores with it. Medians of $ROUNDS rounds.

| shards | swarm spread | by hand spread | swarm, one at a time | by hand, one at a time | swarm wall | \`pytest -n N\` wall |
|---:|---:|---:|---:|---:|---:|---:|
$rows
A test that fails until it is mended, in its own file, two shards: once mended,
\`swarm resume --retry-failed\` ran only that test again in its shard ($retried shard of 2
ran again) in **$retry s**, where the whole suite's run takes $whole s.
EOF
)
python3 "$ROOT/bench/benchmarks_md.py" place "$OUT" "## 28. Shard spread" "$section"
echo "wrote section 28 of $OUT"

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

ROUNDS=$(sized 5 2)
rows=""
for n in $COUNTS; do
  sharded_plan "$WORK/shards-$n.toml" "$n" ""
  by_hand_plan "$WORK/hand-$n.toml" "$n"
  # A fresh history per N: the first run learns, the next are measured
  # (the first of them groups by what it learned).
  rm -f "$REPO/.swarm/durations.json"
  timed "$WORK/learn-$n.log" "$SWARM" run -q --name "learn-$n" "$WORK/shards-$n.toml" >/dev/null
  s=""; h=""; w=""; runs=""; hands=""
  for r in $(seq 1 "$ROUNDS"); do
    w="$w $(timed "$WORK/s-$n-$r.log" "$SWARM" run -q --name "s-$n-$r" "$WORK/shards-$n.toml")"
    s="$s $(spread_of "s-$n-$r" pytest)"
    runs="$runs s-$n-$r"
    timed "$WORK/h-$n-$r.log" "$SWARM" run -q --name "h-$n-$r" "$WORK/hand-$n.toml" >/dev/null
    h="$h $(spread_of "h-$n-$r" hand)"
    hands="$hands h-$n-$r"
  done
  kept=$(settled $runs)
  k=$(echo $kept | wc -w)
  med() { printf '%s\n' $1 | median_of; }
  sm="$(shard_median_spread pytest $kept) ($k)"
  hm=$(shard_median_spread hand $hands)
  xdist=$(median_timed "$ROUNDS" "$WORK/xdist-$n" sh -c "$PYTEST -n $n tests")
  rows="$rows| $n | **$(med "$s")** | $(med "$h") | $sm | $hm | $(med "$w") s | $xdist s |
"
  echo "N=$n: spread of shard medians: swarm $sm, by hand $hm; per run: swarm $(med "$s"), by hand $(med "$h"); swarm wall $(med "$w") s, pytest -n $n $xdist s"
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

# Selection by paths: a dependency adds a test to one test file; the
# suite in two shards with `affected = true` (only that file runs) against
# the same plan without it (every file runs), each plan's median.
ONE=$(git ls-files 'tests/test_*.py' | head -n 1)
affected_plan() { # affected_plan FILE AFFECTED
  cat > "$1" <<PLAN
$HEAD
[[task]]
id = "edit"
run = "printf 'def test_added():\n    pass\n' >> $ONE"

[[task]]
id = "pytest"
deps = ["edit"]
allow_overlap = true
shards = 2
affected = $2
matrix = { file = { glob = "tests/test_*.py" } }
run = "$PYTEST {entries} --junitxml=\$TMPDIR/report.xml"
junit = "\$TMPDIR/report.xml"
PLAN
  plan_clean "$REPO" "$1"
}
affected_plan "$WORK/affected.toml" true
affected_plan "$WORK/everything.toml" false
affected_run() { "$SWARM" run -q --name "$1-$(date +%s%N)" "$WORK/$1.toml"; }
"$SWARM" run -q --name affected-counted "$WORK/affected.toml" >/dev/null 2>&1
selected=$(median_timed "$ROUNDS" "$WORK/affected" affected_run affected)
everything=$(median_timed "$ROUNDS" "$WORK/everything" affected_run everything)
skipped=$(python3 - "$REPO/.swarm/runs/affected-counted/report.json" <<'PY'
import json, sys
tasks = json.load(open(sys.argv[1]))["tasks"]
print(sum(len((t.get("tests") or {}).get("selected_out", [])) for t in tasks))
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
dealt the way \`split -n l/N\` deals them, in the same conditions. $ROUNDS measured rounds, each
with the default \`shard_grouping = "stable"\` (a run regroups when that shortens its longest shard
by 10%). "Per run" is the median of the rounds' spreads, as earlier figures of this section were.
"Of shard medians" takes each shard's median time over the last rounds that ran one grouping
(how many, in brackets), then the longest over the mean: that grouping's own balance. On this
machine one shard's time moves by 10-30% from run to run with nothing changed (the same pytest
command by hand, minutes apart: 0.80-1.06 s), and the longest of N such times is over the mean
by that alone, more so the larger N: the medians take that out.

| shards | swarm, per run | by hand, per run | swarm, of shard medians (rounds) | by hand, of shard medians | swarm wall | \`pytest -n N\` wall |
|---:|---:|---:|---:|---:|---:|---:|
$rows
A test that fails until it is mended, in its own file, two shards: once mended,
\`swarm resume --retry-failed\` ran only that test again in its shard ($retried shard of 2
ran again) in **$retry s**, where the whole suite's run takes $whole s.

A task adding a test to one test file (\`$ONE\`), then the suite in two shards after it: with
\`affected = true\` only that file ran ($skipped of $((FILES + 1)) files skipped by selection), the
plan in **$selected s**; without it, every file, $everything s (medians of $ROUNDS runs each).
EOF
)
python3 "$ROOT/bench/benchmarks_md.py" place "$OUT" "## 28. Shard spread" "$section"
echo "wrote section 28 of $OUT"

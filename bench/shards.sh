#!/usr/bin/env bash
# Section 23 of BENCHMARKS.md: a real test suite from PyPI sharded by
# swarm against running it directly. Jinja2's own tests (from its source
# distribution on PyPI; 851 tests in 22 files) made a repository: swarm with
# `shards = "auto"` (as many tasks as it runs at once, entries balanced by
# the times learned on the first run from the shards' own JUnit reports),
# sandboxed, in warm worktrees, on its second run; swarm with one task per file; and
# `pytest` serial and `pytest -n 2` (pytest-xdist) in the same checkout.
# The JUnit swarm merges from the shards' reports is counted against
# pytest's own.
#
#   bench/shards.sh          # writes section 23 into BENCHMARKS.md
#   SMOKE=1 SWARM=target/debug/swarm OUT=/tmp/b.md bench/shards.sh
#
# pytest and pytest-xdist are the versions of tests/python-tools (PyPI),
# in a virtual environment of the benchmark's own with Jinja2's one
# dependency (MarkupSafe). Smoke mode (SMOKE=1, see bench/common.sh): no
# network, a made-up suite of four files run by tests/python-tools' pytest
# (which .ci/run installs); tests/e2e/bench_scripts.rs runs it in CI. A
# command that fails ends the script with a message naming it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
OUT=$(bench_out "$ROOT/BENCHMARKS.md")
NPROC=$(nproc)
cd "$ROOT"
ensure_swarm
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)

WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/swarm-shards-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
jinja2_suite "$WORK" 'def test_a@():\n    assert @\n\ndef test_b@():\n    assert @\n'
git init -q -b main && git add -A && git commit -q -m "a test suite"
FILES=$(git ls-files 'tests/test_*.py' | wc -l)
PYTEST="env PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=$PYPATH $VENV/bin/pytest -q -p no:cacheprovider"

plan() { # plan FILE SHARDS: a plan running the suite in SHARDS shards ("" = a task per file)
  local shards_line="shards = \"$2\"" run_args='{entries}' id=pytest
  if [ -z "$2" ]; then shards_line=; run_args='{file}'; id='test-{file}'; fi
  cat > "$1" <<PLAN
[swarm]
read_paths = ["$VENV", "$BASE_PREFIX"]

[[task]]
id = "$id"
allow_overlap = true
$shards_line
matrix = { file = { glob = "tests/test_*.py" } }
run = "$PYTEST $run_args --junitxml=\$TMPDIR/report.xml"
junit = "\$TMPDIR/report.xml"
PLAN
  plan_clean "$REPO" "$1"
}
plan "$WORK/sharded.toml" auto
plan "$WORK/per-file.toml" ""

ROUNDS=$(sized 3 1)
med() { # med NAME CMD...: the median of ROUNDS timed runs, logs in $WORK
  local name=$1; shift
  median_timed "$ROUNDS" "$WORK/$name" "$@"
}
# The first run learns each file's time; the next ones are measured (each
# a run of its own, the history as the first left it plus their own).
timed "$WORK/learn.log" "$SWARM" run -q --name learn "$WORK/sharded.toml" >/dev/null
# Each timed run is a subshell's: its name is kept in a file for after.
swarm_sharded() {
  local name; name=s$(date +%s%N)
  echo "$name" > "$WORK/last"
  "$SWARM" run -q --name "$name" --junit "$WORK/$name.xml" "$WORK/sharded.toml"
}
s_sharded=$(med sharded swarm_sharded)
last=$(cat "$WORK/last")
swarm_per_file() { "$SWARM" run -q --name "f$(date +%s%N)" "$WORK/per-file.toml"; }
s_per_file=$(med per-file swarm_per_file)
serial=$(med serial sh -c "$PYTEST --junitxml=$WORK/pytest.xml tests")
xdist=$(med xdist sh -c "$PYTEST -n 2 tests")
echo "swarm sharded $s_sharded s, per file $s_per_file s, pytest $serial s, pytest -n 2 $xdist s"

# The tests swarm's JUnit counts against pytest's own.
count() { python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
print(sum(1 for _ in cases))
PY
}
swarm_tests=$(count "$WORK/$last.xml")
pytest_tests=$(count "$WORK/pytest.xml")
[ "$swarm_tests" = "$pytest_tests" ] || { echo "shards.sh: swarm's JUnit has $swarm_tests tests, pytest's $pytest_tests" >&2; exit 1; }
shards=$(shard_sizes "$REPO/.swarm/runs/$last/events.jsonl")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

if [ "$SMOKE" = 1 ]; then
  SMOKE_NOTE="**Smoke run (\`SMOKE=1\`): a made-up suite, one round; these figures measure nothing.**

"
else
  SMOKE_NOTE=
fi
section=$(cat <<EOF
## 23. A test suite sharded: \`shards = "auto"\` against pytest and pytest-xdist

${SMOKE_NOTE}Measured by \`bench/shards.sh\` on $(date -u +%Y-%m-%d) at $COMMIT: $SUITE ($pytest_tests tests in $FILES
files) made a repository; $NPROC cores; pytest and pytest-xdist as pinned in
\`tests/python-tools\`. swarm runs sandboxed tasks in their own (warm) worktrees, each writing a
JUnit report (\`junit = "\$TMPDIR/report.xml"\`); not read-only ones, as one of Jinja2's tests
touches a template's modification time. The sharded plan's second and later runs are measured
(the first learned each file's time from the reports). Medians of $ROUNDS runs, wall time.

| $pytest_tests tests in $FILES files | wall time | against \`pytest -n 2\` |
|---|---:|---:|
| **swarm, \`shards = "auto"\` ($shards files per shard), second run** | **$s_sharded s** | **$(ratio "$s_sharded" "$xdist")x** |
| swarm, one task per file | $s_per_file s | $(ratio "$s_per_file" "$xdist")x |
| \`pytest\` (serial) | $serial s | $(ratio "$serial" "$xdist")x |
| \`pytest -n 2\` (pytest-xdist) | $xdist s | 1.00x |

The JUnit swarm merged from the shards' own reports holds $swarm_tests test cases, as pytest's
own report does ($pytest_tests). A task per file pays an interpreter and a collection per file;
a shard pays them once for its files, and the files are grouped by their learned times so
that the shards end together.
EOF
)
python3 "$ROOT/bench/benchmarks_md.py" place "$OUT" "## 23. A test suite sharded" "$section"
echo "wrote section 23 of $OUT"

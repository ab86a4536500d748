#!/usr/bin/env bash
# Section 30 of BENCHMARKS.md: how evenly swarm's shards of a real crate's
# tests end under `cargo nextest` (the longest shard's time over the mean
# shard's, "spread") at N = 2, 4 and 8 shards after learning runs, beside
# nextest's own split by hand (`cargo nextest run --partition count:K/N`,
# N tasks run the same way) and beside one `cargo nextest run` of the
# whole suite. The crate is itertools 0.13.0 (from crates.io), whose
# `tests/specializations.rs` takes about two thirds of the suite's time:
# no grouping of whole files balances it, so swarm's plan has
# `list_tests` (nextest's list) and splits that file by its tests.
#
#   bench/spread_cargo.sh    # writes section 30 into BENCHMARKS.md
#   SMOKE=1 SWARM=target/debug/swarm OUT=/tmp/b.md bench/spread_cargo.sh
#
# Every plan runs two tasks at once (the machine's cores on CI), sandboxed,
# each in its own warm worktree with its own kept target directory (built
# by the first run, so the measured runs build nothing). NEXTEST=PATH, else
# `cargo-nextest` on PATH (.ci/run installs it). Smoke mode (SMOKE=1, see
# bench/common.sh): a made-up crate without dependencies, N = 2, one round,
# no network; tests/e2e/bench_scripts.rs runs it in CI. A command that
# fails ends the script with a message naming it. THREADS=K runs every
# `cargo nextest run` here with `--test-threads K` (default: nextest's,
# one a core; in smoke mode 1, so that what is split does not turn on the
# machine's cores). COUNTS="4 8" measures those shard counts only. Last,
# BOUND_ROUNDS runs of the whole suite one test at a
# time (each test's time its own in nextest's JUnit) and
# bench/spread_bound.py's grouping of them: how evenly any grouping made
# before a run could end, given the tests' own run-to-run noise. And for
# each N, bench/spread_schedule.py: how far from what swarm's shards' tests
# took as they ran two models of a shard's time are (the scaled sum swarm
# groups by, and a list schedule over the run's test threads).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
OUT=$(bench_out "$ROOT/BENCHMARKS.md")
NPROC=$(nproc)
machines_cargo
NEXTEST=${NEXTEST:-$(command -v cargo-nextest || true)}
[ -n "$NEXTEST" ] || { echo "spread_cargo.sh: cargo-nextest is not installed (NEXTEST=PATH, or .ci/run installs it)" >&2; exit 1; }
cd "$ROOT"
ensure_swarm
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
[ "$SMOKE" = 1 ] && THREADS=${THREADS:-1}
RUN_ARGS=${THREADS:+--test-threads $THREADS}

WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/swarm-spread-cargo-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
hermetic_git "$WORK"
REPO=$WORK/crate
if [ "$SMOKE" = 1 ]; then
  mkdir -p "$REPO/src" "$REPO/tests"
  printf '[package]\nname = "tiny"\nversion = "0.1.0"\nedition = "2021"\n' > "$REPO/Cargo.toml"
  printf 'pub fn one() -> u32 {\n    1\n}\n' > "$REPO/src/lib.rs"
  # Long enough beside a shard's start-up (under load too) to be split:
  # 8 s on one thread, split in two while a start-up (which each part
  # pays, and a listing) is under about 2.9 s.
  for i in 0 1 2 3 4 5 6 7; do
    printf '#[test]\nfn slow_%s() {\n    std::thread::sleep(std::time::Duration::from_millis(1000));\n}\n\n' "$i"
  done > "$REPO/tests/big.rs"
  for name in a b; do
    printf '#[test]\nfn %s() {\n    assert_eq!(tiny::one(), 1);\n}\n' "$name" > "$REPO/tests/$name.rs"
  done
  SUITE="a made-up crate's integration tests"
else
  itertools_crate "$WORK" "$REPO"
  SUITE="the integration tests of itertools 0.13.0 (from crates.io)"
fi
cd "$REPO"
crate_fetched "$WORK"
mkdir -p .config
printf '[profile.default.junit]\npath = "junit.xml"\n' > .config/nextest.toml
git init -q -b main && git add -A && git commit -q -m "a crate"
FILES=$(git ls-files 'tests/*.rs' | wc -l)
TARGETS=$(git ls-files 'tests/*.rs' | sed 's|tests/||; s|\.rs$||' | sed 's/^/--test /' | tr '\n' ' ')
COUNTS=${COUNTS:-$(sized "2 4 8" 2)}
HEAD="[swarm]
concurrency = 2
on_failure = \"continue\"
"

sharded_plan() { # sharded_plan FILE N [EXTRA]: the suite in N shards, as the book's recipe
  cat > "$1" <<PLAN
$HEAD
[[task]]
id = "nextest"
allow_overlap = true
shards = $2
${3:-}
matrix = { file = { glob = "tests/*.rs" } }
run = '''$NEXTEST nextest run --offline --no-fail-fast $RUN_ARGS \$(for e in {entries}; do f=\${e%%::*}; b=\${f##*/}; b=\${b%.rs}; case \$e in *::*) printf -- "-E binary(=%s)&test(=%s) " "\$b" "\${e#*::}";; *) printf -- "-E binary(=%s) " "\$b";; esac; done)'''
list_tests = '''$NEXTEST nextest list --offline --message-format oneline \$(for f in {entries}; do b=\${f##*/}; printf -- "--test %s " "\${b%.rs}"; done)'''
junit = "target/nextest/default/junit.xml"
PLAN
  plan_clean "$REPO" "$1"
}

by_hand_plan() { # by_hand_plan FILE N: N tasks, nextest's own split
  local k
  printf '%s\n' "$HEAD" > "$1"
  for k in $(seq 1 "$2"); do
    printf '[[task]]\nid = "hand-%s"\nallow_overlap = true\nrun = "%s nextest run --offline --no-fail-fast %s--partition count:%s/%s %s"\n\n' \
      "$k" "$NEXTEST" "${RUN_ARGS:+$RUN_ARGS }" "$k" "$2" "$TARGETS" >> "$1"
  done
  plan_clean "$REPO" "$1"
}

# ran RUN: how many tests the run's tasks passed, by nextest's own lines.
ran() { cat "$REPO/.swarm/runs/$1"/logs/*/1.err | grep -c ' PASS \[' || true; }

# The baseline builds first, then runs the same test targets.
run_logged "$WORK/build.log" "$NEXTEST" nextest run --offline --no-run $TARGETS
ROUNDS=$(sized 5 2)
whole=$(median_timed "$ROUNDS" "$WORK/whole" "$NEXTEST" nextest run --offline --no-fail-fast $RUN_ARGS $TARGETS)
tests=$(grep -c ' PASS \[' "$WORK/whole-1.log" || true)

# The bound: the tests' own times, run by run.
BOUND_ROUNDS=${BOUND_ROUNDS:-$(sized 6 2)}
for r in $(seq 1 "$BOUND_ROUNDS"); do
  run_logged "$WORK/one-$r.log" "$NEXTEST" nextest run --offline --no-fail-fast --test-threads 1 $TARGETS
  cp target/nextest/default/junit.xml "$WORK/one-$r.xml"
done
bound=$(python3 "$ROOT/bench/spread_bound.py" "$COUNTS" "$WORK"/one-*.xml)

rows=""
models=""
for n in $COUNTS; do
  sharded_plan "$WORK/shards-$n.toml" "$n"
  by_hand_plan "$WORK/hand-$n.toml" "$n"
  # A fresh history per N: the first run builds (each new warm worktree's
  # target directory) and learns, the second learns a shard's start-up
  # without a build, the next are measured.
  rm -f "$REPO/.swarm/durations.json"
  for learn in 1 2; do
    timed "$WORK/learn-$n-$learn.log" "$SWARM" run -q --name "learn-$n-$learn" "$WORK/shards-$n.toml" >/dev/null
  done
  timed "$WORK/hand-learn-$n.log" "$SWARM" run -q --name "hand-learn-$n" "$WORK/hand-$n.toml" >/dev/null
  split=$("$SWARM" validate "$WORK/shards-$n.toml" | grep -c 'split in' || true)
  s=""; h=""; w=""; hw=""; runs=""; hands=""
  for r in $(seq 1 "$ROUNDS"); do
    w="$w $(timed "$WORK/s-$n-$r.log" "$SWARM" run -q --name "s-$n-$r" "$WORK/shards-$n.toml")"
    s="$s $(spread_of "s-$n-$r" nextest)"
    runs="$runs s-$n-$r"
    [ "$(ran "s-$n-$r")" = "$tests" ] || { echo "spread_cargo.sh: run s-$n-$r passed $(ran "s-$n-$r") tests, nextest alone $tests" >&2; exit 1; }
    hw="$hw $(timed "$WORK/h-$n-$r.log" "$SWARM" run -q --name "h-$n-$r" "$WORK/hand-$n.toml")"
    h="$h $(spread_of "h-$n-$r" hand)"
    hands="$hands h-$n-$r"
  done
  kept=$(settled $runs)
  k=$(echo $kept | wc -w)
  med() { printf '%s\n' $1 | median_of; }
  sm="$(shard_median_spread nextest $kept) ($k)"
  hm=$(shard_median_spread hand $hands)
  rows="$rows| $n | $split | **$(med "$s")** | $(med "$h") | $sm | $hm | $(med "$w") s | $(med "$hw") s |
"
  models="$models- N = $n: $(python3 "$ROOT/bench/spread_schedule.py" "$REPO" nextest $runs)
"
  echo "N=$n: spread of shard medians: swarm $sm ($split split), by hand $hm; per run: swarm $(med "$s"), by hand $(med "$h"); swarm wall $(med "$w") s, by hand $(med "$hw") s"
done

if [ "$SMOKE" = 1 ]; then
  SMOKE_NOTE="**Smoke run (\`SMOKE=1\`): a made-up crate, N = 2, one round; these figures measure nothing.**

"
else
  SMOKE_NOTE=
fi
section=$(cat <<EOF
## 30. Shard spread of a crate's tests under cargo nextest

${SMOKE_NOTE}Measured by \`bench/spread_cargo.sh\` on $(date -u +%Y-%m-%d) at $COMMIT: $SUITE ($tests tests in
$FILES files) made a repository; $NPROC cores; $("$NEXTEST" --version | head -n 1). Every plan
runs two tasks at once, sandboxed, each in its warm worktree${THREADS:+ (nextest with \`--test-threads $THREADS\`)} with its own target directory
(built by a first run). "Spread" is the longest shard's time over the mean shard's (1.00: they
all end together). swarm's shards run the book's nextest recipe with \`list_tests\` (nextest's
list), so a file longer than a mean shard is split across shards by its tests; its runs after
two learning runs are measured (the first builds and learns each file's time from nextest's
JUnit, the second a shard's start-up without a build). "By hand" is nextest's own split, N
tasks of \`cargo nextest run --partition count:K/N\`, run the same way. Every measured swarm run
passed the $tests tests one \`cargo nextest run\` passes. $ROUNDS measured rounds, each with the
default \`shard_grouping = "stable"\`. "Per run" is the median of the rounds' spreads, as earlier
figures of this section were; "of shard medians" takes each shard's median time over the last
rounds that ran one grouping (how many, in brackets), then the longest over the mean: that
grouping's own balance, one shard's run-to-run variation taken out (section 28).

| shards | files split | swarm, per run | by hand, per run | swarm, of shard medians (rounds) | by hand, of shard medians | swarm wall | by hand wall |
|---:|---:|---:|---:|---:|---:|---:|---:|
$rows
One \`cargo nextest run\` of the whole suite in one checkout (its own parallelism, after a build):
$whole s.

What a shard's tests took as they ran (their span, by nextest's timestamps) beside two models
of it made from the same run's JUnit times (\`bench/spread_schedule.py\`, swarm's runs above): the
scaled sum swarm weighs a shard by (its tests' summed times times the task's span over summed
time), and a list schedule (its tests in nextest's order, each started on the first of the
run's test threads to come free):

$models
### What any grouping made before a run can do

$BOUND_ROUNDS runs of the whole suite with \`--test-threads 1\` (each test's JUnit time its own), and
\`bench/spread_bound.py\`: the tests grouped into N shards by their mean time over all of these
runs (longest first onto the least loaded shard, then moves and swaps while they lower the
longest), finer than a runner allows (any test in any shard, no start-up, no file kept
together) and knowing more than any learning does (the mean of the very runs it is judged on);
each run's spread is then its shards' sums, longest over mean. "Held out" groups by the other
runs' means and is judged on the run left out. What stays above 1.00 is the tests' own
run-to-run variation.

$bound
EOF
)
python3 "$ROOT/bench/benchmarks_md.py" place "$OUT" "## 30. Shard spread of a crate" "$section"
echo "wrote section 30 of $OUT"

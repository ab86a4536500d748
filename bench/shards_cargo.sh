#!/usr/bin/env bash
# Section 24 of BENCHMARKS.md: a Rust crate's integration tests sharded by
# swarm against `cargo test` and `cargo nextest` in one checkout. The crate
# is itertools 0.13.0 (from crates.io: 12 test files, 570-odd tests),
# made a git repository; swarm runs `shards = "auto"` over its
# `tests/*.rs` (each shard `cargo test --test ...` its files, in its warm
# worktree with its own kept target directory), sandboxed, on its second
# run (the first built everything and learned each file's time: cargo's
# stable test runner writes no JUnit, so a shard's time split evenly over
# its files). Baselines run the same test targets after a build: `cargo test`
# (a binary at a time, each binary's tests in threads) and `cargo nextest
# run` (every test its own process, all binaries at once) when nextest is
# installed (NEXTEST=PATH, else `cargo-nextest` on PATH).
#
#   bench/shards_cargo.sh    # writes section 24 into BENCHMARKS.md
#   SMOKE=1 SWARM=target/debug/swarm OUT=/tmp/b.md bench/shards_cargo.sh
#
# Smoke mode (SMOKE=1, see bench/common.sh): a made-up crate of three test
# files without dependencies, one round, no network; tests/e2e/bench_scripts.rs
# runs it in CI. A command that fails ends the script with a message naming it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
OUT=$(bench_out "$ROOT/BENCHMARKS.md")
NPROC=$(nproc)
machines_cargo
NEXTEST=${NEXTEST:-$(command -v cargo-nextest || true)}
cd "$ROOT"
ensure_swarm
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)

WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/swarm-shards-cargo-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
hermetic_git "$WORK"
REPO=$WORK/crate
if [ "$SMOKE" = 1 ]; then
  mkdir -p "$REPO/src" "$REPO/tests"
  printf '[package]\nname = "tiny"\nversion = "0.1.0"\nedition = "2021"\n' > "$REPO/Cargo.toml"
  printf 'pub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n' > "$REPO/src/lib.rs"
  for i in 1 2 3; do
    printf '#[test]\nfn adds_%s() {\n    assert_eq!(tiny::add(%s, 1), %s);\n}\n' "$i" "$i" "$((i + 1))" > "$REPO/tests/t$i.rs"
  done
  CRATE="a made-up crate"
  SUITE="a made-up crate's integration tests"
else
  itertools_crate "$WORK" "$REPO"
  CRATE="itertools 0.13.0 (crates.io)"
  SUITE="the integration tests of itertools 0.13.0 (from crates.io)"
fi
cd "$REPO"
crate_fetched "$WORK"
git init -q -b main && git add -A && git commit -q -m "$CRATE"
FILES=$(git ls-files 'tests/*.rs' | wc -l)
TARGETS=$(git ls-files 'tests/*.rs' | sed 's|tests/||; s|\.rs$||' | sed 's/^/--test /' | tr '\n' ' ')

cat > "$WORK/plan.toml" <<PLAN
[[task]]
id = "tests"
allow_overlap = true
shards = "auto"
matrix = { file = { glob = "tests/*.rs" } }
run = 'cargo test --offline \$(for f in {entries}; do n=\${f#tests/}; printf -- "--test %s " "\${n%.rs}"; done)'
PLAN
plan_clean "$REPO" "$WORK/plan.toml"

ROUNDS=$(sized 3 1)
med() { # med NAME CMD...: the median of ROUNDS timed runs, logs in $WORK
  local name=$1; shift
  median_timed "$ROUNDS" "$WORK/$name" "$@"
}
# The first run builds each shard's target directory and learns the
# files' times; the later ones are measured.
timed "$WORK/learn.log" "$SWARM" run -q --name learn "$WORK/plan.toml" >/dev/null
swarm_run() {
  local name; name=s$(date +%s%N)
  echo "$name" > "$WORK/last"
  "$SWARM" run -q --name "$name" "$WORK/plan.toml"
}
s_sharded=$(med sharded swarm_run)
last=$(cat "$WORK/last")
# The baselines build first, then run the same test targets.
run_logged "$WORK/build.log" cargo test --offline --no-run $TARGETS
serial=$(med cargo cargo test --offline $TARGETS)
nextest_row=
if [ -n "$NEXTEST" ]; then
  run_logged "$WORK/nextest-build.log" "$NEXTEST" nextest run --offline --no-run $TARGETS
  nextest=$(med nextest "$NEXTEST" nextest run --offline $TARGETS)
  nextest_row="| \`cargo nextest run\` | $nextest s |"
fi
echo "swarm sharded $s_sharded s, cargo test $serial s, nextest ${nextest:-n/a} s"

# The tests each side ran: libtest's "N passed" lines.
passed() { grep -ho 'test result: ok\. [0-9]* passed' "$@" | awk '{ s += $4 } END { print s + 0 }'; }
swarm_tests=$(passed "$REPO"/.swarm/runs/"$last"/logs/*/1.out)
cargo_tests=$(passed "$WORK/cargo-1.log")
[ "$swarm_tests" = "$cargo_tests" ] || { echo "shards_cargo.sh: swarm's shards ran $swarm_tests tests, cargo test $cargo_tests" >&2; exit 1; }
shards=$(shard_sizes "$REPO/.swarm/runs/$last/events.jsonl")

if [ -n "$NEXTEST" ]; then
  nextest_note="nextest: $("$NEXTEST" --version | head -n 1)."
else
  nextest_note="cargo-nextest is not installed on this machine: no row for it."
fi
if [ "$SMOKE" = 1 ]; then
  SMOKE_NOTE="**Smoke run (\`SMOKE=1\`): a made-up crate, one round; these figures measure nothing.**

"
else
  SMOKE_NOTE=
fi
section=$(cat <<EOF
## 24. A Rust crate's tests sharded: \`shards = "auto"\` against cargo test and nextest

${SMOKE_NOTE}Measured by \`bench/shards_cargo.sh\` on $(date -u +%Y-%m-%d) at $COMMIT: $SUITE
($cargo_tests tests in $FILES files under \`tests/\`) made a repository; $NPROC cores. swarm runs
\`shards = "auto"\` sandboxed, each shard \`cargo test --offline --test ...\` its files in its
warm worktree with its own kept target directory; its second and later runs are measured
(nothing left to build). \`cargo test\` and \`cargo nextest run\` run the same test targets
after a build. Cargo's stable test runner writes no JUnit: the shards' files are balanced by
the shards' times split evenly. Medians of $ROUNDS runs, wall time.

| $cargo_tests tests in $FILES files | wall time |
|---|---:|
| **swarm, \`shards = "auto"\` ($shards files per shard), second run** | **$s_sharded s** |
| \`cargo test\` (a binary at a time) | $serial s |
$nextest_row

swarm's shards ran $swarm_tests tests, as \`cargo test\` did ($cargo_tests). $nextest_note
EOF
)
python3 "$ROOT/bench/benchmarks_md.py" place "$OUT" "## 24. A Rust crate's tests sharded" "$section"
echo "wrote section 24 of $OUT"

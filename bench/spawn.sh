#!/usr/bin/env bash
# What a sandboxed spawn costs against a plain one, and against an older
# build (issue 32): each loop of the spawn driver alone (`bench_spawn SWARM
# N DIR MODE`: one at a time, or two at a time with a 2), every loop of a
# round run before the next round starts, so that a busy moment of this
# machine hits every loop alike; medians of ROUNDS. CPU is user + system of
# the whole loop (`/bin/true`, the launcher and its cells included), from
# the kernel. Prints a Markdown table (BENCHMARKS.md, section 5).
#
#   bench/spawn.sh                                   # ROUNDS=7, N=1000
#   BASELINE=/path/to/older/swarm bench/spawn.sh     # adds its loops
#   SMOKE=1 SWARM=target/debug/swarm BENCH_BIN_DIR=target/debug/examples bench/spawn.sh
#
# The per-round ratio is each round's sandboxed loop over the plain loop
# of the same round: on a VM whose speed drifts, it holds better than the
# ratio of the medians.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
ROUNDS=${ROUNDS:-$(sized 7 1)}
N=${N:-$(sized 1000 10)}
cd "$ROOT"
ensure_swarm
if [ -z "${BENCH_BIN_DIR:-}" ]; then
  cargo build --release --quiet -p swarm --example bench_spawn
  BENCH_BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples
fi
BENCH_SPAWN=$BENCH_BIN_DIR/bench_spawn
[ -x "$BENCH_SPAWN" ] || { echo "spawn.sh: $BENCH_SPAWN is missing (BENCH_BIN_DIR=$BENCH_BIN_DIR)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/swarm-bench-spawn.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/dir" "$WORK/home"

# loop BIN MODE: "us_per_spawn cpu_s" of one loop.
loop() {
  local us
  us=$(HOME=$WORK/home checked /usr/bin/time -o "$WORK/time.out" -f "%U %S" \
    "$BENCH_SPAWN" "$1" "$N" "$WORK/dir" "$2")
  awk -v us="$us" '{ printf "%s %.3f\n", us, $1 + $2 }' "$WORK/time.out"
}

builds=("$SWARM")
names=("this build")
if [ -n "${BASELINE:-}" ]; then
  builds+=("$BASELINE")
  names+=("baseline ($("$BASELINE" --version | awk '{ print $2 }'))")
fi
declare -A us cpu
for _ in $(seq "$ROUNDS"); do
  for mode in plain sandboxed plain2 sandboxed2; do
    case $mode in plain*) which=(0) ;; *) which=("${!builds[@]}") ;; esac
    for b in "${which[@]}"; do
      read -r u c < <(loop "${builds[$b]}" "$mode")
      us[$mode,$b]+="$u "
      cpu[$mode,$b]+="$c "
    done
  done
done

med() { tr ' ' '\n' <<<"$1" | grep . | median_of; }
# per_round A B: the median over rounds of A's figure over B's.
per_round() {
  paste <(tr ' ' '\n' <<<"$1" | grep .) <(tr ' ' '\n' <<<"$2" | grep .) |
    awk '{ printf "%.4f\n", $1 / $2 }' | median_of | awk '{ printf "%.2f", $1 }'
}

COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
echo "Measured by \`bench/spawn.sh\` at commit $COMMIT on $(date -u +%Y-%m-%d): $(nproc) cores,"
echo "$N spawns of \`/bin/true\` a loop, each loop alone, $ROUNDS interleaved rounds, medians."
echo
echo "| loop | one at a time (µs) | vs plain, per round | CPU of $N (s) | two at a time (µs) | vs plain, per round | CPU of $N (s) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
echo "| plain (tokio, own process group) | $(med "${us[plain,0]}") | 1.00x | $(med "${cpu[plain,0]}") | $(med "${us[plain2,0]}") | 1.00x | $(med "${cpu[plain2,0]}") |"
for b in "${!builds[@]}"; do
  echo "| sandboxed, ${names[$b]} | $(med "${us[sandboxed,$b]}") | $(per_round "${us[sandboxed,$b]}" "${us[plain,0]}")x | $(med "${cpu[sandboxed,$b]}") | $(med "${us[sandboxed2,$b]}") | $(per_round "${us[sandboxed2,$b]}" "${us[plain2,0]}")x | $(med "${cpu[sandboxed2,$b]}") |"
done
# What one hop from a process to another costs here (bench/floor.c's
# wake mode, no swarm code): a sandboxed spawn takes several (coordinator,
# launcher, cell, worker, init, and back), a plain one hardly any. Needs gcc
# and two CPUs.
if command -v gcc > /dev/null && [ "$(nproc)" -ge 2 ]; then
  gcc -O2 -o "$WORK/floor" "$ROOT/bench/floor.c"
  read -r apart together < <(checked "$WORK/floor" wake "$(sized 20000 100)")
  echo
  echo "A round trip between two processes over pipes (\`floor wake\`): $apart µs between two CPUs,"
  echo "$together µs on one."
else
  echo
  echo "(The round trip between two processes, bench/floor.c's wake mode, is left out: it needs gcc and two CPUs.)"
fi
if [ -n "${BASELINE:-}" ]; then
  echo
  echo "This build over the baseline, per round: one at a time $(per_round "${us[sandboxed,0]}" "${us[sandboxed,1]}")x,"
  echo "CPU $(per_round "${cpu[sandboxed,0]}" "${cpu[sandboxed,1]}")x; two at a time $(per_round "${us[sandboxed2,0]}" "${us[sandboxed2,1]}")x,"
  echo "CPU $(per_round "${cpu[sandboxed2,0]}" "${cpu[sandboxed2,1]}")x."
fi

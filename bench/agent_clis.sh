#!/usr/bin/env bash
# Agent CLIs as workers (issue 33): what Claude Code and Codex cost as a
# sandboxed task beside swarm's own agent, on the same scripted exchange
# with the tests' mock model (a shell command that writes a file, then
# done), and what an agent CLI's gateway door adds to a model call.
# Prints a Markdown section (BENCHMARKS.md, section 18).
#
#   bench/agent_clis.sh              # RUNS=5, interleaved; medians
#   SMOKE=1 SWARM=target/debug/swarm BENCH_BIN_DIR=target/debug/examples bench/agent_clis.sh
#
# The CLIs are the pinned ones of tests/agent-clis (installed into
# target/agent-clis by tests/agent-clis/install.sh, from the npm registry).
# Per agent: the `swarm run`'s wall time (the mock's one-second hold of the
# first answer taken off), the time from its start to the first model call,
# and the agent's processes' RSS summed while it waits for that answer
# (idle) and at most (peak). The door: 1,000 first-turn calls straight to
# the mock and through a door, alternating.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
RUNS=${RUNS:-$(sized 5 1)}
CALLS=$(sized 1000 50)
cd "$ROOT"
ensure_swarm
if [ -z "${BENCH_BIN_DIR:-}" ]; then
  cargo build --release --quiet --locked -p swarm --example bench_agents
  BENCH_BIN_DIR=$ROOT/target/release/examples
fi
BENCH_AGENTS=$BENCH_BIN_DIR/bench_agents
tests/agent-clis/install.sh "$ROOT/target/agent-clis"
export PATH="$ROOT/target/agent-clis/node_modules/.bin:$PATH"
OUT=$(bench_out BENCHMARKS.md)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/swarm-bench-clis.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
hermetic_git "$WORK"

AGENTS="swarm claude-code codex"
for _ in $(seq "$RUNS"); do
  for a in $AGENTS; do
    line=$(checked "$BENCH_AGENTS" cli "$SWARM" "$a" "$WORK")
    echo "$a $line" >> "$WORK/cli.txt"
  done
done
door=$(checked "$BENCH_AGENTS" door "$CALLS")

# median COLUMN AGENT: the median of column COLUMN (1-based after the name).
median_of() {
  awk -v a="$2" -v c="$1" '$1 == a { print $(c + 1) }' "$WORK/cli.txt" | sort -n |
    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }
row() {
  local a=$1 name=$2
  printf '| %s | %s ms | %s ms | %s | %s |\n' "$name" "$(median_of 1 "$a")" \
    "$(median_of 2 "$a")" "$(mb "$(median_of 3 "$a")")" "$(mb "$(median_of 4 "$a")")"
}
commit=$(git -C "$ROOT" rev-parse --short HEAD)
read -r direct through added added90 <<<"$door"
section=$(
  cat <<EOT
## 18. Agent CLIs as workers: start-up, memory, the door's latency

Measured at $commit by \`bench/agent_clis.sh\` (release build, this machine, medians of $RUNS
runs interleaved). One \`swarm run\` of one sandboxed agent task, the same scripted exchange
for each (the tests' mock model: a shell command writing a file, then done; \`verify\`
passes): Claude Code $(claude --version | head -1 | cut -d' ' -f1) and Codex $(codex --version | awk '{print $2}') from the npm registry,
each reaching the mock through its task's gateway door, beside swarm's own agent. Wall time
excludes the one second the mock holds its first answer; RSS is the agent's processes
summed (Codex: its Node launcher and its native binary), sampled every 10 ms.

| agent | \`swarm run\` wall | start to first model call | RSS waiting for the model | peak RSS |
|---|---:|---:|---:|---:|
$(row swarm "swarm's agent")
$(row claude-code "Claude Code")
$(row codex "Codex")

What an agent CLI's **gateway door** adds to a model call ($CALLS first-turn Messages calls,
alternating straight to the mock and through a door: token check, turn and budget checks,
the model's limiter, the stream passed through and read on the way for usage and the
transcript):

| per call | p50 |
|---|---:|
| straight to the mock | $direct µs |
| through the door | $through µs |
| **added by the door** | **$added µs** (p90 of the per-call difference: $added90 µs) |

Memory admission counts 300 MiB for a Claude Code task and 200 MiB for a Codex task
(\`[agents.NAME] memory\` changes it): above what these idle figures show, since a working
agent grows.
EOT
)
if [ "$OUT" = BENCHMARKS.md ]; then
  python3 -c 'import sys; sys.path.insert(0, "bench"); import benchmarks_md; benchmarks_md.replace_section("BENCHMARKS.md", "18", sys.stdin.read().rstrip("\n") + "\n")' <<<"$section"
else
  printf '%s\n' "$section" > "$OUT"
fi
printf '%s\n' "$section"

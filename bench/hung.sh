#!/usr/bin/env bash
# Section 29 of BENCHMARKS.md: hung tasks and agents at scale (issue 79).
#
# 1. Stall detection: $STALLS tasks that print nothing and sleep, with
#    `stall_after = "2s"`, sandboxed: how long after its window each was
#    ended (its attempt's duration less the window), and a quiet
#    CPU-bound task of 6 s with the same window (which must pass).
# 2. Admission: $AGENTS agent tasks of swarm's own agent ready at once
#    (`concurrency = $AGENTS`) against the tests' mock model (300 ms a
#    call, three calls each): none killed for memory, none failing to
#    start, each task's wait from ready to start (p50, p95), the most
#    agents alive at once, and the coordinator's RSS over the run
#    (`bench_agents admission`). Then the same for $CLI_AGENTS tasks of
#    each agent CLI (Claude Code, Codex: the pinned ones of
#    tests/agent-clis, from npm), each a command and an answer, with
#    the CLIs' processes' RSS together at its most.
#
#   bench/hung.sh                    # STALLS=6 AGENTS=50 CLI_AGENTS=50; writes section 29
#   SMOKE=1 SWARM=target/debug/swarm OUT=/tmp/b.md bench/hung.sh
#
# Smoke mode (SMOKE=1, see bench/common.sh): 2 stalls, 4 agents, 1 of each CLI;
# tests/e2e/bench_scripts.rs runs it in CI. A command that fails ends the
# script with a message naming it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
OUT=$(bench_out "$ROOT/BENCHMARKS.md")
STALLS=${STALLS:-$(sized 6 2)}
AGENTS=${AGENTS:-$(sized 50 4)}
CLI_AGENTS=${CLI_AGENTS:-$(sized 50 1)}
cd "$ROOT"
ensure_swarm
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
if [ -n "${BENCH_BIN_DIR:-}" ]; then
  AGENTS_BIN=$BENCH_BIN_DIR/bench_agents
else
  cargo build --release --quiet -p swarm --example bench_agents
  AGENTS_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/bench_agents
fi
WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/swarm-bench-hung.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
hermetic_git "$WORK"

# --- 1. stalls ---------------------------------------------------------
REPO=$WORK/repo
mkdir -p "$REPO" && git -C "$REPO" init -q -b main
echo "# stalls" > "$REPO/README.md"
git -C "$REPO" add -A && git -C "$REPO" commit -q -m base
{
  printf '[swarm]\non_failure = "continue"\n\n'
  for k in $(seq "$STALLS"); do
    printf '[[task]]\nid = "hung-%s"\nstall_after = "2s"\nrun = "sleep 60"\n\n' "$k"
  done
  printf '[[task]]\nid = "busy"\nstall_after = "2s"\nrun = "timeout 6 sh -c '"'"'while :; do :; done'"'"' || true; echo done > busy.txt"\n'
} > "$WORK/stalls.toml"
set +e
"$SWARM" -C "$REPO" run -q --name stalls "$WORK/stalls.toml" >/dev/null 2>"$WORK/stalls.err"
code=$?
set -e
[ "$code" = 1 ] || { echo "hung.sh: the stalls run exited $code, not 1" >&2; cat "$WORK/stalls.err" >&2; exit 1; }
read -r delay_p50 delay_max busy <<<"$(python3 - "$REPO/.swarm/runs/stalls/events.jsonl" <<'PY'
import json, sys
delays, busy = [], None
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") == "attempt_finished":
        if e["task"].startswith("hung-"):
            assert e["outcome"] == "stalled", e
            delays.append(e["duration_ms"] - 2000)
    if e.get("event") == "task_finished" and e["task"] == "busy":
        busy = e["status"]
delays.sort()
print(delays[(len(delays) - 1) // 2], delays[-1], busy)
PY
)"
[ "$busy" = succeeded ] || [ "$busy" = merged ] || { echo "hung.sh: the quiet CPU-bound task ended $busy" >&2; exit 1; }

# --- 2. admission --------------------------------------------------------
mkdir -p "$WORK/admission"
read -r wall alive oom failed w50 w95 rss_early rss_max rss_last _ done <<<"$(HOME=$WORK/home checked "$AGENTS_BIN" admission "$SWARM" "$AGENTS" "$WORK/admission")"

# The agent CLIs, the same way: a row each.
"$ROOT/tests/agent-clis/install.sh" "$ROOT/target/agent-clis" >/dev/null
cli_rows=
for cli in claude-code codex; do
  mkdir -p "$WORK/admission-$cli"
  read -r c_wall c_alive c_oom c_failed c_w50 c_w95 _ c_rss_max _ c_agents_rss c_done <<<"$(PATH="$ROOT/target/agent-clis/node_modules/.bin:$PATH" HOME=$WORK/home checked "$AGENTS_BIN" admission "$SWARM" "$cli" "$CLI_AGENTS" "$WORK/admission-$cli")"
  cli_rows="$cli_rows| $cli | $c_done | **$c_oom** | **$c_failed** | $c_alive | $c_w50 / $c_w95 ms | $((c_rss_max / 1024)) MB | $((c_agents_rss / 1024)) MB | $c_wall ms |
"
done

if [ "$SMOKE" = 1 ]; then
  SMOKE_NOTE="**Smoke run (\`SMOKE=1\`): $STALLS stalls, $AGENTS agents; these figures measure nothing.**

"
else
  SMOKE_NOTE=
fi
section=$(cat <<EOS
## 29. Hung tasks and agents at scale (issue 79)

${SMOKE_NOTE}Measured by \`bench/hung.sh\` on $(date -u +%Y-%m-%d) at $COMMIT, release build, $(nproc) cores,
$(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) of memory.

**Stall detection.** $STALLS sandboxed tasks that print nothing and sleep, \`stall_after = "2s"\`, at once:
each was ended as \`stalled\` this long after its window (its attempt's duration less 2 s). The
watch reads every quarter of the window, so the bound is 0.25 of it (500 ms here), plus the
grace of the stop.

| detection delay after the window | ms |
|---|---:|
| median of $STALLS | $delay_p50 |
| most | $delay_max |

A quiet task that only computes for 6 s (no output) with the same 2 s window was not stalled
(its CPU time, read from its cgroup, moves): it \`$busy\` and was merged.

**Admission.** $AGENTS tasks of swarm's own agent ready at once (\`concurrency = $AGENTS\`), each
sandboxed in its worktree, three model calls of 300 ms each against the tests' mock model, a
\`verify\`; memory admission lets each start when the machine has room for it.

| $AGENTS agents | figure |
|---|---:|
| did their work (verify passed) | $done |
| killed for memory (OOM) | **$oom** |
| failed to start | **$failed** |
| most agents alive at once | $alive |
| wait from ready to start, p50 | $w50 ms |
| wait from ready to start, p95 | $w95 ms |
| coordinator RSS a quarter in / at most / at the end | $rss_early / $rss_max / $rss_last KB |
| wall time | $wall ms |

**Agent CLIs at once.** $CLI_AGENTS tasks of each agent CLI ready at once, each sandboxed in its
worktree behind its gateway door, against the same mock (300 ms a call): a shell command that
writes the task's file, then an answer, then the \`verify\`. Memory admission starts each when
the machine has room for what such a CLI takes.

| $CLI_AGENTS tasks of | did their work | OOM kills | failed to start | most at once | wait p50 / p95 | coordinator RSS at most | the CLIs' RSS together at most | wall |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
${cli_rows}
For comparison, as their users report them (not measured here): OpenHands fails to start its
sixth agent on a laptop, and OpenClaw caps parallel agents at five.
EOS
)
python3 "$ROOT/bench/benchmarks_md.py" place "$OUT" "## 29. Hung tasks" "$section"
echo "wrote section 29 of $OUT"

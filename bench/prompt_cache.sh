#!/usr/bin/env bash
# Prompt caching (issue 34): the tokens billed for a 20-turn session of
# swarm's own agent with the gateway's cache markers and without, against
# the tests' mock model billing its prompt cache as Anthropic does.
# Prints a Markdown section (BENCHMARKS.md, section 19).
#
#   bench/prompt_cache.sh            # 20 turns
#   SMOKE=1 BENCH_BIN_DIR=target/debug/examples bench/prompt_cache.sh
#
# The session: swarm's agent's real system prompt and tool schemas, each
# turn adding about 2 KB of tool output and 150 tokens of answer; priced as
# claude-sonnet-4-5 (input $3, output $15, cache reads $0.30 and writes
# $3.75 a million tokens). The mock caches a prefix that ends at a marker
# (or up to 20 blocks before one) once it is 1,024 tokens long, and counts
# four bytes of JSON a token. The figures are tokens, not time: they do not
# vary between runs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
TURNS=$(sized 20 4)
cd "$ROOT"
if [ -z "${BENCH_BIN_DIR:-}" ]; then
  cargo build --release --quiet --locked -p swarm --example bench_agents
  BENCH_BIN_DIR=$ROOT/target/release/examples
fi
OUT=$(bench_out BENCHMARKS.md)
read -r in_c read_c written_c out_c usd_c in_p _ _ out_p usd_p \
  <<<"$(checked "$BENCH_BIN_DIR/bench_agents" cache "$TURNS")"
commit=$(git -C "$ROOT" rev-parse --short HEAD)
fmt() { echo "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
section=$(
  cat <<EOT
## 19. Prompt caching: a $TURNS-turn agent session billed

Measured at $commit by \`bench/prompt_cache.sh\`. One session of swarm's own agent (its
system prompt and tool schemas), $TURNS turns each adding about 2 KB of tool output, against
the tests' mock model billing its prompt cache as Anthropic does (a prefix ending at a
\`cache_control\` marker, or up to 20 blocks before one, is read back once written; 1,024
tokens at least), priced as claude-sonnet-4-5: input \$3, output \$15, cache reads \$0.30
and cache writes \$3.75 a million tokens. With the gateway's markers (\`prompt_cache\`, on by
default) the system prompt and the conversation so far are marked each turn; without them,
every turn pays the whole prompt again. Token counts, not times: they are the same on every run.

| $TURNS turns | prompt tokens | read from the cache | written to it | output tokens | cost |
|---|---:|---:|---:|---:|---:|
| \`prompt_cache = true\` (default) | $(fmt "$in_c") | $(fmt "$read_c") | $(fmt "$written_c") | $(fmt "$out_c") | \$$usd_c |
| \`prompt_cache = false\` | $(fmt "$in_p") | 0 | 0 | $(fmt "$out_p") | \$$usd_p |
| **cached against not** | | | | | **$(ratio "$usd_p" "$usd_c") cheaper** |

OpenAI caches long prompts on its own; the gateway reads its cached input tokens from the
usage and prices them at the model's cached-input price (swarm's table, or
\`price = { cache_read = ... }\`).
EOT
)
if [ "$OUT" = BENCHMARKS.md ]; then
  python3 -c 'import sys; sys.path.insert(0, "bench"); import benchmarks_md; benchmarks_md.replace_section("BENCHMARKS.md", "19", sys.stdin.read().rstrip("\n") + "\n")' <<<"$section"
else
  printf '%s\n' "$section" > "$OUT"
fi
printf '%s\n' "$section"

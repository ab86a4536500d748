#!/usr/bin/env bash
# Looking at a run (issue 36): the time, memory and size of writing the
# HTML page and the Chrome trace of a 10,000-task run, beside `swarm status
# --json` (the JSON report of the same journal, what a script would read
# instead) and `swarm validate` of the plan (issue 37: a plan of 10,000
# tasks must validate well under 100 MB). Prints a Markdown section
# (BENCHMARKS.md, section 20).
#
#   bench/report_html.sh                 # 10,000 no-op tasks
#   SMOKE=1 SWARM=target/debug/swarm bench/report_html.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
N=$(sized 10000 20)
RUNS=$(sized 5 1)
ensure_swarm
WORK=$(mktemp -d "${TMPDIR:-/tmp}/swarm-bench-html.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
hermetic_git "$WORK"
REPO=$WORK/repo
mkdir -p "$REPO"
git -C "$REPO" init -q
echo "# bench" > "$REPO/README.md"
git -C "$REPO" add README.md
git -C "$REPO" commit -qm init
values=$(seq -s ', ' 0 $((N - 1)))
cat > "$REPO/many.toml" <<EOT
[swarm]
sandbox = "none"
worktrees = "$WORK/wt"

[defaults]
isolation = "readonly"

[[task]]
id = "t-{n}"
run = "true"
matrix = { n = [$values] }
EOT
# One real run of N tasks: its journal is what is drawn.
checked "$SWARM" -C "$REPO" run many.toml -q >/dev/null
# measure NAME CMD...: median wall ms and peak RSS (KB) of CMD over $RUNS.
measure() {
  local name=$1; shift
  local times=() rss=0 t0 t1 r
  for _ in $(seq "$RUNS"); do
    t0=$(now_ms)
    checked /usr/bin/time -o "$WORK/rss" -f '%M' "$@" >/dev/null
    r=$(tail -n 1 "$WORK/rss")
    t1=$(now_ms)
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')")
    [ "$r" -gt "$rss" ] && rss=$r
  done
  printf '%s %s %s\n' "$name" "$(printf '%s\n' "${times[@]}" | median_of)" "$((rss / 1024))"
}
read -r _ html_ms html_mb <<<"$(measure html "$SWARM" -C "$REPO" report --html "$WORK/run.html")"
read -r _ trace_ms trace_mb <<<"$(measure trace sh -c "\"\$0\" -C \"\$1\" trace > \"\$2\"" "$SWARM" "$REPO" "$WORK/trace.json")"
read -r _ json_ms json_mb <<<"$(measure json sh -c "\"\$0\" -C \"\$1\" status --json > \"\$2\"" "$SWARM" "$REPO" "$WORK/report.json")"
read -r _ val_ms val_mb <<<"$(measure validate "$SWARM" -C "$REPO" validate many.toml)"
size() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
commit=$(git -C "$ROOT" rev-parse --short HEAD)
OUT=$(bench_out BENCHMARKS.md)
section=$(
  cat <<EOT
## 20. Looking at a run: the page and the trace of $N tasks

Measured at $commit by \`bench/report_html.sh\`: one run of $N no-op tasks (a matrix,
\`sandbox = "none"\`), then each command on its journal, median of $RUNS, peak RSS from
\`/usr/bin/time\`. \`swarm status --json\` (the same journal folded into the JSON report)
is what a script would read instead of the page; \`swarm validate\` is the plan's check
(issue 37: 10,000 tasks must stay well under 100 MB). The page draws the graph up to 400
tasks; past that the timeline and the table show every task.

| $N tasks | time | peak RSS | output |
|---|---:|---:|---:|
| \`swarm report --html\` | $html_ms ms | $html_mb MB | $(size "$WORK/run.html") |
| \`swarm trace\` | $trace_ms ms | $trace_mb MB | $(size "$WORK/trace.json") |
| \`swarm status --json\` | $json_ms ms | $json_mb MB | $(size "$WORK/report.json") |
| \`swarm validate\` of the plan | $val_ms ms | $val_mb MB | |
EOT
)
if [ "$OUT" = BENCHMARKS.md ]; then
  python3 -c 'import sys; sys.path.insert(0, "bench"); import benchmarks_md; benchmarks_md.replace_section("BENCHMARKS.md", "20", sys.stdin.read().rstrip("\n") + "\n")' <<<"$section"
else
  printf '%s\n' "$section" > "$OUT"
fi

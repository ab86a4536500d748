#!/usr/bin/env bash
# Section 9 of BENCHMARKS.md: a 4-task `cargo test` fan-out of a real crate
# (regex-syntax, from the machine's cargo registry, made a git repository),
# first and second run, sandboxed through swarm (warm worktrees and build
# caches, the defaults; fresh worktrees, `warm = false`; no build caches),
# and the same by hand (4 worktrees, `cargo test` in each, $NPROC at a
# time).
#
#   bench/cargo.sh          # writes section 9 into BENCHMARKS.md
#   SMOKE=1 SWARM=target/debug/swarm OUT=/tmp/b.md bench/cargo.sh
#
# Smoke mode (SMOKE=1, see bench/common.sh): one task (one module) instead
# of four, and `cargo check` instead of `cargo test` (a test build of the
# crate takes too long for CI), to check that the script still runs;
# tests/e2e/bench_scripts.rs does so in CI. With SWARM nothing is built;
# OUT defaults to a temporary file. A command that fails ends the script
# with a message naming it.
#
# Each task edits one module (a comment, as a refactor would touch a file)
# and runs the crate's library tests. Needs regex-syntax in the registry
# (`cargo fetch` in this workspace puts it there) and a release build.
# bench/run.sh calls this at its end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
OUT=$(bench_out "$ROOT/BENCHMARKS.md")
NPROC=$(nproc)
machines_cargo

cd "$ROOT"
ensure_swarm
SRC=$(ls -d "$CARGO_HOME"/registry/src/*/regex-syntax-0.8.* 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$SRC" ]; then
  echo "regex-syntax is not in $CARGO_HOME/registry: run \`cargo fetch\` in $ROOT" >&2
  exit 1
fi
VERSION=${SRC##*/regex-syntax-}

# On disk, not tmpfs: build output is what a real run writes.
WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/swarm-cargo-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
hermetic_git "$WORK"

REPO=$WORK/regex-syntax
cp -r "$SRC" "$REPO"
cd "$REPO"
printf 'target/\n' > .gitignore
# Tasks have no network: dependencies (regex-syntax's optional ones included,
# which `--lib` tests resolve) are fetched once, as the README says.
cargo fetch -q
git init -q -b main && git add -A && git commit -q -m "regex-syntax $VERSION"

if [ "$SMOKE" = 1 ]; then
  MODULES=(ast/parse.rs)
  CARGO_CMD="cargo check --offline --lib -q"
else
  MODULES=(ast/parse.rs hir/translate.rs hir/literal.rs unicode.rs)
  CARGO_CMD="cargo test --offline --lib -q"
fi
# Each task says which module it edits (`paths`): writing tasks that may
# run side by side without `paths` are warned about.
plan() { # plan NAME CACHES WARM
  {
    printf '[swarm]\nname = "%s"\ncaches = %s\nconcurrency = %s\n\n[defaults]\nwarm = %s\n\n' "$1" "$2" "$NPROC" "$3"
    local i=0
    for m in "${MODULES[@]}"; do
      i=$((i + 1))
      printf '[[task]]\nid = "t%s"\npaths = ["src/%s"]\nrun = """\necho "// touched by t%s" >> src/%s\n%s >/dev/null\n"""\n\n' "$i" "$m" "$i" "$m" "$CARGO_CMD"
    done
  } > "$WORK/$1.toml"
  plan_clean "$REPO" "$WORK/$1.toml"
}
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

swarm_run() { # swarm_run PLAN RUN
  local t; t=$(now_s)
  run_logged "$WORK/$2.log" "$SWARM" run -q --name "$2" "$WORK/$1.toml"
  elapsed "$t"
}
# Each pair starts with no warm worktree of the tasks' (and, for the
# first, empty build caches).
cold() { run_logged "$WORK/clean.log" "$SWARM" clean --all --warm; }
plan cached true true
plan fresh true false
plan uncached false true
s_first=$(swarm_run cached c1)
s_second=$(swarm_run cached c2)
cold
f_first=$(swarm_run fresh f1)
f_second=$(swarm_run fresh f2)
cold
u_first=$(swarm_run uncached u1)
u_second=$(swarm_run uncached u2)
echo "swarm: $s_first s, $s_second s; warm = false: $f_first s, $f_second s; caches = false: $u_first s, $u_second s"

# By hand: 4 worktrees, each edited and tested, $NPROC at a time; the
# second round reuses the same worktrees (their target/ is warm).
hand_round() { # hand_round ROUND
  local i=0
  for m in "${MODULES[@]}"; do
    i=$((i + 1))
    local wt=$WORK/hand/t$i
    [ -d "$wt" ] || git worktree add -q --detach "$wt" main
    printf '%s %s %s\n' "$wt" "$m" "$1"
  done | xargs -P "$NPROC" -L 1 sh -c \
    'cd "$0" && git checkout -q -- . && echo "// round $2" >> "src/$1" && '"$CARGO_CMD"' >/dev/null'
}
by_hand() { # by_hand ROUND: seconds
  local t; t=$(now_s)
  run_logged "$WORK/hand$1.log" hand_round "$1"
  elapsed "$t"
}
h_first=$(by_hand 1)
h_second=$(by_hand 2)
echo "by hand: $h_first s, $h_second s"
# How much faster a second run is, by hand and through swarm (the prose
# below says what was measured, not what an earlier run measured).
faster() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }'; }
h_gain=$(faster "$h_first" "$h_second")
s_gain=$(faster "$s_first" "$s_second")
f_gain=$(faster "$f_first" "$f_second")
# The second run against the same worktrees kept by hand.
vs_hand=$(faster "$s_second" "$h_second")

if [ "$SMOKE" = 1 ]; then
  SMOKE_NOTE="**Smoke run (\`SMOKE=1\`): ${#MODULES[@]} task, \`$CARGO_CMD\`; these figures measure nothing.**

"
else
  SMOKE_NOTE=
fi
section=$(cat <<EOF
## 9. A 4-task \`cargo test\` fan-out (regex-syntax $VERSION)

${SMOKE_NOTE}Measured by \`bench/cargo.sh\` on $(date -u +%Y-%m-%d) at $(git -C "$ROOT" rev-parse --short HEAD), on disk: the crate from the cargo
registry made a git repository; 4 tasks, $NPROC at a time, each appends a comment to one
module (as a refactor touches a file) and runs \`cargo test --offline --lib\`. swarm's
tasks are sandboxed. "Second run" is the same plan run again (a new run); by hand, it is
the same 4 worktrees edited and tested again.

| 4 tasks | first run | second run |
|---|---:|---:|
| **swarm (default: warm worktrees, build caches)** | **$s_first s** | **$s_second s** |
| swarm, \`warm = false\` (a fresh worktree each run) | $f_first s | $f_second s |
| swarm, \`caches = false\` | $u_first s | $u_second s |
| by hand: 4 \`git worktree\`s, \`cargo test\` in each | $h_first s | $h_second s |

swarm's second run took ${vs_hand}x the time of the same worktrees kept by hand. Each
task's worktree is kept at one path between runs ([Warm worktrees](book/src/toolchains.md#warm-worktrees))
and brought to the new base by git, which leaves unchanged files' modification times
alone: cargo (modification times) and rustc's incremental cache (source paths) see the
worktree a person keeps, and rebuild only the module the task touched. Its second run was
${s_gain}x faster than its first; with \`warm = false\` (a new worktree at a new path,
the behaviour before warm worktrees) ${f_gain}x, by hand ${h_gain}x. Each task id also has
its own cargo target directory, kept across runs in the repository's worktree home, so
dependencies are built once (regex-syntax has none: the e2e test
\`build_caches_outlive_a_run...\` checks that a dependency is not compiled again). Tasks
of one run do not share a target directory: cargo judges freshness by modification
times, and two worktrees building the same package into one directory would take each
other's artifacts for fresh. With \`caches = false\` the tasks' \`paths\` keep cargo from
writing \`target/\` in the worktree, so it builds in the task's tmp, and nothing carries
over from one run to the next.
EOF
)
python3 - "$OUT" "$section" <<'PY'
import os, re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read() if os.path.exists(path) else ""
text = re.sub(r"\n## 9\. .*?(?=\n## |\Z)", "", text, flags=re.S).rstrip("\n")
open(path, "w").write(text + "\n\n" + section + "\n")
PY
echo "wrote section 9 of $OUT"

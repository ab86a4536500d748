#!/usr/bin/env bash
# Section 22 of BENCHMARKS.md: `[setup]` on a Node project with a real
# lockfile, split into 19 test tasks: swarm with `[setup] run = "npm ci"`
# keyed by the lockfile (setup runs once; the other worktrees are shown
# the kept setup as an overlay where the sandbox can, else get a copy; the
# second run reuses it in its warm worktrees) against `npm ci` and the
# tests by hand in N kept `git worktree`s, first and second run; the cost
# of a worktree's setup from the kept one against running it; and the disk
# the warm worktrees and the kept setup hold.
#
#   bench/setup.sh          # writes section 22 into BENCHMARKS.md
#   SMOKE=1 SWARM=target/debug/swarm OUT=/tmp/b.md bench/setup.sh
#
# The project's dependencies come from the npm registry (jest, typescript,
# webpack, eslint, prettier, swc, next, react: a node_modules of about
# 400 MB) into a download cache of the benchmark's own, once, before
# anything is timed (its lockfile is made then too); every `npm ci` timed
# after that, swarm's setup and the ones by hand, installs from that cache
# with `--offline`, and the tasks have no network. Smoke mode (SMOKE=1, see
# bench/common.sh): one dependency packed from a local directory (no
# network), two tasks, `node --test`; tests/e2e/bench_scripts.rs runs it in
# CI. A command that fails ends the script with a message naming it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
OUT=$(bench_out "$ROOT/BENCHMARKS.md")
NPROC=$(nproc)
cd "$ROOT"
ensure_swarm
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)

WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/swarm-setup-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
hermetic_git "$WORK"
REPO=$WORK/app
mkdir -p "$REPO/tests"
cd "$REPO"

if [ "$SMOKE" = 1 ]; then
  N=2
  mkdir -p vendor/pad
  printf '{"name": "pad", "version": "1.0.0", "main": "index.js"}\n' > vendor/pad/package.json
  printf 'module.exports = (s, n) => s.padStart(n);\n' > vendor/pad/index.js
  (cd vendor/pad && run_logged "$WORK/pack.log" npm pack --pack-destination ..)
  rm -rf vendor/pad
  printf '{"name": "app", "version": "1.0.0", "private": true,\n "dependencies": {"pad": "file:vendor/pad-1.0.0.tgz"}}\n' > package.json
  INSTALL_FLAGS="--offline"
  TEST_CMD='node --test'
  SETUP_NETWORK=none
else
  N=19
  printf '{"name": "app", "version": "1.0.0", "private": true,\n "devDependencies": {"jest": "29.7.0", "typescript": "5.6.3", "webpack": "5.96.1", "eslint": "9.14.0", "prettier": "3.3.3", "@swc/core": "1.9.2", "next": "15.0.3", "react": "18.3.1", "react-dom": "18.3.1"}}\n' > package.json
  INSTALL_FLAGS="--offline"
  TEST_CMD='npx --no jest --ci'
  SETUP_NETWORK=none
fi
# npm's download cache: the benchmark's own, filled once (below), read by
# every install (a read-only path of the plan's, for setup in the sandbox).
export npm_config_cache=$WORK/npm-cache
for i in $(seq 1 "$N"); do
  if [ "$SMOKE" = 1 ]; then
    printf "const test = require('node:test');\nconst assert = require('node:assert');\nconst pad = require('pad');\ntest('pads $i', () => assert.strictEqual(pad('$i', 3), '  $i'));\n" > "tests/t$i.test.js"
  else
    printf "test('adds $i', () => { expect($i + 1).toBe($((i + 1))); });\ntest('typescript is there', () => { expect(require('typescript').version).toBe('5.6.3'); });\n" > "tests/t$i.test.js"
  fi
done
printf 'node_modules/\n' > .gitignore
# The lockfile, made once: what a project commits.
if [ "$SMOKE" = 1 ]; then
  run_logged "$WORK/lock.log" npm install --package-lock-only --no-audit --no-fund $INSTALL_FLAGS
else
  run_logged "$WORK/lock.log" npm install --package-lock-only --no-audit --no-fund
  # The download cache filled once, from the registry: nothing after this
  # reaches the network.
  fill() { local d; d=$(mktemp -d "$WORK/fill.XXXXXX"); cp package.json package-lock.json "$d"; (cd "$d" && npm ci --no-audit --no-fund >/dev/null); rm -rf "$d"; }
  run_logged "$WORK/fill.log" fill
fi
git init -q -b main && git add -A && git commit -q -m "a node project with a lockfile"

cat > "$WORK/plan.toml" <<EOF
[swarm]
concurrency = $NPROC
read_paths = ["$npm_config_cache"]

[setup]
run = "npm ci --no-audit --no-fund $INSTALL_FLAGS"
env = { npm_config_cache = "$npm_config_cache" }
key = ["package-lock.json"]
network = "$SETUP_NETWORK"
timeout = "20m"

[[task]]
id = "t{i}"
matrix = { i = [$(seq -s, 1 "$N")] }
paths = ["tests/t{i}.test.js"]
run = "$TEST_CMD tests/t{i}.test.js"
EOF
plan_clean "$REPO" "$WORK/plan.toml"

now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }
swarm_run() { # swarm_run RUN: seconds
  local t; t=$(now_s)
  run_logged "$WORK/$1.log" "$SWARM" run -q --name "$1" "$WORK/plan.toml"
  elapsed "$t"
}
s_first=$(swarm_run one)
s_second=$(swarm_run two)
echo "swarm: $s_first s, $s_second s"

# What each run's tasks say of their setup: how many ran it, and the time
# of one that ran and of one that copied (medians).
setup_figures() { # setup_figures RUN: "ran copied ran_ms copy_ms"
  python3 - "$REPO/.swarm/runs/$1/events.jsonl" <<'PY'
import json, statistics, sys
runs = []
for line in open(sys.argv[1]):
    event = json.loads(line)
    if event.get("event") == "task_started" and event.get("setup_run"):
        runs.append(event["setup_run"])
ran = [r["ms"] for r in runs if not r["reused"]]
# A copy's own time: not the wait for the setup it copies.
copied = [r["ms"] - r.get("waited_ms", 0) for r in runs if r["reused"]]
med = lambda xs: int(statistics.median(xs)) if xs else 0
print(len(ran), len(copied), med(ran), med(copied))
PY
}
read -r ran1 copied1 ran_ms copy_ms < <(setup_figures one)
read -r ran2 copied2 _ copy2_ms < <(setup_figures two)
HOMEDIR=$(ls -d "$HOME"/.cache/swarm/worktrees/*/)
KEPT=$(ls -d "$HOMEDIR".setup/*/files/node_modules | head -1)
modules=$(du -sm "$KEPT" | cut -f1)
files=$(find "$KEPT" | wc -l)
# Disk: every warm worktree of the key and the kept setup, in one count
# (a file shared by several is counted once), against one setup.
# The warm worktrees' kept tmps (`.warm/.tmp`, where jest caches) count
# with them.
mkdir -p "$HOMEDIR.warm/.tmp"
disk_all=$(du -smc "$HOMEDIR".warm/t* "$HOMEDIR".warm/.tmp "$HOMEDIR".setup | tail -1 | cut -f1)
disk_warm=$(du -smc "$HOMEDIR".warm/t* "$HOMEDIR".warm/.tmp | tail -1 | cut -f1)
disk_tmp=$(du -smc "$HOMEDIR".warm/.tmp | tail -1 | cut -f1)
# One test task's command in the second run: the attempt's own time, as
# the journal has it (its command, sandboxed, in its warm worktree).
task_ms=$(python3 - "$REPO/.swarm/runs/two/events.jsonl" <<'PY' | median_of
import json, sys
for e in map(json.loads, open(sys.argv[1])):
    if e.get("event") == "attempt_finished":
        print(e["duration_ms"])
PY
)
shown=$(if [ "$(find "$HOMEDIR.warm/t1/node_modules" -mindepth 1 | head -1)" = "" ]; then echo "as an overlay"; else echo "by copy"; fi)

# By hand: N kept worktrees, `npm ci` and the test in each ($NPROC at a
# time, npm's cache shared as a person's is); the second round runs the
# tests again in the same worktrees.
# Each test command's own time goes to $WORK/hand<ROUND>.ms.
hand_round() { # hand_round ROUND
  for i in $(seq 1 "$N"); do
    local wt=$WORK/hand/t$i
    [ -d "$wt" ] || git worktree add -q --detach "$wt" main
    printf '%s %s %s\n' "$wt" "$i" "$1"
  done | xargs -P "$NPROC" -L 1 sh -c \
    'cd "$0" && if [ "$2" = 1 ]; then npm ci --no-audit --no-fund '"$INSTALL_FLAGS"' >/dev/null; fi && s=$(date +%s%N) && '"$TEST_CMD"' tests/t$1.test.js >/dev/null 2>&1 && echo $(( ($(date +%s%N) - s) / 1000000 )) >> '"$WORK"'/hand$2.ms'
}
by_hand() { # by_hand ROUND: seconds
  local t; t=$(now_s)
  run_logged "$WORK/hand$1.log" hand_round "$1"
  elapsed "$t"
}
h_first=$(by_hand 1)
h_second=$(by_hand 2)
echo "by hand: $h_first s, $h_second s"
hand_ms=$(median_of < "$WORK/hand2.ms")
echo "one test's command, second run: swarm $task_ms ms, by hand $hand_ms ms"
share=$(awk -v c="$copy_ms" -v r="$ran_ms" 'BEGIN { if (r > 0) printf "%.1f", 100 * c / r; else print "n/a" }')

if [ "$SMOKE" = 1 ]; then
  SMOKE_NOTE="**Smoke run (\`SMOKE=1\`): $N tasks, one local dependency, \`node --test\`; these figures measure nothing.**

"
else
  SMOKE_NOTE=
fi
section=$(cat <<EOF
## 22. Setting up worktrees: \`npm ci\` once per lockfile

${SMOKE_NOTE}Measured by \`bench/setup.sh\` on $(date -u +%Y-%m-%d) at $COMMIT: a Node project whose
lockfile pins jest, typescript, webpack, eslint, prettier, swc, next and react (node_modules: $modules MB, $files
files and directories), $N test files, one task each, $NPROC at a time, sandboxed, with
\`[setup] run = "npm ci"\`, \`key = ["package-lock.json"]\` and \`network = "$SETUP_NETWORK"\` (the
tasks have none). Every \`npm ci\` installs \`--offline\` from a download cache filled once
before anything is timed. By hand: $N \`git worktree\`s, \`npm ci\` then the test in each,
$NPROC at a time, the same download cache; the second round runs the tests again in the
same worktrees. On disk (ext4: copies are real copies, no copy-on-write). The kept setup
reached the other worktrees $shown.

| $N test tasks | first run | second run |
|---|---:|---:|
| **swarm, \`[setup]\` keyed by the lockfile** | **$s_first s** | **$s_second s** |
| by hand: \`npm ci\` + the test in $N kept worktrees | $h_first s | $h_second s |

| a worktree's setup | time |
|---|---:|
| \`npm ci\` run by setup (first run: $ran1 of $N tasks ran it) | $ran_ms ms |
| the kept setup given instead (first run: $copied1 tasks) | $copy_ms ms ($share% of running it) |
| second run, warm worktrees ($copied2 tasks, $ran2 ran it) | $copy2_ms ms |

| one test task's command, second run (median of $N) | time |
|---|---:|
| swarm: the attempt, sandboxed, in its warm worktree (the journal's \`duration_ms\`) | $task_ms ms |
| by hand: the same command in a kept worktree | $hand_ms ms |
| **difference** | **$((task_ms - hand_ms)) ms** |

| disk after the second run | MB |
|---|---:|
| one setup (node_modules) | $modules |
| the $N warm worktrees (with their kept tmps, $disk_tmp MB) | $disk_warm |
| the $N warm worktrees and the kept setups, together | $disk_all |

Setup runs once per key, not once per task: the other worktrees of the run wait for it.
Where the sandbox can show an overlay (\`swarm doctor\` says), each worktree's commands
are shown the kept node_modules as the lower layer of an overlay whose upper layer is
the task's own: nothing is copied or compared, a task's changes there are its own, and
the worktree on disk holds an empty directory. Elsewhere each worktree gets a copy (with
modification times), and a warm one finds it in place. Each warm worktree keeps its
task's \`TMPDIR\` (\`.warm/.tmp\`), where jest keeps its haste map and transforms, as
the worktrees by hand share the person's \`/tmp\`.
EOF
)
python3 "$ROOT/bench/benchmarks_md.py" place "$OUT" "## 22. Setting up worktrees" "$section"
echo "wrote section 22 of $OUT"

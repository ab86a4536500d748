#!/usr/bin/env bash
# Section 14g of BENCHMARKS.md: what issue 78 brought to the cluster,
# measured on the real three-node cluster of tests/slurm/cluster.sh.
#
# 1. `[setup]` on the nodes: N tasks of a Node package whose lockfile
#    `npm ci` installs (offline, from a tarball in the repository, as from
#    a local registry directory). swarm with `[setup]` (kept per node in
#    `cache_dir`, one setup per node) against the only way before it:
#    `npm ci` in each task's own command (one per job); and the same plan
#    on this machine's local executor. How many times `npm ci` ran is
#    counted from the runs' reports (a task whose setup was not copied ran
#    it), and from the tasks' own commands for the per-job plan.
# 2. A sharded test suite on the cluster against the same suite on one
#    node: Jinja2's own tests (bench/common.sh `jinja2_suite`) in 3 shards,
#    the second run of each (the first learns the entries' times), by the
#    Slurm executor and by the local executor.
#
#   bench/slurm_setup.sh            # RUNS=3, N=12; writes section 14g
#   SMOKE=1 SWARM=target/debug/swarm BENCH_CLUSTER=DIR OUT=/tmp/b.md bench/slurm_setup.sh
#
# Needs root (the cluster's daemons), Debian's slurm packages and npm.
# Smoke mode (SMOKE=1, see bench/common.sh): 3 tasks, one run, a made-up
# suite; tests/e2e/bench_scripts.rs runs it in CI. BENCH_CLUSTER=DIR uses
# a cluster already started by `tests/slurm/cluster.sh start DIR`. A
# benchmarked command that fails ends the script with a message naming it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/common.sh"
OUT=$(bench_out "$ROOT/BENCHMARKS.md")
RUNS=${RUNS:-$(sized 3 1)}
N=${N:-$(sized 12 3)}
cd "$ROOT"
ensure_swarm
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)

WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/swarm-bench-slurm-setup.XXXXXX")
bench_cluster "$WORK"

# --- 1. [setup] per node against per job --------------------------------

NODE_REPO=$WORK/app
node_project() { # a Node package with one dependency, a tarball in the repository
  local npm="npm --cache $WORK/npm-cache --no-audit --no-fund"
  rm -rf "$NODE_REPO"; mkdir -p "$NODE_REPO/vendor/leftish"
  printf '{"name": "leftish", "version": "1.0.0", "main": "index.js"}\n' > "$NODE_REPO/vendor/leftish/package.json"
  printf "module.exports = (s, n) => ' '.repeat(Math.max(0, n - s.length)) + s;\n" > "$NODE_REPO/vendor/leftish/index.js"
  (cd "$NODE_REPO/vendor/leftish" && $npm pack --pack-destination .. >/dev/null 2>&1)
  rm -rf "$NODE_REPO/vendor/leftish"
  printf '{"name": "app", "version": "1.0.0", "private": true,\n "dependencies": {"leftish": "file:vendor/leftish-1.0.0.tgz"}}\n' > "$NODE_REPO/package.json"
  (cd "$NODE_REPO" && $npm install --package-lock-only --offline >/dev/null 2>&1)
  printf 'node_modules/\n' > "$NODE_REPO/.gitignore"
  git -C "$NODE_REPO" init -q -b main
  git -C "$NODE_REPO" add -A && git -C "$NODE_REPO" commit -q -m "a node package with a lockfile"
}

# node_plan EXECUTOR HOW: N tasks using the dependency; HOW is `setup`
# (swarm's [setup], kept per node) or `per-job` (`npm ci` in each task).
node_plan() {
  local executor=$1 how=$2 ci="npm ci --offline --no-audit --no-fund" k
  printf '[swarm]\nname = "b"\n\n[executor]\nkind = "%s"\n' "$executor"
  if [ "$executor" = slurm ]; then
    printf 'poll_interval = "200ms"\ncache_dir = "%s/cache/%%N"\n' "$WORK"
  fi
  if [ "$how" = setup ]; then
    printf '\n[setup]\nrun = "%s"\nkey = ["package-lock.json"]\n' "$ci"
  fi
  for k in $(seq "$N"); do
    local use="node -e \\\"console.log(require('leftish')('$k', 4))\\\" > out/$k.txt"
    printf '\n[[task]]\nid = "t%s"\n' "$k"
    if [ "$how" = setup ]; then
      printf 'creates = ["out/%s.txt"]\n' "$k"
    else
      # Each task installs into its own worktree (ignored, never merged).
      use="$ci && $use"
      printf 'creates = ["out/%s.txt", "node_modules"]\nallow_overlap = true\n' "$k"
    fi
    printf 'run = "mkdir -p out && %s"\n' "$use"
  done
}

# setup_run EXECUTOR HOW: "MILLISECONDS NPM_CI_RUNS" of one run in a fresh
# clone of the package (a fresh node cache for `setup` on the cluster).
setup_run() {
  local executor=$1 how=$2 dir=$WORK/run
  # Fresh kept setups: the nodes' caches, and this machine's worktree home.
  rm -rf "$dir" "$WORK/cache" "$WORK/worktrees"
  git clone -q "$NODE_REPO" "$dir"
  node_plan "$executor" "$how" > "$WORK/plan.toml"
  plan_clean "$dir" "$WORK/plan.toml"
  local t0 t1
  t0=$(now_ms)
  run_logged "$WORK/err" "$SWARM" -C "$dir" run -q --worktrees "$WORK/worktrees" "$WORK/plan.toml"
  t1=$(now_ms)
  [ "$(git -C "$dir" ls-tree --name-only swarm/b out/ | wc -l)" = "$N" ] || { echo "not all merged" >&2; exit 1; }
  local ran=$N
  if [ "$how" = setup ]; then
    ran=$(python3 - "$dir/.swarm/runs/b/report.json" <<'PY'
import json, sys
tasks = json.load(open(sys.argv[1]))["tasks"]
print(sum(1 for t in tasks if not t.get("setup_reused")))
PY
)
  fi
  awk -v a="$t0" -v b="$t1" -v r="$ran" 'BEGIN { printf "%.1f %s", b - a, r }'
}

# median_pair F ARGS...: the median wall time of $RUNS runs of F, with the
# count of the run it came from.
median_pair() {
  local f=$1; shift
  for _ in $(seq "$RUNS"); do checked "$f" "$@"; echo; done | sort -n | awk '{ v[NR] = $0 } END { print v[int((NR + 1) / 2)] }'
}

node_project
read -r cluster_setup_ms cluster_setup_runs <<<"$(median_pair setup_run slurm setup)"
read -r cluster_perjob_ms cluster_perjob_runs <<<"$(median_pair setup_run slurm per-job)"
read -r local_setup_ms local_setup_runs <<<"$(median_pair setup_run local setup)"
nodes_used=$cluster_setup_runs

# --- 2. a sharded suite on the cluster against one node -----------------

jinja2_suite "$WORK" 'def test_a@():\n    assert @\n\ndef test_b@():\n    assert @\n'
git init -q -b main && git add -A && git commit -q -m "a test suite"
FILES=$(git ls-files 'tests/test_*.py' | wc -l)
PYTEST="env PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=$PYPATH $VENV/bin/pytest -q -p no:cacheprovider"
suite_plan() { # suite_plan EXECUTOR: the suite in 3 shards
  printf '[swarm]\nread_paths = ["%s", "%s"]\n\n[executor]\nkind = "%s"\n' "$VENV" "$BASE_PREFIX" "$1"
  [ "$1" = local ] || printf 'poll_interval = "200ms"\n'
  cat <<PLAN

[[task]]
id = "pytest"
allow_overlap = true
shards = 3
matrix = { file = { glob = "tests/test_*.py" } }
run = "$PYTEST {entries} --junitxml=\$TMPDIR/report.xml"
junit = "\$TMPDIR/report.xml"
PLAN
}
suite_plan slurm > "$WORK/suite-slurm.toml"
suite_plan local > "$WORK/suite-local.toml"
plan_clean "$REPO" "$WORK/suite-slurm.toml"
plan_clean "$REPO" "$WORK/suite-local.toml"
# The first run of each learns the entries' times (not in smoke mode,
# which only checks that the script runs: its CI time is the cluster's,
# which the cluster tests take one at a time).
if [ "$SMOKE" = 0 ]; then
  timed "$WORK/learn-slurm.log" "$SWARM" run -q --name learn-slurm "$WORK/suite-slurm.toml" >/dev/null
  timed "$WORK/learn-local.log" "$SWARM" run -q --name learn-local "$WORK/suite-local.toml" >/dev/null
fi
suite_run() { "$SWARM" run -q --name "s$(date +%s%N)" "$WORK/suite-$1.toml"; }
suite_cluster=$(median_timed "$RUNS" "$WORK/suite-cluster" suite_run slurm)
suite_local=$(median_timed "$RUNS" "$WORK/suite-local" suite_run local)

if [ "$SMOKE" = 1 ]; then
  SMOKE_NOTE="**Smoke run (\`SMOKE=1\`): $N tasks, a made-up suite, one round; these figures measure nothing.**

"
else
  SMOKE_NOTE=
fi
section=$(cat <<EOF
### 14g. Setup on the nodes, and a sharded suite on the cluster (issue 78)

${SMOKE_NOTE}Measured by \`bench/slurm_setup.sh\` on $(date -u +%Y-%m-%d) at $COMMIT, release build, on the
test cluster (\`tests/slurm/cluster.sh\`: one \`slurmctld\`, three \`slurmd\` on this $(nproc)-core machine,
so every "node" shares its cores and disk). Medians of $RUNS runs, wall time.

**\`[setup]\` on the nodes.** $N tasks of a Node package whose lockfile \`npm ci\` installs offline
from a tarball in the repository, each task using the dependency; every run in a fresh clone with
empty node caches.

| $N tasks | \`npm ci\` runs | wall |
|---|---:|---:|
| **swarm on the cluster, \`[setup]\` kept per node (\`cache_dir\`)** | **$cluster_setup_runs** (one per node used: $nodes_used) | **$cluster_setup_ms ms** |
| swarm on the cluster, \`npm ci\` in each task's command (per job) | $cluster_perjob_runs | $cluster_perjob_ms ms |
| swarm on this machine, \`[setup]\` | $local_setup_runs | $local_setup_ms ms |

**A sharded suite.** $SUITE ($FILES test files), \`shards = 3\`, sandboxed, each shard's JUnit merged;
the second run of each executor (the first learned the files' times).

| suite in 3 shards | wall |
|---|---:|
| swarm, Slurm executor (a job per shard, on the nodes) | $suite_cluster s |
| swarm, local executor (one node) | $suite_local s |

On this machine the cluster's three nodes share two cores with the coordinator and the
controller, so the cluster cannot run the shards faster than one node does: what the cluster
row measures is what swarm adds per shard there (a job's scheduling, a fetch of the base, the
record and its JUnit pushed back). On a real cluster each shard has a node's cores.
EOF
)
python3 "$ROOT/bench/benchmarks_md.py" place "$OUT" "### 14g. Setup on the nodes" "$section"
echo "wrote section 14g of $OUT"

# Helpers every benchmark script sources: hermetic git, timing, smoke mode
# and checked commands.
#
# Every script takes these from the environment:
#
#   SMOKE=1          tiny sizes (a handful of tasks and files, one run, short
#                    sleeps): checks that the script runs, measures nothing.
#                    tests/e2e/bench_scripts.rs runs every script so in CI.
#   SWARM=PATH       the swarm binary to measure; nothing is built. Without
#                    it a release build is made (cargo build --release).
#   BENCH_BIN_DIR=D  (run.sh, repomap.py) the directory holding the example
#                    harnesses (bench_git, bench_spawn, bench_wasm,
#                    bench_agents, bench_ownership, repomap); nothing is
#                    built. Without it they are built, release.
#   OUT=FILE         (scripts writing BENCHMARKS.md) where to write instead;
#                    in smoke mode the default is a temporary file, never
#                    BENCHMARKS.md.
#
# A benchmarked command that fails ends the script (exit 1) with a message
# naming it and the end of its output: a refused plan is never timed as if
# it had run.

SMOKE=${SMOKE:-0}
case $SMOKE in 0 | '' | false | no) SMOKE=0 ;; *) SMOKE=1 ;; esac

# sized NORMAL SMOKE: the first in normal mode, the second in smoke mode.
sized() { if [ "$SMOKE" = 1 ]; then printf '%s\n' "$2"; else printf '%s\n' "$1"; fi; }

# bench_out DEFAULT: where the script writes its section(s): $OUT if set,
# else DEFAULT (BENCHMARKS.md), but a new temporary file in smoke mode.
bench_out() {
  if [ -n "${OUT:-}" ]; then
    printf '%s\n' "$OUT"
  elif [ "$SMOKE" = 1 ]; then
    mktemp "${TMPDIR:-/tmp}/swarm-bench-smoke.XXXXXX.md"
  else
    printf '%s\n' "$1"
  fi
}

# ensure_swarm: sets SWARM to a release build of swarm (built here from
# $ROOT) unless SWARM is given.
ensure_swarm() {
  if [ -z "${SWARM:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet -p swarm --bin swarm)
    SWARM=${CARGO_TARGET_DIR:-$ROOT/target}/release/swarm
  fi
  [ -x "$SWARM" ] || { echo "${0##*/}: SWARM=$SWARM is not an executable" >&2; exit 1; }
  # Absolute: the scripts change directory.
  case $SWARM in /*) ;; *) SWARM=$(cd "$(dirname "$SWARM")" && pwd)/$(basename "$SWARM") ;; esac
}

# work_dirs NAME: DISK, a new directory on the disk, and FAST, one on a
# tmpfs that is not /dev/shm (a sandboxed task gets a private /dev/shm,
# which would hide what is there): TMPFS=DIR names one; as root one is
# mounted (and unmounted at exit); else FAST is on the disk too. Both are
# removed at exit.
work_dirs() {
  DISK=$(mktemp -d "${TMPDIR:-/tmp}/swarm-bench-$1.XXXXXX")
  MOUNTED=
  if [ -n "${TMPFS:-}" ]; then
    FAST=$(mktemp -d "$TMPFS/swarm-bench-$1.XXXXXX")
  elif [ "$(id -u)" = 0 ] && mkdir -p "$DISK/tmpfs" && mount -t tmpfs -o size=4g tmpfs "$DISK/tmpfs" 2>/dev/null; then
    FAST=$DISK/tmpfs
    MOUNTED=$FAST
  else
    FAST=$DISK/fast
    mkdir -p "$FAST"
  fi
  trap work_dirs_gone EXIT
}
work_dirs_gone() {
  if [ -n "$MOUNTED" ]; then umount "$MOUNTED" 2>/dev/null || true; fi
  rm -rf "$DISK"
  if [ -n "${TMPFS:-}" ]; then rm -rf "$FAST"; fi
}

# hermetic_git DIR: HOME in DIR/home, no user or system git configuration,
# a fixed identity.
hermetic_git() {
  export HOME=$1/home GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
  export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
  export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
  mkdir -p "$HOME"
}

# now_ms: wall-clock milliseconds.
now_ms() { date +%s%N | awk '{ printf "%.1f", $1 / 1000000 }'; }

# median_of: the median of the numbers on stdin.
median_of() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# ratio A B: A / B to two places ("n/a" when B is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# matrix_plan FILE N TASK: a plan of N tasks (ids `t-0`...), sandbox off, each
# running TASK (a TOML table body without the id and matrix).
matrix_plan() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
path, n, body = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    f.write('[swarm]\nsandbox = "none"\n\n[[task]]\nid = "t-{n}"\n' + body + "\n")
    f.write("matrix = { n = [%s] }\n" % ", ".join(str(i) for i in range(n)))
PY
}

# new_repo DIR FILES: a new repository at DIR (branch main) whose one commit
# holds FILES small files, a hundred directories under src/.
new_repo() { # new_repo DIR FILES
  rm -rf "$1"; mkdir -p "$1"; git -C "$1" init -q -b main
  python3 - "$1" "$2" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "src", f"d{i % 100:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}.txt"), "w") as f:
        f.write(f"file {i}\n")
PY
  git -C "$1" add -A && git -C "$1" commit -qm init
}

# bench_fail STATUS LOG CMD...: says that CMD failed with STATUS, shows the
# end of LOG (its output), exits 1.
bench_fail() {
  local status=$1 log=$2; shift 2
  {
    echo "${0##*/}: benchmarked command failed (exit $status): $*"
    if [ -s "$log" ]; then
      echo "--- its output (last 40 lines):"
      tail -n 40 "$log"
    fi
  } >&2
  case $log in */swarm-bench-err.*) rm -f "$log" ;; esac
  exit 1
}

# run_logged LOG CMD...: runs CMD with its output in LOG; if it fails, the
# script ends (bench_fail). CMD may be a shell function: it runs in a
# subshell of its own with `set -e` in force, so that any step of it that
# fails counts (errexit does not apply to a function called where its
# status is tested, nor inside $(...)), and its `cd`s stay there. The
# step of it that failed is named in LOG.
run_logged() {
  local log=$1 status=0; shift
  (set -eE; trap 'echo "failed (exit $?): $BASH_COMMAND" >&2' ERR; "$@") >"$log" 2>&1 &
  wait $! || status=$?
  [ "$status" = 0 ] || bench_fail "$status" "$log" "$@"
}

# checked CMD...: runs CMD like run_logged, but passes its stdout through
# (for the commands whose output is the measurement); stderr is kept to show
# if it fails.
checked() {
  local err status=0
  err=$(mktemp "${TMPDIR:-/tmp}/swarm-bench-err.XXXXXX")
  (set -eE; trap 'echo "failed (exit $?): $BASH_COMMAND" >&2' ERR; "$@") 2>"$err" &
  wait $! || status=$?
  [ "$status" = 0 ] || bench_fail "$status" "$err" "$@"
  rm -f "$err"
}

# plan_clean REPO PLAN: `swarm validate` must accept PLAN in REPO without a
# warning, else the script ends showing what it said. The generated plans
# are written as a user would write them; when a new plan check refuses or
# warns about one, this says so (and CI, which runs every script) instead of
# the benchmark timing a refused run or measuring a plan users are told to
# fix.
plan_clean() {
  local err status=0
  err=$(mktemp "${TMPDIR:-/tmp}/swarm-bench-err.XXXXXX")
  "$SWARM" -C "$1" validate "$2" >/dev/null 2>"$err" || status=$?
  if [ "$status" != 0 ] || [ -s "$err" ]; then
    {
      echo "${0##*/}: swarm validate $2 (in $1) exited $status, saying:"
      head -n 60 "$err"
      echo "${0##*/}: fix the plan this script writes"
    } >&2
    rm -f "$err"
    exit 1
  fi
  rm -f "$err"
}

# machines_cargo: CARGO_HOME and RUSTUP_HOME exported as the person's
# (before hermetic_git moves HOME), so cargo finds its registry and
# toolchain.
machines_cargo() {
  CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
  RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
  export CARGO_HOME RUSTUP_HOME
}

# now_s: wall-clock seconds, to the nanosecond.
now_s() { date +%s.%N; }

# elapsed START: seconds since START (a now_s), to the hundredth.
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.2f", b - a }'; }

# timed LOG CMD...: runs CMD as run_logged does (its output in LOG) and
# prints the seconds it took.
timed() {
  local log=$1 t; shift
  t=$(now_s)
  run_logged "$log" "$@"
  elapsed "$t"
}

# median_timed ROUNDS PREFIX CMD...: the median seconds of ROUNDS runs of
# CMD, the k-th run's output in PREFIX-k.log.
median_timed() {
  local rounds=$1 prefix=$2 r; shift 2
  for r in $(seq 1 "$rounds"); do timed "$prefix-$r.log" "$@"; echo; done | median_of
}

# shard_sizes JOURNAL: how many entries each shard of the run whose journal
# is JOURNAL ran, as "6 + 6" (from its `task_sharded` event).
shard_sizes() {
  python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") == "task_sharded":
        print(" + ".join(str(len(s)) for s in e["shards"]))
PY
}

# spread_of RUN PREFIX: the longest over the mean time of run RUN's tasks
# named PREFIX-* (1.00: they all ended together), from its report in
# $REPO.
spread_of() {
  python3 - "$REPO/.swarm/runs/$1/report.json" "$2" <<'PY'
import json, sys
tasks = [t for t in json.load(open(sys.argv[1]))["tasks"] if t["id"].startswith(sys.argv[2] + "-")]
times = [t["duration_ms"] for t in tasks]
print(f"{max(times) / (sum(times) / len(times)):.2f}")
PY
}

# shard_median_spread PREFIX RUN...: each of the tasks PREFIX-K's median
# time over runs RUN..., then the longest median over the mean median: the
# grouping's own balance, with one run's noise (a shard that happened to
# run while the machine was slower) averaged out. The runs must have run
# one grouping (see same_grouping).
shard_median_spread() {
  local prefix=$1
  shift
  python3 - "$REPO" "$prefix" "$@" <<'PY'
import json, statistics, sys
repo, prefix, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
times = {}
for run in runs:
    for t in json.load(open(f"{repo}/.swarm/runs/{run}/report.json"))["tasks"]:
        if t["id"].startswith(prefix + "-"):
            times.setdefault(t["id"], []).append(t["duration_ms"])
medians = [statistics.median(v) for v in times.values()]
print(f"{prefix} shard medians (ms): {[round(m) for m in medians]}", file=sys.stderr)
print(f"{max(medians) / (sum(medians) / len(medians)):.2f}")
PY
}

# settled RUN...: the last runs of RUN... that split their sharded task as
# the last one did (its journal's task_sharded events are equal), oldest
# first: the rounds a grouping's shard medians can be taken over.
settled() {
  python3 - "$REPO" "$@" <<'PY'
import json, sys
repo, runs = sys.argv[1], sys.argv[2:]
def grouping(run):
    for line in open(f"{repo}/.swarm/runs/{run}/events.jsonl"):
        event = json.loads(line)
        if event.get("event") == "task_sharded":
            return event["shards"]
    return None
last = grouping(runs[-1])
kept = []
for run in reversed(runs):
    if grouping(run) != last:
        break
    kept.insert(0, run)
print(f"grouping of {kept[0]} to {kept[-1]}: {last}", file=sys.stderr)
print(" ".join(kept))
PY
}

# itertools_crate WORK REPO: itertools 0.13.0's source from crates.io
# unpacked as REPO (the real crate the Rust benchmarks use).
itertools_crate() {
  run_logged "$1/download.log" curl -sfL -o "$1/itertools.crate" \
    https://static.crates.io/crates/itertools/itertools-0.13.0.crate
  tar xzf "$1/itertools.crate" -C "$1"
  mv "$1/itertools-0.13.0" "$2"
}

# crate_fetched WORK: the crate in the current directory with `target/`
# ignored, a lockfile and its dependencies fetched (tasks have no
# network), logs in WORK.
crate_fetched() {
  printf 'target/\n' > .gitignore
  run_logged "$1/fetch.log" cargo generate-lockfile
  run_logged "$1/fetch2.log" cargo fetch
}

# jinja2_suite WORK SMOKE_TEST: a pytest suite in WORK/suite (REPO, the
# current directory after), for the benchmarks of sharded suites. Off
# smoke mode: Jinja2 3.1.4's own sources from its sdist on PyPI, in a
# virtual environment of WORK's with tests/python-tools' pins and
# Jinja2's one dependency (pip's configuration the person's own). In smoke
# mode: tests/python-tools' own environment (.ci/run installs it) and four
# files tests/test_N.py, each SMOKE_TEST with N for each `@` (and `\n`
# for a line break).
# Sets VENV, BASE_PREFIX, REPO, SUITE (what the suite is, for the section)
# and PYPATH (the suite's PYTHONPATH). Not yet a git repository.
jinja2_suite() {
  local work=$1 smoke_test=$2 i
  if [ "$SMOKE" = 1 ]; then
    "$ROOT/tests/python-tools/install.sh" >/dev/null
    VENV=$(cd "$ROOT/target/python-tools/venv" && pwd)
  else
    VENV=$work/venv
    run_logged "$work/venv.log" python3 -m venv "$VENV"
    run_logged "$work/pip.log" "$VENV/bin/pip" install -q --disable-pip-version-check \
      -r "$ROOT/tests/python-tools/requirements.txt" markupsafe==3.0.2
    run_logged "$work/sdist.log" "$VENV/bin/pip" download -q --disable-pip-version-check \
      --no-deps --no-binary :all: jinja2==3.1.4 -d "$work/sdist"
  fi
  BASE_PREFIX=$("$VENV/bin/python" -c 'import sys; print(sys.base_prefix)')
  hermetic_git "$work"
  REPO=$work/suite
  mkdir -p "$REPO"
  if [ "$SMOKE" = 1 ]; then
    mkdir -p "$REPO/tests"
    for i in 1 2 3 4; do
      printf '%b' "${smoke_test//@/$i}" > "$REPO/tests/test_$i.py"
    done
    SUITE="a made-up suite of $(grep -ho '^def test_' "$REPO"/tests/test_*.py | wc -l) tests in 4 files"
    PYPATH=
  else
    tar xzf "$work/sdist/jinja2-3.1.4.tar.gz" -C "$work"
    cp -a "$work/jinja2-3.1.4/." "$REPO/"
    SUITE="Jinja2 3.1.4's own tests from its source distribution on PyPI"
    PYPATH=src
  fi
  printf '__pycache__/\n.pytest_cache/\n' > "$REPO/.gitignore"
  cd "$REPO"
}

# bench_cluster WORK: the Slurm cluster the script measures on: the one
# BENCH_CLUSTER names (started by `tests/slurm/cluster.sh start DIR`, the
# e2e test's), else one started in WORK/cluster and stopped on exit. Sets
# CLUSTER and SLURM_CONF, and the EXIT trap (which also removes WORK).
bench_cluster() {
  local work=$1
  if [ -n "${BENCH_CLUSTER:-}" ]; then
    CLUSTER=$BENCH_CLUSTER
    trap "rm -rf '$work'" EXIT
  else
    CLUSTER=$work/cluster
    trap "'$ROOT/tests/slurm/cluster.sh' stop '$CLUSTER' >/dev/null 2>&1 || true; rm -rf '$work'" EXIT
    "$ROOT/tests/slurm/cluster.sh" start "$CLUSTER" >/dev/null
  fi
  export SLURM_CONF=$CLUSTER/slurm.conf
}

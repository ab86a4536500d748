#!/usr/bin/env python3
"""Makespan of seeded random task graphs against their lower bound, without
and with the repository's duration history.

Section 16 of BENCHMARKS.md. For each seed, a random 80-task DAG of `sleep`
tasks with varied durations (most short, some long; read-only and
unsandboxed, so that nothing merges and only the order is measured) runs
twice in a fresh repository, at 2 and at 4 slots (`-j`):

  first   no history: ready tasks by their critical path in tasks
  second  with the history the first run left (`.swarm/durations.json`):
          ready tasks by their remaining critical path in expected seconds

and each run's makespan (from `run_started` to the last `task_finished`,
stamped on arrival from `--events json`) is divided by its lower bound,
max(critical path, total work / slots), computed from the durations the
tasks took in that very run (their `attempt_finished` `duration_ms`), so
that what a task's start costs is the same on both sides and only the order
(and swarm's own gaps between tasks) is left in the ratio.

    bench/schedule.py WORKDIR [BENCHMARKS.md]
        prints "seed slots first second" per run pair and, given the file,
        writes section 16 into it.

    SMOKE=1 bench/schedule.py WORKDIR OUT.md
        smoke mode (see bench/common.sh): one seed, 8 tasks of at most
        0.2 s; checks that the script runs (tests/e2e/bench_scripts.rs does
        so in CI). SWARM= is the binary (default: a release build of this
        tree); SCHEDULE_SEEDS= how many seeds (default 5).

Every plan must pass `swarm validate` without a warning, and a `swarm run`
that fails ends the script naming it.
"""

import json
import os
import random
import subprocess
import sys
import tempfile
import time

from benchmarks_md import replace_section

SMOKE = os.environ.get("SMOKE", "0") not in ("", "0", "false", "no")
TASKS = 8 if SMOKE else 80
SEEDS = int(os.environ.get("SCHEDULE_SEEDS", "1" if SMOKE else "5"))
SLOTS = (2, 4)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def fail(message):
    sys.exit(f"schedule.py: {message}")


def checked(*args, cwd=None):
    out = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"`{' '.join(args)}` (in {cwd}) exited {out.returncode}:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return out.stdout


def swarm_binary():
    swarm = os.environ.get("SWARM")
    if not swarm:
        checked("cargo", "build", "--release", "--quiet", "-p", "swarm", "--bin", "swarm", cwd=ROOT)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        swarm = os.path.join(target, "release", "swarm")
    if not os.access(swarm, os.X_OK):
        fail(f"SWARM={swarm} is not an executable")
    return os.path.abspath(swarm)


def graph(seed):
    """A random DAG: each task's duration (seconds) and dependencies (on
    earlier tasks only). Most tasks are short and some long, and chains mix
    both, so that the longest chain in tasks is often not the longest in
    time."""
    rng = random.Random(seed)
    durations, deps = [], []
    for i in range(TASKS):
        r = rng.random()
        if SMOKE:
            d = rng.uniform(0.02, 0.2)
        elif r < 0.65:
            d = rng.uniform(0.05, 0.5)
        elif r < 0.92:
            d = rng.uniform(0.5, 2.0)
        else:
            d = rng.uniform(2.0, 6.0)
        durations.append(round(d, 2))
        # Up to three dependencies among the last 20 tasks.
        k = rng.choice((0, 0, 1, 1, 1, 2, 2, 3)) if i else 0
        window = list(range(max(0, i - 20), i))
        deps.append(sorted(rng.sample(window, min(k, len(window)))))
    return durations, deps


def plan(durations, deps):
    lines = ['[swarm]\nsandbox = "none"\n']
    for i, (d, ds) in enumerate(zip(durations, deps)):
        dep = "deps = [" + ", ".join(f'"t{j:02}"' for j in ds) + "]\n" if ds else ""
        lines.append(f'[[task]]\nid = "t{i:02}"\nisolation = "readonly"\nrun = "sleep {d}"\n{dep}')
    return "\n".join(lines)


def make_repo(path):
    os.makedirs(path)
    with open(os.path.join(path, "README"), "w") as f:
        f.write("schedule benchmark\n")
    checked("git", "init", "-q", "-b", "main", cwd=path)
    checked("git", "add", "-A", cwd=path)
    checked("git", "commit", "-q", "-m", "init", cwd=path)


def plan_clean(swarm, repo, plan_path):
    """`swarm validate` must accept the plan without a warning (see
    plan_clean in bench/common.sh)."""
    out = subprocess.run([swarm, "validate", plan_path], cwd=repo, capture_output=True, text=True)
    if out.returncode != 0 or out.stderr:
        fail(f"swarm validate {plan_path} exited {out.returncode}, saying:\n{out.stderr}\nfix the plan this script writes")


def run(swarm, repo, plan_path, slots, name, deps):
    """One run: its makespan and lower bound in seconds."""
    cmd = [swarm, "run", "-q", "-j", str(slots), "--events", "json", "--name", name,
           "--worktrees", os.path.join(os.path.dirname(repo), "worktrees"), plan_path]
    err = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=err, text=True)
    started = last = None
    took = {}
    for line in proc.stdout:
        now = time.monotonic()
        event = json.loads(line)
        kind = event.get("event")
        if kind == "run_started":
            started = now
        elif kind == "task_finished":
            last = now
        elif kind == "attempt_finished":
            took[event["task"]] = event["duration_ms"] / 1000
    if proc.wait() != 0 or started is None or len(took) != len(deps):
        err.seek(0)
        fail(f"`{' '.join(cmd)}` (in {repo}) exited {proc.returncode} with {len(took)} of {len(deps)} "
             f"tasks done; its stderr ends:\n{err.read()[-4000:]}")
    work = [took[f"t{i:02}"] for i in range(len(deps))]
    finish = []
    for i, ds in enumerate(deps):
        finish.append(work[i] + max((finish[j] for j in ds), default=0.0))
    bound = max(max(finish), sum(work) / slots)
    return last - started, bound


SECTION = """## 16. Scheduling by learned durations

{smoke}Measured by `bench/schedule.py` on {date} ({build}): {seeds} seeded random DAGs of
{tasks} `sleep` tasks (65% of 0.05-0.5 s, 27% of 0.5-2 s, 8% of 2-6 s; up to three
dependencies each among the 20 tasks before it; read-only and unsandboxed, so nothing
merges), each run twice in a fresh repository at 2 and at 4 slots: **first** with no
duration history (ready tasks by the critical path in tasks, as before), **second**
with the history the first run left (by the remaining critical path in expected
seconds). The figure is makespan / lower bound, where the makespan runs from
`run_started` to the last `task_finished` and the lower bound is max(critical path,
total work / slots) over the durations the tasks took in that run (each run's ratio is
over its own bound; the table shows the second run's).

{table}

{notes}"""


def main():
    args = sys.argv[1:]
    if not args:
        fail("usage: bench/schedule.py WORKDIR [BENCHMARKS.md]")
    work = args.pop(0)
    out = args.pop(0) if args else None
    swarm = swarm_binary()
    os.makedirs(work, exist_ok=True)
    rows = []
    for seed in range(1, SEEDS + 1):
        durations, deps = graph(seed)
        for slots in SLOTS:
            base = os.path.join(work, f"s{seed}-j{slots}-{time.time_ns()}")
            repo = os.path.join(base, "repo")
            make_repo(repo)
            plan_path = os.path.join(base, "plan.toml")
            with open(plan_path, "w") as f:
                f.write(plan(durations, deps))
            plan_clean(swarm, repo, plan_path)
            history = os.path.join(repo, ".swarm", "durations.json")
            first = run(swarm, repo, plan_path, slots, "first", deps)
            if not os.path.exists(history):
                fail(f"the first run left no duration history at {history}")
            second = run(swarm, repo, plan_path, slots, "second", deps)
            rows.append((seed, slots, first, second))
            print(seed, slots, f"{first[0] / first[1]:.3f}", f"{second[0] / second[1]:.3f}", flush=True)
    if out:
        table = ["| seed | slots | lower bound (second run) | first: makespan | first / bound | second: makespan | second / bound |",
                 "|---:|---:|---:|---:|---:|---:|---:|"]
        for seed, slots, (m1, b1), (m2, b2) in rows:
            table.append(f"| {seed} | {slots} | {b2:.2f} s | {m1:.2f} s | {m1 / b1:.3f} | {m2:.2f} s | **{m2 / b2:.3f}** |")
        worst = lambda k: max(r[k][0] / r[k][1] for r in rows)
        best = lambda k: min(r[k][0] / r[k][1] for r in rows)
        notes = (f"First runs: {best(2):.3f}-{worst(2):.3f}x the lower bound; second runs: "
                 f"{best(3):.3f}-{worst(3):.3f}x.\n")
        version = subprocess.run([swarm, "--version"], capture_output=True, text=True).stdout.strip()
        section = SECTION.format(
            smoke="**Smoke run (`SMOKE=1`): one seed of 8 tasks of at most 0.2 s; these figures\n"
            "measure nothing.**\n\n" if SMOKE else "",
            date=time.strftime("%Y-%m-%d", time.gmtime()),
            build=version or swarm,
            seeds=SEEDS,
            tasks=TASKS,
            table="\n".join(table),
            notes=notes,
        )
        replace_section(out, "16", section)


if __name__ == "__main__":
    main()

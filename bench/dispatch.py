#!/usr/bin/env python3
"""Dispatch latency of swarm's dispatcher while merges of a large repository run.

Section 10 of BENCHMARKS.md. Two plans, each run in a 10,000-file repository
with 40 writing tasks interleaved (every one of which is merged into the
integration branch, a merge of a 10,000-file tree, while the others run):

  chain   1,000 read-only no-op tasks, each depending on the one before
  fanout  200 read-only no-op tasks, each depending only on `warm`, a
          read-only task that makes the shared read-only checkout first (so
          that no measured task waits for a 10,000-file checkout)

`swarm run --events json` prints every event the moment the dispatcher emits
it; this script stamps each line on arrival (monotonic clock) and measures,
for every read-only task, the time from the event that made it startable to
its `task_started`: in the chain, its dependency's `task_finished`; in the
fan-out, from the `task_finished` that freed the place it took to the
moment it took it. A writer takes its place when the dispatcher gives it
one, before it makes its worktree: `task_started` says how long that took
(`setup_ms`), so the script counts the place taken from then (places are
handed out in the order they were taken, each the oldest freed one).
That is the dispatcher's reaction time: a slow
merge or fsync on its thread shows up here. A task the launcher started on
deck (the moment the one before it in its slot ended) is reported before
that one's `task_finished`: it counts as a gap of 0.

    bench/dispatch.py WORKDIR [BENCHMARKS.md] LABEL=SWARM [LABEL=SWARM ...]
        prints "LABEL chain p50 p99 fanout p50 p99" (ms, median of 3 runs)
        per binary and, given the file, writes section 10 into it with a
        column pair per binary (measured side by side, in turns). bench/run.sh
        calls it with the binary it built; the committed figures also have
        `before=`, a build of 6e97252 (merges and fsync on the dispatcher).

    SMOKE=1 bench/dispatch.py WORKDIR OUT.md after=target/debug/swarm
        smoke mode (see bench/common.sh): a 300-file repository, 3 writers,
        a 20-task chain and a 10-task fan-out, one run; checks that the
        script runs (tests/e2e/bench_scripts.rs does so in CI).

Every plan must pass `swarm validate` without a warning, and a `swarm run`
that fails ends the script naming it.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks_md import replace_section

SMOKE = os.environ.get("SMOKE", "0") not in ("", "0", "false", "no")
# Files of the repository, writing tasks, chain and fan-out lengths.
FILES, WRITERS, CHAIN, FANOUT = (300, 3, 20, 10) if SMOKE else (10_000, 40, 1000, 200)


def sh(*args, cwd=None):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def make_repo(path, files=10_000):
    os.makedirs(path)
    for i in range(files):
        d = os.path.join(path, f"d{i // 100:03}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:05}.txt"), "w") as f:
            f.write(f"file {i}\n")
    sh("git", "init", "-q", "-b", "main", cwd=path)
    sh("git", "add", "-A", cwd=path)
    sh("git", "commit", "-q", "-m", "init", cwd=path)


def fail(message):
    sys.exit(f"dispatch.py: {message}")


def plan_clean(swarm, repo, plan_path):
    """`swarm validate` must accept the plan without a warning (see
    plan_clean in bench/common.sh)."""
    out = subprocess.run([swarm, "validate", plan_path], cwd=repo, capture_output=True, text=True)
    if out.returncode != 0 or out.stderr:
        fail(f"swarm validate {plan_path} exited {out.returncode}, saying:\n{out.stderr}\nfix the plan this script writes")


def plan(kind, n, writers=WRITERS):
    lines = ['[swarm]\nsandbox = "none"\n']
    if kind == "fanout":
        lines.append('[[task]]\nid = "warm"\nisolation = "readonly"\nrun = "true"\n')
    # A writer every few readers, so that merges run while readers start.
    # Each says what it creates: writing tasks that may run side by side
    # without `paths` or `creates` are warned about.
    every = max(1, n // writers)
    w = 0
    for i in range(n):
        if i % every == 0 and w < writers:
            lines.append(
                f'[[task]]\nid = "w{w}"\ncreates = ["d{w:03}/written.txt"]\n'
                f'run = "echo {w} > d{w:03}/written.txt"\n'
            )
            w += 1
        if kind == "chain":
            dep = f'deps = ["r{i - 1}"]\n' if i > 0 else ""
        else:
            dep = 'deps = ["warm"]\n'
        lines.append(f'[[task]]\nid = "r{i}"\nisolation = "readonly"\nrun = "true"\n{dep}')
    return "\n".join(lines)


def measure(swarm, repo, kind, n, jobs):
    plan_path = os.path.join(os.path.dirname(repo), f"{kind}.toml")
    with open(plan_path, "w") as f:
        f.write(plan(kind, n))
    plan_clean(swarm, repo, plan_path)
    cmd = [swarm, "run", "-q", "-j", str(jobs), "--events", "json", "--name", f"{kind}-{time.time_ns()}",
           "--worktrees", os.path.join(os.path.dirname(repo), "worktrees"), plan_path]
    err = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=err, text=True)
    finished = {}
    running = 0
    gaps = []
    # The fan-out's places, worked out once the run is over (see
    # `fanout_gaps`): the places freed (each `task_finished`, stamped on
    # arrival) and every task's claim of one, made when the dispatcher gave
    # it the place: its `task_started` less its `setup_ms` (a writer makes
    # its worktree in between, holding the place).
    frees, claims = [], []
    for line in proc.stdout:
        now = time.monotonic_ns()
        event = json.loads(line)
        kind_of = event.get("event")
        task = event.get("task", "")
        if kind_of == "task_finished":
            finished[task] = now
            frees.append(now)
            running -= 1
        elif kind_of == "task_started":
            running += 1
            # A task started on deck (the launcher starts it the moment the
            # one it follows ends) is reported before that one's
            # `task_finished`: it waited for nothing, a gap of 0, and takes
            # the place that end frees. Without this, the latest
            # `task_finished` before it would be an older task's, and the
            # gap that task's whole run.
            on_deck = running > jobs
            claim = now - event.get("setup_ms", 0) * 1_000_000
            claims.append((claim, task if task.startswith("r") else None, on_deck))
            if not task.startswith("r"):
                continue
            i = int(task[1:])
            if kind == "chain" and i > 0:
                before = finished.get(f"r{i - 1}")
                gaps.append(0 if before is None else max(0, now - before))
    if kind == "fanout":
        gaps = fanout_gaps(frees, claims, jobs)
    if proc.wait() != 0 or not gaps:
        err.seek(0)
        fail(f"`{' '.join(cmd)}` (in {repo}) exited {proc.returncode} after {len(gaps)} measured starts; "
             f"its stderr ends:\n{err.read()[-4000:]}")
    gaps.sort()
    pick = lambda q: gaps[min(len(gaps) - 1, int(q * len(gaps)))] / 1e6
    return pick(0.50), pick(0.99)


def fanout_gaps(frees, claims, jobs):
    """Each fan-out reader's wait for its place: from the `task_finished`
    that freed the place it took to its claim of it. The run's first
    `jobs` claims take the places nothing freed; every later one takes the
    oldest freed place not yet taken, in the order of the claims (a task's
    end may be read a moment after the claim of its place: the dispatcher
    gives the place before it reports the end). A claim on deck takes a
    freed place too (the end of the one it follows frees it) and waited
    for nothing. `setup_ms` is
    whole milliseconds: a writer's claim may be placed up to 1 ms late."""
    gaps = []
    frees = sorted(frees)
    taken = 0
    for n, (claim, reader, on_deck) in enumerate(sorted(claims, key=lambda c: c[0])):
        if n < jobs:
            continue
        freed = frees[min(taken, len(frees) - 1)]
        taken += 1
        if reader:
            gaps.append(0 if on_deck else max(0, claim - freed))
    return gaps


SECTION = """## 10. Dispatch latency while merges run

{smoke}Measured by `bench/dispatch.py` on {date}: in a 10,000-file repository, 40 writing
tasks (each merged into the integration branch) run interleaved with read-only no-op
tasks, {jobs} at a time, unsandboxed so that only swarm's own work is timed, repositories
and worktrees on tmpfs (`/dev/shm`). For each read-only task: the time from the event that made it startable
(its dependency's `task_finished` in the chain; in the fan-out, the `task_finished` that
freed the place it took, places handed out in the order they were taken, a writer's taken
when the dispatcher gave it, its `task_started` less its `setup_ms`) to its `task_started`,
stamped on arrival from `--events json`; a task
the launcher started on deck, reported before the `task_finished` of the one it
followed, counts as 0 (the deck came at cefe156; before it every start waited for one). Median
of {runs} run(s) (`DISPATCH_RUNS`); the binaries measured in turns on the same
repositories.

{table}

{notes}"""

NOTES = {
    "before": "`before` is 6e97252, where libgit2 merges into the integration branch and the\n"
    "journal's fsync ran on the dispatcher's thread, and a task's `task_started` was\n"
    "reported only after its process was spawned.",
    "after": "`after` is this tree: journal fsyncs and merges run on the run's writer thread\n"
    "(in submission order), a chain link starts from its dependency's result without a\n"
    "trip to the blocking pool, a task's start is reported before its spawn, and swarm's\n"
    "background threads (merges, checkouts, deletions) run 5 nice steps below the\n"
    "dispatcher. What is left of the p99 is the dispatcher's thread waiting for a core:\n"
    "on 2 cores, 40 checkouts and deletions of 10,000-file worktrees, their merges, the\n"
    "tasks' processes and this script's reader share them.",
}


# Repositories (and runs of each plan per binary) whose median is reported.
RUNS = int(os.environ.get("DISPATCH_RUNS", "1" if SMOKE else "3"))


def main():
    args = sys.argv[1:]
    work = args.pop(0)
    out = args.pop(0) if args and "=" not in args[0] else None
    binaries = [a.split("=", 1) for a in args]
    jobs = os.cpu_count() or 2
    runs = {label: [] for label, _ in binaries}
    for r in range(RUNS):
        repo = os.path.join(work, f"big{r}")
        make_repo(repo, FILES)
        for label, swarm in binaries:
            chain = measure(swarm, repo, "chain", CHAIN, jobs)
            fanout = measure(swarm, repo, "fanout", FANOUT, jobs)
            runs[label].append((*chain, *fanout))
    meds = {}
    for label, _ in binaries:
        meds[label] = [sorted(col)[len(col) // 2] for col in zip(*runs[label])]
        print(label, " ".join(f"{v:.2f}" for v in meds[label]))
    if out:
        head = "| |" + "".join(f" {l} p50 | {l} p99 |" for l, _ in binaries)
        rule = "|---|" + "---:|---:|" * len(binaries)
        row = lambda name, k: f"| {name} |" + "".join(
            f" {meds[l][k]:.2f} ms | {meds[l][k + 1]:.2f} ms |" for l, _ in binaries
        )
        table = "\n".join([head, rule, row(f"{CHAIN:,}-task chain", 0), row(f"{FANOUT:,}-task fan-out", 2)])
        notes = "\n\n".join(NOTES[l] for l, _ in binaries if l in NOTES)
        section = SECTION.format(
            smoke="**Smoke run (`SMOKE=1`): a 300-file repository, 3 writers, a 20-task chain and a\n"
            "10-task fan-out; these figures measure nothing.**\n\n" if SMOKE else "",
            date=time.strftime("%Y-%m-%d", time.gmtime()),
            jobs=jobs,
            runs=RUNS,
            table=table,
            notes=notes + "\n" if notes else "",
        )
        replace_section(out, "10", section)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Dispatch latency of swarm's dispatcher while merges of a large repository run.

Section 10 of BENCHMARKS.md. Two plans, each run in a 10,000-file repository
next to 40 writing tasks (every one of which is merged into the integration
branch, a merge of a 10,000-file tree):

  chain   1,000 read-only no-op tasks, each depending on the one before
  fanout  200 read-only no-op tasks with no dependencies

`swarm run --events json` prints every event the moment the dispatcher emits
it; this script stamps each line on arrival (monotonic clock) and measures,
for every read-only task, the time from the event that made it startable to
its `task_started`: in the chain, its dependency's `task_finished`; in the
fan-out, the `task_finished` that freed the slot it took (the latest
`task_finished` before it). That is the dispatcher's reaction time: a slow
merge or fsync on its thread shows up here.

    bench/dispatch.py SWARM WORKDIR [BENCHMARKS.md]
        prints "chain p50 p99 fanout p50 p99" (ms, median of 3 runs) and, given
        the file, writes section 10 into it. bench/run.sh calls it.
"""

import json
import os
import subprocess
import sys
import time


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


def plan(kind, n, writers=40):
    lines = ['[swarm]\nsandbox = "none"\n']
    for i in range(writers):
        lines.append(
            f'[[task]]\nid = "w{i}"\nrun = "echo {i} > d{i:03}/written.txt"\n'
        )
    for i in range(n):
        dep = f'deps = ["r{i - 1}"]\n' if kind == "chain" and i > 0 else ""
        lines.append(f'[[task]]\nid = "r{i}"\nisolation = "readonly"\nrun = "true"\n{dep}')
    return "\n".join(lines)


def measure(swarm, repo, kind, n, jobs):
    plan_path = os.path.join(os.path.dirname(repo), f"{kind}.toml")
    with open(plan_path, "w") as f:
        f.write(plan(kind, n))
    proc = subprocess.Popen(
        [swarm, "run", "-q", "-j", str(jobs), "--events", "json", "--name", kind, plan_path],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    finished = {}
    last_finished = None
    gaps = []
    for line in proc.stdout:
        now = time.monotonic_ns()
        event = json.loads(line)
        kind_of = event.get("event")
        task = event.get("task", "")
        if kind_of == "task_finished":
            finished[task] = now
            last_finished = now
        elif kind_of == "task_started" and task.startswith("r"):
            i = int(task[1:])
            if kind == "chain" and i > 0:
                gaps.append(now - finished[f"r{i - 1}"])
            elif kind == "fanout" and last_finished is not None:
                gaps.append(now - last_finished)
    proc.wait()
    gaps.sort()
    pick = lambda q: gaps[min(len(gaps) - 1, int(q * len(gaps)))] / 1e6
    return pick(0.50), pick(0.99)


SECTION = """## 10. Dispatch latency while merges run

Measured by `bench/dispatch.py` on {date}: in a 10,000-file repository, 40 writing
tasks (each merged into the integration branch) run beside read-only no-op tasks, {jobs}
at a time, unsandboxed so that only swarm's own work is timed, on tmpfs (`/dev/shm`). For each read-only task:
the time from the event that made it startable (its dependency's `task_finished` in
the chain; the `task_finished` that freed its slot in the fan-out) to its
`task_started`, stamped on arrival from `--events json`. Median of {runs} runs.

| | p50 | p99 |
|---|---:|---:|
| 1,000-task chain | {c50:.2f} ms | {c99:.2f} ms |
| 200-task fan-out | {f50:.2f} ms | {f99:.2f} ms |

Today libgit2 merges, snapshots and the journal's fsync run on the dispatcher's thread,
so a task that becomes startable waits for whatever of that is in progress (the p99).
Target: p99 under 1 ms while merges run, by moving blocking work off the dispatcher.
"""


def main():
    swarm, work = sys.argv[1], sys.argv[2]
    out = sys.argv[3] if len(sys.argv) > 3 else None
    jobs = os.cpu_count() or 2
    runs = []
    for r in range(3):
        repo = os.path.join(work, f"big{r}")
        make_repo(repo)
        chain = measure(swarm, repo, "chain", 1000, jobs)
        fanout = measure(swarm, repo, "fanout", 200, jobs)
        runs.append((*chain, *fanout))
    med = [sorted(col)[len(col) // 2] for col in zip(*runs)]
    print(" ".join(f"{v:.2f}" for v in med))
    if out:
        import re
        section = SECTION.format(
            date=time.strftime("%Y-%m-%d", time.gmtime()),
            jobs=jobs,
            runs=len(runs),
            c50=med[0],
            c99=med[1],
            f50=med[2],
            f99=med[3],
        )
        text = open(out).read()
        text = re.sub(r"\n## 10\. .*?(?=\n## |\Z)", "", text, flags=re.S).rstrip("\n")
        open(out, "w").write(text + "\n\n" + section)


if __name__ == "__main__":
    main()

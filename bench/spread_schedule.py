#!/usr/bin/env python3
"""How well two models of a shard's time tell how long its tests ran
(BENCHMARKS section 30): each shard's tests' span (the first one's start
to the last one's end, by nextest's JUnit timestamps, as swarm keeps them
in a task's `*.tests.json`) beside

- the scaled sum swarm's grouping weighs a shard by: its tests' summed
  JUnit times times its task's ratio of span to summed time over all
  its shards (`durations::Accounted::entry_times`), and
- a list schedule: its tests in the runner's order (nextest's: binary,
  then test name) each started on the first of T threads to come free,
  T the most tests the shard's report shows running at once, with the
  same JUnit times.

Each is taken from the very run it is judged on, so what is left is the
model's own error, not the tests' run-to-run noise.

    spread_schedule.py REPO TASK RUN...

prints one line: each model's mean and largest absolute error over the
runs' shards, in milliseconds and as a share of the mean span.
"""
import glob
import json
import sys


def threads(cases):
    """The most cases running at once, counted at each case's midpoint: a
    report's times and starts are rounded to milliseconds, so a test
    that starts as another ends may seem to overlap it by one."""
    most = 1
    for case in cases:
        if case["time_ms"] < 10:
            continue
        mid = case["started_ms"] + case["time_ms"] / 2
        at = sum(1 for c in cases if c["started_ms"] <= mid < c["started_ms"] + c["time_ms"])
        most = max(most, at)
    return most


def list_schedule(times, t):
    free = [0] * t
    for ms in times:
        k = free.index(min(free))
        free[k] += ms
    return max(free)


def main():
    repo, task, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
    errors = {"scaled sum": [], "list schedule": []}
    spans = []
    for run in runs:
        shards = []
        for path in sorted(glob.glob(f"{repo}/.swarm/runs/{run}/logs/{task}-*/*.tests.json")):
            cases = [c for c in json.load(open(path)) if c.get("started_ms") is not None]
            if not cases:
                continue
            span = max(c["started_ms"] + c["time_ms"] for c in cases) - min(c["started_ms"] for c in cases)
            ordered = sorted(cases, key=lambda c: (c.get("classname") or "", c["name"]))
            shards.append((span, sum(c["time_ms"] for c in cases), ordered, threads(cases)))
        if not shards:
            continue
        summed = sum(s for _, s, _, _ in shards)
        scale = sum(span for span, _, _, _ in shards) / summed if summed else 0
        # The run's threads: its shards' median (one test's time, as the
        # report rounds it and its runner measures it, can run past the
        # next one's start by a few milliseconds).
        counts = sorted(t for *_, t in shards)
        t = counts[(len(counts) - 1) // 2]
        for span, total, ordered, _ in shards:
            scheduled = list_schedule([c["time_ms"] for c in ordered], t)
            spans.append(span)
            errors["scaled sum"].append(abs(scale * total - span))
            errors["list schedule"].append(abs(scheduled - span))
    if not spans:
        print("no shard's report said when its tests began")
        return
    mean_span = sum(spans) / len(spans)
    said = []
    for model, errs in errors.items():
        mean = sum(errs) / len(errs)
        said.append(f"{model} off by {mean:.0f} ms on average ({mean / mean_span:.0%}), "
                    f"{max(errs):.0f} ms at most")
    print(f"{len(spans)} shards, mean span {mean_span:.0f} ms: " + "; ".join(said))


main()
